#!/usr/bin/env bash
# Sets up a virtualenv with the package (and PySpark with a Java runtime, for
# `lakehouse run pipelines/demo --engine spark`) and the web UI's libraries, and runs the
# demo on a local warehouse folder (`lakehouse serve` then shows it in the browser).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
web=src/lakehouse/web
if [ ! -f "$web/node_modules/.package-lock.json" ] \
  || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[spark]'
exec .venv/bin/lakehouse --warehouse "${LAKEHOUSE_WAREHOUSE:-lakehouse_data}" demo "$@"
