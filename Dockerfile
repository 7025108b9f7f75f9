# syntax=docker/dockerfile:1
# One image for web, worker and beat: `docker run IMAGE web|worker|beat|migrate`.

# --- build: a virtual environment with the dependencies pinned by pyproject.toml ----------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY conclave ./conclave
COPY events ./events
COPY flags ./flags
COPY orders ./orders
COPY notifications ./notifications
COPY bot ./bot
COPY mechanic_ui ./mechanic_ui
# Installing the project pulls in exactly its dependencies; the project itself is then
# removed so the code has one home, /app, in the runtime stage.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install . \
 && /opt/venv/bin/pip uninstall --yes conclave-hub

# --- runtime: slim, non-root, read-only friendly -------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=conclave.settings.production \
    GUNICORN_BIND=0.0.0.0:8000 \
    STATIC_ROOT=/app/staticfiles \
    MEDIA_ROOT=/app/media \
    SIGNING_KEY_DIR=/app/keys \
    CONCLAVE_VAR_DIR=/tmp/conclave \
    CELERY_BEAT_SCHEDULE_FILENAME=/tmp/celerybeat-schedule \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
RUN groupadd --system --gid 10001 conclave \
 && useradd --system --uid 10001 --gid conclave --home-dir /app --shell /usr/sbin/nologin conclave
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --chown=root:root manage.py ./
COPY --chown=root:root conclave ./conclave
COPY --chown=root:root events ./events
COPY --chown=root:root flags ./flags
COPY --chown=root:root orders ./orders
COPY --chown=root:root notifications ./notifications
COPY --chown=root:root bot ./bot
COPY --chown=root:root mechanic_ui ./mechanic_ui
COPY --chown=root:root templates ./templates
COPY --chown=root:root locale ./locale
COPY --chown=root:root deploy/entrypoint.sh /usr/local/bin/conclave-entrypoint
# Static files are collected at build time with throwaway settings values; nothing secret
# is baked into the image.
RUN SECRET_KEY=collectstatic-only-build-time-placeholder-value-not-a-secret-000000 \
    ALLOWED_HOSTS=build DATABASE_URL=postgres://build@localhost/build \
    REDIS_URL=redis://localhost:6379/0 ENVIRONMENT=staging DEV_MODE=true \
    python manage.py collectstatic --noinput \
 && pybabel -q compile --directory locale --domain django \
 && mkdir -p /app/media /app/keys \
 && chown conclave:conclave /app/media /app/keys && chmod 700 /app/keys
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/v1/health', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["conclave-entrypoint"]
CMD ["web"]
