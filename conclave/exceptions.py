"""Domain errors. Services raise these; the API's exception handler turns each into a 4xx JSON
body `{"error": <code>, "detail": <message or field errors>, ...extra}` and never a 500."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from django.db import IntegrityError, transaction


class DomainError(Exception):
    status_code: ClassVar[int] = 400
    error: ClassVar[str] = "invalid_request"
    default_detail: ClassVar[str] = "The request cannot be carried out."

    def __init__(self, detail: Any = None, **extra: Any) -> None:
        self.detail = self.default_detail if detail is None else detail
        self.extra = extra
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "detail": self.detail, **self.extra}

    def text(self, *, fields: bool = True) -> str:
        """The refusal in one line: each field's problems after its name, or (`fields` false,
        for readers to whom field names mean nothing: a mechanic) the problems alone."""
        if not isinstance(self.detail, dict):
            return str(self.detail)
        return " ".join(
            f"{field}: {' '.join(map(str, problems))}" if fields else " ".join(map(str, problems))
            for field, problems in self.detail.items()
        )


class ValidationFailed(DomainError):
    error = "validation_error"
    default_detail = "The request data is not valid."


class NotFound(DomainError):
    status_code = 404
    error = "not_found"
    default_detail = "No such resource."


class FeatureDisabled(DomainError):
    status_code = 404
    error = "feature_disabled"
    default_detail = "This feature is switched off."


class Forbidden(DomainError):
    status_code = 403
    error = "forbidden"
    default_detail = "You may not do this."


class PreconditionFailed(DomainError):
    """An `If-Match` that no longer holds: the resource changed since the client read it."""

    status_code = 412
    error = "precondition_failed"
    default_detail = "The resource has changed since it was read."


class Conflict(DomainError):
    status_code = 409
    error = "conflict"
    default_detail = "The request conflicts with the current state."


class Halted(DomainError):
    """Every write is refused while the system is halted (SPEC 3.4): `{"error": "halted", ...}`."""

    status_code = 503
    error = "halted"
    default_detail = "The system is halted; writes are refused until keepers clear the halt."

    def __init__(self, reason: str) -> None:
        super().__init__(reason=reason)


@contextmanager
def checked_again_if_refused(check: Callable[[], None]) -> Iterator[None]:
    """Runs a write that `check` allowed (a name or key not taken yet) in a savepoint. Should a
    unique index refuse it all the same, another transaction wrote the same value between the
    check and the write: the check, run again, now sees that row and raises its DomainError
    (a 409 rather than a 500). Any other IntegrityError passes on."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError:
        try:
            check()
        except DomainError as refusal:
            raise refusal from None  # the refusal says it all; the index only held it
        raise
