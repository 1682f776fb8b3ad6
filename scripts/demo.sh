#!/usr/bin/env bash
# Sets up a virtualenv with the package and runs the demo on a local warehouse folder.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
exec .venv/bin/lakehouse --warehouse "${LAKEHOUSE_WAREHOUSE:-lakehouse_data}" demo "$@"
