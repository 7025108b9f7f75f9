#!/bin/sh
# One image, several roles: `web`, `worker`, `beat`, `migrate`, or any command.
set -eu

case "${1:-web}" in
  web)
    # Named startup errors (DevModeEnvironmentMismatchError, ...) stop the container here.
    python manage.py check --deploy --fail-level ERROR
    exec gunicorn conclave.wsgi:application --config python:conclave.gunicorn_conf
    ;;
  worker)
    exec celery --app conclave worker --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${CELERY_CONCURRENCY:-2}" --hostname "worker@%h"
    ;;
  beat)
    exec celery --app conclave beat --loglevel "${LOG_LEVEL:-INFO}"
    ;;
  migrate)
    python manage.py check --fail-level ERROR
    exec python manage.py migrate --noinput
    ;;
  *)
    exec "$@"
    ;;
esac
