import time
from collections.abc import Callable

import structlog
from django.http import HttpRequest, HttpResponse

from conclave.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetricsMiddleware:
    """Counts and times every request by view name (bounded label values, never raw paths)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        view = (match.view_name or "unnamed") if match else "unmatched"
        method = request.method if request.method in KNOWN_METHODS else "OTHER"
        HTTP_REQUESTS.labels(view, method, str(response.status_code)).inc()
        HTTP_REQUEST_DURATION.labels(view, method).observe(time.perf_counter() - started)
        return response


class RequestIdMiddleware:
    """Returns the request id (bound by django_structlog) as X-Request-ID and logs the peer.

    The client address logged is REMOTE_ADDR: headers such as X-Forwarded-For are the
    client's to forge.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        structlog.contextvars.bind_contextvars(peer=request.META.get("REMOTE_ADDR"))
        response = self.get_response(request)
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            response["X-Request-ID"] = request_id
        return response
