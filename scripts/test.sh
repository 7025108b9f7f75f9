#!/usr/bin/env bash
# `make test`: the suite against PostgreSQL and Redis, then the SQLite quick-start smoke tests.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export DJANGO_SETTINGS_MODULE=conclave.settings.test
mkdir -p var/test-reports
rm -f var/test-reports/*.xml

pybabel -q compile --directory locale --domain django  # the translations the pages use

echo "== suite: PostgreSQL ${DATABASE_URL} and Redis ${REDIS_URL} =="
pytest -m "not quickstart" --junitxml=var/test-reports/postgres.xml "$@"
suite=$?

echo "== quick-start smoke tests: SQLite, no Redis =="
DATABASE_URL="sqlite:///$PWD/var/test-quickstart.sqlite3" REDIS_URL="" \
  pytest -m quickstart --junitxml=var/test-reports/quickstart.xml "$@"
smoke=$?

echo "== JavaScript: node's test runner =="
node --test --test-reporter=junit --test-reporter-destination=var/test-reports/js.xml \
  --test-reporter=spec --test-reporter-destination=stdout tests/js/
js=$?

echo "== lint: ruff and mypy =="
ruff check . && ruff format --check . && mypy
lint=$?

python scripts/test_summary.py var/test-reports/postgres.xml var/test-reports/quickstart.xml \
  var/test-reports/js.xml
# pytest exits 5 when it collected nothing: a broken selection, not a pass.
[ "$suite" -eq 0 ] && [ "$smoke" -eq 0 ] && [ "$js" -eq 0 ] && [ "$lint" -eq 0 ]
