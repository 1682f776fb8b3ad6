#!/usr/bin/env bash
# Sets up a virtualenv with the package and its test tools, lints, and runs the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check src tests bench
exec .venv/bin/python -m pytest -q "$@"
