#!/bin/sh
# One image, several roles: `web`, `worker`, `beat`, `integrator`, `migrate`, or any command.
set -eu

# Processes share Prometheus samples here; /tmp is an empty volume on a read-only root.
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi

case "${1:-web}" in
  web)
    # Named startup errors (DevModeEnvironmentMismatchError, ...) stop the container here.
    python manage.py check --deploy --fail-level ERROR
    # FR146: the chain, witnesses, keepers and halt state check out before anything is served.
    python manage.py preoperational_verify
    # Samples of a previous run of this container would be summed into /metrics.
    find "${PROMETHEUS_MULTIPROC_DIR:-/nonexistent}" -maxdepth 1 -name '*.db' -delete 2>/dev/null || true
    exec gunicorn conclave.wsgi:application --config python:conclave.gunicorn_conf
    ;;
  worker)
    exec celery --app conclave worker --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${CELERY_CONCURRENCY:-2}" --hostname "worker@%h"
    ;;
  beat)
    exec celery --app conclave beat --loglevel "${LOG_LEVEL:-INFO}"
    ;;
  integrator)
    # Chains, signs and inserts queued events; /tmp/integrator.alive is its liveness beat.
    exec python manage.py integrate_events --heartbeat-file /tmp/integrator.alive
    ;;
  migrate)
    python manage.py check --fail-level ERROR
    python manage.py migrate --noinput
    # The serving processes' least-privilege role, granted on every table (new ones too).
    if [ -n "${APP_DATABASE_PASSWORD:-}" ]; then
      python manage.py app_role_sql --apply
    fi
    # First start: the system's agent and witness keys and the genesis event (idempotent).
    exec python manage.py keys bootstrap
    ;;
  *)
    exec "$@"
    ;;
esac
