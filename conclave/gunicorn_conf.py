"""gunicorn settings for `make run` and the container (`gunicorn -c python:conclave.gunicorn_conf`)."""

import os

from gunicorn.glogging import Logger

from conclave.logging import build_logging_config


class RequestLogOnlyLogger(Logger):
    """gunicorn's logger without its access lines. RequestLogMiddleware logs each request once,
    with its request id and user; gunicorn would log it a second time, without them, whenever
    it is given a logging configuration (`logconfig_dict` below), whatever `accesslog` says."""

    def access(self, resp: object, req: object, environ: object, request_time: object) -> None:
        return None


bind = os.environ.get("GUNICORN_BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
# Sync workers: the fastest and most predictable on this kind of host (see DEVELOPERS.md).
workers = max(2, int(os.environ.get("WEB_CONCURRENCY", "2")))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
max_requests = 5000
max_requests_jitter = 500
# No control socket (gunicorn 25.1 on: a management interface in $HOME/.gunicorn that nothing
# here uses; in the container, read-only, a warning at every start).
control_socket_disable = True
# Heartbeat files on tmpfs: the container's root filesystem is read-only.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
accesslog = None  # RequestLogMiddleware logs every request with its request id
logger_class = RequestLogOnlyLogger
logconfig_dict = build_logging_config(
    level=os.environ.get("LOG_LEVEL", "INFO"), fmt=os.environ.get("LOG_FORMAT", "json")
)
# Naming gunicorn's loggers replaces the plain-text handlers gunicorn attaches to them.
logconfig_dict["loggers"].update(
    {
        name: {"handlers": ["console"], "level": "INFO", "propagate": False}
        for name in ("gunicorn.error", "gunicorn.access")
    }
)
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
