"""`Idempotency-Key`: a client that retries a write it got no answer to (a timeout, a dropped
connection, a 502 from a proxy) sends the same key again, and gets the first answer back
instead of a second order, comment or time entry.

- The key is the client's (1 to 255 visible ASCII characters; a UUID per user action is the
  usual choice), scoped to the signed-in user, or shared by anonymous callers.
- The answer is kept in the write's own transaction, so a write is never done without its
  answer being kept. A retry arriving while the first is still running waits for it.
- Only a success is kept: a refused request (4xx) changed nothing, and running it again with
  the same key gives the same refusal, or success if the cause went away.
- The same key with a different method, path or body is refused with 422.
- Answers are kept for KEPT (beat job `conclave.tasks.purge_idempotency_keys`).

Libraries that do this keep the answer after the view's transaction has committed; a worker
stopped in between writes twice on the retry.
"""

import functools
import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, QueryDict
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from conclave.exceptions import DomainError, ValidationFailed
from conclave.models import IdempotentRequest

HEADER = "Idempotency-Key"
KEPT = timedelta(hours=24)
KEY_FORMAT = re.compile(r"[\x21-\x7e]{1,255}")
# A browser form carries its key in a field (the mechanic UI's new-order form).
FORM_FIELD = "idempotency_key"
FORM_ONLY_FIELDS = frozenset({FORM_FIELD, "csrfmiddlewaretoken"})


class IdempotencyKeyReused(DomainError):
    status_code = 422
    error = "idempotency_key_reused"
    default_detail = (
        "This Idempotency-Key was sent with a different request; a new request needs a new key."
    )


def key_scope(request: HttpRequest | Request) -> str:
    return f"user:{request.user.pk}" if request.user.is_authenticated else "anonymous"


def fingerprint(request: HttpRequest | Request) -> str:
    """The request as sent: method, path and body (form fields, each file's bytes)."""
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    data = request.data if isinstance(request, Request) else request.POST
    if isinstance(data, QueryDict):
        body: Any = sorted(
            (name, values) for name, values in data.lists() if name not in FORM_ONLY_FIELDS
        )
        for name, files in sorted(request.FILES.lists()):
            for upload in files:
                content = hashlib.sha256()
                for chunk in upload.chunks():
                    content.update(chunk)
                upload.seek(0)
                body.append([name, upload.size, content.hexdigest()])
    else:
        body = data
    digest.update(json.dumps(body, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def once(
    *, scope: str, key: str, fingerprint: str, run: Callable[[], tuple[int, Any]]
) -> tuple[int, Any, bool]:
    """`run()`'s (status, response) the first time, and what it was at every retry: returns
    (status, response, replayed). `run` may raise: then nothing is kept (nor written)."""
    if not KEY_FORMAT.fullmatch(key):
        raise ValidationFailed({HEADER: ["1 to 255 visible ASCII characters."]})
    with transaction.atomic():
        try:
            with transaction.atomic():
                # A retry running at the same moment waits here for the first to finish.
                kept = IdempotentRequest.objects.create(
                    scope=scope, key=key, fingerprint=fingerprint, status=0
                )
        except IntegrityError:
            kept = IdempotentRequest.objects.get(scope=scope, key=key)
            if kept.fingerprint != fingerprint:
                raise IdempotencyKeyReused() from None
            return kept.status, kept.response, True
        status, response = run()
        if 200 <= status < 400:
            kept.status, kept.response = status, response
            kept.save(update_fields=["status", "response"])
        else:
            kept.delete()
        return status, response, False


def idempotent(handler: Callable[..., Response]) -> Callable[..., Response]:
    """For an API view's write method: honours `Idempotency-Key` when the request has one."""

    @functools.wraps(handler)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        answered: list[Response] = []

        def run() -> tuple[int, Any]:
            response = handler(view, request, *args, **kwargs)
            answered.append(response)
            data = (
                None if response.data is None else json.loads(JSONRenderer().render(response.data))
            )
            return response.status_code, data

        status, data, replayed = once(
            scope=key_scope(request), key=key, fingerprint=fingerprint(request), run=run
        )
        if not replayed:
            return answered[0]
        return Response(data, status=status, headers={"Idempotent-Replayed": "true"})

    wrapper.idempotent = True  # type: ignore[attr-defined]  # read by conclave.openapi
    return wrapper
