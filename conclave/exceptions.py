"""Domain errors. Services raise these; the API's exception handler turns each into a 4xx JSON
body `{"error": <code>, "detail": <message or field errors>, ...extra}` and never a 500."""

from typing import Any, ClassVar


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
