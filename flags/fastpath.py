"""`GET /api/config/feature-flags` answered in front of Django.

Every page of every client reads the flags, so this is the busiest request the product
serves. Through Django it pays for eleven middleware and DRF's dispatch to return six booleans
this process already holds (flags_snapshot), several times the cost of the answer itself. This
WSGI wrapper answers that one exact request (GET or HEAD, no query string, a host in
ALLOWED_HOSTS, HTTPS where SECURE_SSL_REDIRECT asks for it) with the same body and the same
security headers, and counts it in the same request metrics. Anything else, including every
case it is unsure of, goes to Django, whose view (flags.apis.FeatureFlagsApi) stays the
documented and tested definition of the endpoint.
"""

import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from conclave.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS
from conclave.middleware import REQUEST_ID
from flags.constants import FLAG_NAMES
from flags.selectors import flags_snapshot

PATH = "/api/config/feature-flags"
VIEW_NAME = "feature-flags"  # the URL name, as RequestMetricsMiddleware labels it


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def public_flags_body() -> bytes:
    """The runbook's six-key map, as DRF's JSON renderer writes it."""
    flags = flags_snapshot()
    return json.dumps({name: flags[name] for name in FLAG_NAMES}, separators=(",", ":")).encode()


def _is_secure(environ: dict[str, Any]) -> bool:
    header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if header:
        name, value = header
        forwarded = environ.get(name)
        if forwarded is not None:
            return forwarded.split(",", 1)[0].strip() == value
    return environ.get("wsgi.url_scheme") == "https"


def _host_allowed(environ: dict[str, Any]) -> bool:
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS or (
        ["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else []
    )
    return bool(domain) and validate_host(domain, allowed)


def _headers(environ: dict[str, Any], secure: bool, length: int) -> list[tuple[str, str]]:
    given = environ.get("HTTP_X_REQUEST_ID", "")
    request_id = given if REQUEST_ID.fullmatch(given) else str(uuid.uuid4())
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(length)),
        ("Vary", "Accept"),
        ("X-Frame-Options", settings.X_FRAME_OPTIONS),
        ("X-Request-ID", request_id),
    ]
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        headers.append(("Referrer-Policy", settings.SECURE_REFERRER_POLICY))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append(("Strict-Transport-Security", hsts))
    return headers


def with_feature_flags_fast_path(django_app: WSGIApp) -> WSGIApp:
    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if (
            environ.get("PATH_INFO") != PATH
            or method not in ("GET", "HEAD")
            or environ.get("QUERY_STRING")
        ):
            return django_app(environ, start_response)
        secure = _is_secure(environ)
        if (settings.SECURE_SSL_REDIRECT and not secure) or not _host_allowed(environ):
            return django_app(environ, start_response)  # Django redirects or refuses
        started = time.perf_counter()
        body = public_flags_body()
        start_response("200 OK", _headers(environ, secure, len(body)))
        HTTP_REQUESTS.labels(VIEW_NAME, method, "200").inc()
        HTTP_REQUEST_DURATION.labels(VIEW_NAME, method).observe(time.perf_counter() - started)
        return [b"" if method == "HEAD" else body]

    return application
