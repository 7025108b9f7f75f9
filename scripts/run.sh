#!/usr/bin/env bash
# `make run`: check, migrate, seed, verify, then serve web, Celery worker and beat and the
# event integrator in the foreground.
# honcho replaces this shell (exec), so Ctrl-C or a SIGTERM to `make run` reaches it and it
# stops every process group it started.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$PWD/.venv/bin:$PATH"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-conclave.settings.local}"
export PORT="${PORT:-8000}"
export CONCLAVE_VAR_DIR="${CONCLAVE_VAR_DIR:-$PWD/var}"
# Only the served processes share samples (set below, for honcho and its children).
metrics_dir="${PROMETHEUS_MULTIPROC_DIR:-$CONCLAVE_VAR_DIR/prometheus}"
unset PROMETHEUS_MULTIPROC_DIR

echo "conclave: database ${DATABASE_URL:+from DATABASE_URL}${DATABASE_URL:-SQLite in var/}," \
     "${REDIS_URL:+Redis from REDIS_URL}${REDIS_URL:-no Redis (local-memory cache, filesystem broker)}"

# The mechanic pages' translations (locale/*/LC_MESSAGES/django.po), compiled with Babel.
pybabel -q compile --directory locale --domain django
python manage.py check --fail-level ERROR  # named startup errors stop here (non-zero exit)
python manage.py migrate --noinput
python manage.py seed_demo
# FR146: nothing is served until the chain, witnesses, keepers and halt state check out.
python manage.py preoperational_verify

# Samples of earlier runs would be summed into this run's /metrics.
mkdir -p "$metrics_dir"
find "$metrics_dir" -maxdepth 1 -name '*.db' -delete
export PROMETHEUS_MULTIPROC_DIR="$metrics_dir"

echo "conclave: serving http://127.0.0.1:${PORT}/ (Ctrl-C stops everything)"
# honcho SIGKILLs what has not exited 5 s after SIGTERM; a Celery worker polling the
# filesystem broker needs 4-6 s for its warm shutdown, so allow it 20 s.
exec python -c '
import sys
import honcho.manager
from honcho.command import main
honcho.manager.KILL_WAIT = 20
sys.argv[0] = "honcho"
main()
' --no-colour --env /dev/null start
