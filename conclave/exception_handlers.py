"""One place that turns errors into JSON for API clients.

`api_exception_handler` is DRF's EXCEPTION_HANDLER. The `json_*` views are Django's
handler400/403/404/500, answering JSON under the API prefixes and HTML elsewhere.
"""

import math
import sys
from typing import Any

import structlog
from django.conf import settings
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.core.exceptions import BadRequest, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.views import defaults
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from conclave.exceptions import DomainError
from conclave.logging import logged_path

logger = structlog.get_logger(__name__)

API_PREFIXES = ("/api/", "/v1/")
NUL_REFUSED = "Null characters are not allowed."  # Django's words for the same (its forms)
DATABASE_UNREACHABLE = (OperationalError, InterfaceError)
# SQLite's words (the quick start: "disk I/O error" when its WAL cannot grow), and
# PostgreSQL's "could not extend file ...: No space left on device".
DISK_FULL = ("database or disk is full", "disk I/O error", "No space left on device")


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        logger.info("domain_error", error=exc.error, status=exc.status_code)
        return Response(exc.body(), status=exc.status_code)

    if isinstance(exc, DjangoValidationError):
        exc = drf_exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    if not isinstance(exc, drf_exceptions.APIException):
        return None  # unexpected: Django logs it and answers through json_server_error
    response = drf_exception_handler(exc, context)
    if response is None:
        return None

    if isinstance(exc, drf_exceptions.ValidationError):
        body: dict[str, Any] = {"error": "validation_error", "detail": response.data}
    else:
        codes = exc.get_codes()
        body = {
            "error": codes if isinstance(codes, str) else exc.default_code,
            "detail": response.data.get("detail", exc.detail),
        }
    wait = getattr(exc, "wait", None)  # set by Throttled; absent from the stubs
    if isinstance(exc, drf_exceptions.Throttled) and wait is not None:
        body["retry_after"] = math.ceil(wait)
    response.data = body
    return response


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES) or request.path in ("/health", "/metrics")


def too_large(request: HttpRequest, limit: int, *, upload: bool = False) -> HttpResponse:
    """413: the API's JSON, the mechanic pages' or the admin's page (a way back to the form),
    else a line of text. `upload`: an upload's body over REQUEST_MAX_BYTES."""
    detail = f"The request body is over the limit of {limit} bytes."
    if _wants_json(request):
        return JsonResponse({"error": "request_too_large", "detail": detail}, status=413)
    refusal = detail
    if upload and request.path_info.startswith("/mechanic/"):
        # The mechanic pages' one upload is a photo; their script checks it as it is chosen,
        # so this is a form sent without the script, told as the script would have.
        mib = settings.ORDER_PHOTO_MAX_BYTES // (1024 * 1024)
        refusal = gettext("This photo is over %(mib)s MiB: choose a smaller one.") % {"mib": mib}
    page = refusal_page(request, refusal, 413)
    return page or HttpResponse(detail, status=413, content_type="text/plain; charset=utf-8")


def refusal_page(request: HttpRequest, refusal: str, status: int) -> HttpResponse | None:
    """The admin's or the mechanic pages' page saying what was refused and why, with a way
    back ("Not saved" for a form sent; None for other paths)."""
    saving = request.method not in ("GET", "HEAD", "OPTIONS", "TRACE")
    # Back to the form sent, or to the page read without what was refused in its URL.
    back = request.get_full_path() if saving else request.path
    context: dict[str, Any] = {"back": back, "refusal": refusal, "saving": saving}
    if request.path_info.startswith("/mechanic/"):
        template = "mechanic/refused.html"
    elif request.path_info.startswith("/admin/"):
        from django.contrib import admin

        template = "admin/conclave/refused.html"
        context.update(admin.site.each_context(request), title="Not saved" if saving else "Refused")
    else:
        return None
    return render(request, template, context, status=status)


def json_bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):  # a body without a Content-Length
        return too_large(request, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if _wants_json(request):
        detail = NUL_REFUSED if str(exception) == NUL_REFUSED else "Malformed request."
        return JsonResponse({"error": "bad_request", "detail": detail}, status=400)
    user = getattr(request, "user", None)
    if (
        request.path_info.startswith("/admin/")
        and user is not None
        and user.is_staff
        and isinstance(exception, BadRequest | DisallowedModelAdminLookup)
    ):
        # Staff see what was refused ("Filtering by vin__regex not allowed", the NUL rule):
        # this product's words and Django's admin's, naming only what the URL or form held.
        page = refusal_page(request, str(exception), 400)
        if page is not None:
            return page
    return defaults.bad_request(request, exception)


def json_permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {
                "error": "permission_denied",
                "detail": str(exception) or "You do not have permission to perform this action.",
            },
            status=403,
        )
    return defaults.permission_denied(request, exception)


def json_page_not_found(request: HttpRequest, exception: Exception | None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"error": "not_found", "detail": "No such endpoint."}, status=404)
    return defaults.page_not_found(request, exception)


def database_error_response(
    request: HttpRequest, error: BaseException | None
) -> HttpResponse | None:
    """A database that cannot be reached (restarting, failing over) is a 503 to retry, a full
    disk a 507; not a bug's 500. None for any other error."""
    if isinstance(error, OperationalError) and any(m in str(error) for m in DISK_FULL):
        status, code = 507, "storage_full"
        detail = "The database cannot write to its disk (full?): nothing was saved. Free some "
        detail += "space, then retry."
    elif isinstance(error, DATABASE_UNREACHABLE):
        status, code = 503, "database_unavailable"
        detail = "The database cannot be reached just now: try again in a few seconds."
    else:
        return None
    logger.error(code, error=str(error).strip()[:300], path=logged_path(request, query=False))
    response: HttpResponse = (
        JsonResponse({"error": code, "detail": detail}, status=status)
        if _wants_json(request)
        else HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")
    )
    if status == 503:
        response["Retry-After"] = "5"
    return response


def json_server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500, called while the exception is being handled."""
    database = database_error_response(request, sys.exc_info()[1])
    if database is not None:
        return database
    if _wants_json(request):
        return JsonResponse(
            {"error": "server_error", "detail": "An unexpected error occurred; it was logged."},
            status=500,
        )
    return defaults.server_error(request)
