#!/usr/bin/env bash
# Sets up what the tests need (Debian's PostgreSQL for the catalog, CDC and database source
# tests, MariaDB for the database source tests, Chromium for the
# web UI tests, a Java runtime for the Spark engine's tests, wrk for the API benchmark, the web UI's libraries from npm, and a virtualenv
# with the package and its test tools), lints, and runs the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
[ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] || missing+=(prometheus)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The web UI's libraries (served under /vendor), again whenever the lock file changes.
web=src/lakehouse/web
if [ ! -f "$web/node_modules/.package-lock.json" ] \
  || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
# Apache Airflow for tests/test_airflow.py, in a virtualenv of its own: its pins clash with
# the package's (FastAPI), and the DAG files `lakehouse airflow export` writes need only
# Airflow. A fresh install takes about a minute; skipped when the version is there.
airflow_version=3.3.2
if ! .venv-airflow/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('apache-airflow') != '$airflow_version')" 2>/dev/null; then
  rm -rf .venv-airflow
  python3 -m venv .venv-airflow
  .venv-airflow/bin/python -m pip install --quiet --disable-pip-version-check "apache-airflow==$airflow_version"
fi
.venv/bin/ruff check src tests bench
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest -q --durations=25 "$@"
