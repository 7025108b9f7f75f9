import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

import structlog
from csp.constants import HEADER
from csp.middleware import CheckableLazyObject, CSPMiddleware, PolicyParts
from csp.utils import build_policy
from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.core.exceptions import BadRequest, MiddlewareNotUsed
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject, empty

from conclave.exception_handlers import (
    API_PREFIXES,
    NUL_REFUSED,
    database_error_response,
    json_page_not_found,
    refusal_page,
    too_large,
)
from conclave.exceptions import DomainError, Halted
from conclave.halt import halt_status
from conclave.logging import logged_path
from conclave.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # an upstream id is taken only if plain

logger = structlog.get_logger("conclave.requests")
request_logger = logging.getLogger("conclave.requests")


class RequestMetricsMiddleware:
    """Counts and times every request by view name (bounded label values, never raw paths).
    Each series is looked up once per process (prometheus-client checks the labels on every
    lookup)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        view = (match.view_name or "unnamed") if match else "unmatched"
        method = request.method if request.method in KNOWN_METHODS else "OTHER"
        counted = (view, method, response.status_code)
        if (counter := self._counters.get(counted)) is None:
            counter = self._counters[counted] = HTTP_REQUESTS.labels(view, method, str(counted[2]))
        if (timer := self._timers.get(counted[:2])) is None:
            timer = self._timers[counted[:2]] = HTTP_REQUEST_DURATION.labels(view, method)
        counter.inc()
        timer.observe(time.perf_counter() - started)
        return response


class RequestLogMiddleware:
    """Gives every log line of a request its request id and the peer's address (REMOTE_ADDR:
    headers such as X-Forwarded-For are the client's to forge), returns the id as
    X-Request-ID, and logs `request_finished` (code, method and path, user id) at INFO, at
    WARNING for a 4xx and ERROR for a 5xx (Django's own `django.request` logger adds the
    traceback of a failure).

    An incoming X-Request-ID is used only with TRUST_UPSTREAM_REQUEST_ID (behind a proxy
    that sets it), and only if plain. Lines logged while a streamed body is sent keep the id.

    django-structlog's RequestMiddleware did this (the package still carries the id into
    Celery tasks), but built its request lines, sent their signals and read its settings on
    every request whether the level was logged or not: a tenth of an order's CPU.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.trust_upstream = settings.TRUST_UPSTREAM_REQUEST_ID

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.META.get("HTTP_X_REQUEST_ID", "") if self.trust_upstream else ""
        request_id = given if REQUEST_ID.fullmatch(given) else str(uuid.uuid4())
        bound = structlog.contextvars.bind_contextvars(
            request_id=request_id, peer=request.META.get("REMOTE_ADDR")
        )
        try:
            response = self.get_response(request)
            code = response.status_code
            level = (
                logging.ERROR if code >= 500 else logging.WARNING if code >= 400 else logging.INFO
            )
            if request_logger.isEnabledFor(level):
                logger.log(
                    level, "request_finished", code=code,
                    request=f"{request.method} {logged_path(request)}",
                    user_id=_user_id(request),
                )  # fmt: skip
            response["X-Request-ID"] = request_id
            if isinstance(response, StreamingHttpResponse) and not response.is_async:
                response.streaming_content = _in_context(
                    response.streaming_content, structlog.contextvars.get_contextvars()
                )
            return response
        finally:
            # (Only this middleware binds request context: resetting its own variables is
            # enough, and far cheaper than clearing every context variable.)
            structlog.contextvars.reset_contextvars(**bound)


def _in_context(content: Iterator[bytes], context: dict[str, Any]) -> Iterator[bytes]:
    """A streamed body, sent (after the middleware has returned) with the request's context."""
    with structlog.contextvars.bound_contextvars(**context):
        yield from content


def _user_id(request: HttpRequest) -> Any:
    """The signed-in user's id, if anything of the request looked the user up (a user nothing
    asked for is not looked up just to be logged)."""
    user = getattr(request, "user", None)
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return None
    return user.pk if user.is_authenticated else None


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Writes that must go on while halted: the halt itself, its ceremony, signing in and out.
ALLOWED_WHILE_HALTED = (
    "halt",
    "halt-ceremony-approve",
    "halt-clear",
    "admin:login",
    "admin:logout",
    "admin:halt-ceremony",  # keepers approve and clear from the admin while halted
    "admin:events_event_changelist",  # "verify range": reads the log, records the run
    "mechanic:login",
    "mechanic:logout",
    # (the switcher: while halted it changes the cookie, never the profile)
    "mechanic:language",
)


def paths_allowed_while_halted() -> frozenset[str]:
    paths = set()
    for name in ALLOWED_WHILE_HALTED:
        try:
            paths.add(reverse(name))
        except NoReverseMatch:  # a URL conf without it (tests' own)
            continue
    return frozenset(paths)


class HaltMiddleware:
    """Refuses every unsafe request while the system is halted (SPEC 3.4): API, admin and bot
    webhook alike, with 503 `{"error": "halted", "reason": ...}`. Reads go on. The check is a
    lookup in this process's halt status, refreshed from both channels every half second."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._allowed: frozenset[str] | None = None

    def allowed_paths(self) -> frozenset[str]:
        if self._allowed is None:
            self._allowed = paths_allowed_while_halted()
        return self._allowed

    @staticmethod
    def refusal_page(request: HttpRequest) -> HttpResponse | None:
        """The mechanic pages' and the admin's forms post to a page, not to the API: theirs
        is refused with a page (the halt and its reason, a way back), not a JSON body."""
        context: dict[str, Any] = {"back": request.get_full_path()}
        if request.path_info.startswith("/mechanic/"):
            template = "mechanic/halted.html"
        elif request.path_info.startswith("/admin/"):
            from django.contrib import admin

            template = "admin/conclave/halted.html"
            context.update(admin.site.each_context(request), title="Not saved")
        else:
            return None
        return render(request, template, context, status=Halted.status_code)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in SAFE_METHODS and request.path_info not in self.allowed_paths():
            status = halt_status()
            if status.halted:
                refusal = Halted(status.reason or "halted")
                response = self.refusal_page(request) or JsonResponse(
                    refusal.body(), status=refusal.status_code
                )
                response["Retry-After"] = "60"
                return response
        return self.get_response(request)


class RefusalMiddleware:
    """A service's refusal (DomainError) that a page's view did not catch, answered as what it
    is rather than as a 500: the halt's page, or a page saying why (the mechanic pages and the
    admin: exception_handlers.refusal_page), or the API's JSON body. The views check what they can before they
    write; a refusal reaches here when the state changed in between (another request took the
    same name a moment earlier, a halt raised elsewhere reached this process between the
    page's check and the service's). DRF's views answer their own (exception_handlers)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DomainError):
            return None
        logger.info(
            "request_refused", error=exception.error, path=logged_path(request, query=False)
        )
        if isinstance(exception, Halted):
            page = HaltMiddleware.refusal_page(request)
        else:
            page = refusal_page(request, exception.text(), exception.status_code)
        response = page or JsonResponse(exception.body(), status=exception.status_code)
        if isinstance(exception, Halted):
            response["Retry-After"] = "60"
        return response


class RequestSizeLimitMiddleware:
    """Refuses a body larger than the limit from its Content-Length, with 413, before any of
    it is read: DATA_UPLOAD_MAX_MEMORY_SIZE for JSON and forms, REQUEST_MAX_BYTES for a
    multipart upload (a photo). It runs after the session, user and language middleware
    (none of which reads a body), so a page's refusal is that page's, in its language."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django reads an unparsable length as none
        multipart = request.content_type == "multipart/form-data"
        limit = settings.REQUEST_MAX_BYTES if multipart else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if length > limit:
            return too_large(request, limit, upload=multipart)
        return self.get_response(request)


class NulInputMiddleware:
    """Refuses a NUL character in the query string or, outside the JSON APIs, in a form, with
    400 (conclave.exception_handlers.json_bad_request). PostgreSQL's text cannot hold one: it
    would fail deep in a query as a 500 (an admin filter, the mechanic's search, a form's
    field). The APIs' JSON bodies are their serializers' to check (DRF's CharField refuses
    NUL); a form is read here only where the CSRF check reads it anyway."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        form = (
            request.POST.lists()
            if request.method == "POST" and not request.path.startswith(API_PREFIXES)
            else ()
        )
        if (
            "%00" in query
            or "\x00" in query
            or any(
                "\x00" in name or any("\x00" in value for value in values) for name, values in form
            )
        ):
            raise BadRequest(NUL_REFUSED)
        return self.get_response(request)


class ApiInUtcMiddleware:
    """The JSON APIs speak UTC whatever the workshop's TIME_ZONE: datetimes out as RFC 3339
    with `Z`, a datetime sent without an offset read as UTC (the usual rule of APIs, and what
    their clients and the observers' tools were given). The pages and the admin keep the
    workshop's zone; the days the APIs count ("today", a history's dates) are the workshop's
    (orders.selectors)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIXES):
            return self.get_response(request)
        with timezone.override(UTC):
            return self.get_response(request)


class ApiNotFoundMiddleware:
    """With DEBUG on (`make run`), an unknown path under the APIs is their JSON 404, as with
    it off (conclave.urls' handler404): Django answers a path no pattern matches with its
    debug page then, whatever handler404 says. Not loaded with DEBUG off."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not settings.DEBUG:
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 404
            and request.path.startswith(API_PREFIXES)
            and response.get("Content-Type", "").startswith("text/html")
        ):
            return json_page_not_found(request, None)
        return response


class DatabaseErrorMiddleware:
    """A view's database error that is an outage, not a bug, answered as one: unreachable 503,
    disk full 507 (conclave.exception_handlers.database_error_response). Django's handler500
    does the same for errors outside views, but with DEBUG on (the quick start) Django shows
    its debug page instead of calling it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return database_error_response(request, exception)


class LazyMessageMiddleware(MessageMiddleware):
    """Django's messages middleware, the storage made on first use: the API's requests never
    use it, and building it (a cookie and a session storage) then updating it cost more than
    1% of an order."""

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response
        return super().process_response(request, response)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, the settings' policy built once: django-csp builds the header
    text from the settings on every response, the report-only one too, a tenth of what a small
    API request costs. A response that a view's decorator gave its own policy, that is
    exempted, or whose page used a nonce, goes through django-csp's own path."""

    _built: tuple[Any, Any, str, str] | None = None

    def _settings_policies(self) -> tuple[str, str]:
        enforced = getattr(settings, "CONTENT_SECURITY_POLICY", None)
        report_only = getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
        built = self._built
        if built is None or built[0] is not enforced or built[1] is not report_only:
            built = (enforced, report_only, build_policy(), build_policy(report_only=True))
            self._built = built
        return built[2], built[3]

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        enforced, report_only = self._settings_policies()
        own_path = (
            report_only
            or (settings.DEBUG and response.status_code in (500, 404))
            or getattr(response, "_csp_exempt", False)
            or (getattr(settings, "CONTENT_SECURITY_POLICY", None) or {}).get(
                "EXCLUDE_URL_PREFIXES"
            )
            or any(
                self.get_policy_parts(request=request, response=response, report_only=flag)
                != PolicyParts()
                for flag in (False, True)
            )
        )
        if own_path:
            return super().process_response(request, response)
        if enforced and HEADER not in response:
            response[HEADER] = enforced
        # As django-csp: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response
