"""The OpenAPI document states the error answers too, so clients and the fuzzer know every
status an operation can give. They are derived from what the view really does: its
authentication, permissions, throttles, parameters and method, and the halt (every unsafe
method but the ceremony's answers 503 while halted; any operation answers 503 while the
database cannot be reached). An operation that refuses for a reason of its own (409, a
switched-off feature's 404) names it with `extend_schema(responses=...)`."""

from typing import Any

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import SAFE_METHODS, AllowAny

from conclave import idempotency
from conclave.middleware import paths_allowed_while_halted
from conclave.serializers import StrictInputSerializer


class SessionCookieScheme(SessionScheme):
    """The session cookie, as drf-spectacular describes DRF's own session authentication."""

    target_class = "conclave.authentication.SessionCookieAuthentication"


class ErrorSerializer(serializers.Serializer):
    """`{"error": <code>, "detail": <message or field errors>, ...}` (conclave.exceptions)."""

    error = serializers.CharField(help_text="A stable machine-readable code.")
    detail = serializers.JSONField(help_text="A message, or the errors of each field.")
    retry_after = serializers.IntegerField(required=False, help_text="Seconds to wait (429 only).")


IDEMPOTENCY_KEY = OpenApiParameter(
    idempotency.HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any value of 1 to 255 visible ASCII characters (a UUID per user action), the same at "
        "every retry: a retry of a request that succeeded gets its answer again (with "
        "`Idempotent-Replayed: true`) instead of writing twice. Answers are kept for 24 hours."
    ),
)


class AutoSchema(SpectacularAutoSchema):
    def _idempotent(self) -> bool:
        return getattr(getattr(self.view, self.method.lower(), None), "idempotent", False)

    def get_override_parameters(self) -> list[Any]:
        extra = [IDEMPOTENCY_KEY] if self._idempotent() else []
        return [*super().get_override_parameters(), *extra]

    def _map_serializer(self, serializer: Any, direction: str, *args: Any, **kwargs: Any) -> Any:
        schema = super()._map_serializer(serializer, direction, *args, **kwargs)
        if direction == "request" and isinstance(serializer, StrictInputSerializer):
            schema["additionalProperties"] = False
        return schema

    def _get_request_for_media_type(self, serializer: Any, direction: str = "request") -> Any:
        # drf-spectacular reads every PATCH body as partial (all fields optional); a view
        # whose PATCH needs its fields says `partial_patch = False`.
        if self.method == "PATCH" and getattr(self.view, "partial_patch", True) is False:
            self.method = "PUT"
            try:
                return super()._get_request_for_media_type(serializer, direction)
            finally:
                self.method = "PATCH"
        return super()._get_request_for_media_type(serializer, direction)

    def _map_serializer_field(self, field: Any, direction: str, *args: Any, **kwargs: Any) -> Any:
        schema = super()._map_serializer_field(field, direction, *args, **kwargs)
        if isinstance(field, serializers.DecimalField) and field.max_whole_digits is not None:
            # At least one digit (drf-spectacular's pattern lets "" through); no sign where
            # the field refuses negative amounts.
            sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
            schema["pattern"] = (
                rf"^{sign}[0-9]{{1,{field.max_whole_digits}}}"
                rf"(?:\.[0-9]{{1,{field.decimal_places}}})?$"
            )
        return schema

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        for status, description in self._errors(operation):
            responses.setdefault(
                str(status),
                {
                    "description": description,
                    "content": {"application/json": {"schema": self._error_schema()}},
                },
            )
        return operation

    def _error_schema(self) -> dict[str, Any]:
        return self.resolve_serializer(ErrorSerializer, "response").ref

    def _errors(self, operation: dict[str, Any]) -> list[tuple[int, str]]:
        errors = self._client_errors(operation)
        headers = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "header"}
        if "If-Match" in headers:
            errors.append((412, "`precondition_failed`: changed since the `ETag` given was read."))
        return [*sorted(errors), *self._server_errors()]

    def _client_errors(self, operation: dict[str, Any]) -> list[tuple[int, str]]:
        view, unsafe = self.view, self.method not in SAFE_METHODS
        errors = []
        if "requestBody" in operation or operation.get("parameters") or unsafe:
            errors.append((400, "The request is not valid: `detail` names each problem."))
        authenticators = view.get_authenticators()
        if authenticators:
            errors.append((401, "The credentials given are not valid."))
        guarded = not all(isinstance(p, AllowAny) for p in view.get_permissions())
        csrf = unsafe and any(isinstance(a, SessionAuthentication) for a in authenticators)
        if guarded or csrf:
            errors.append((403, "Not signed in, not allowed, or (a session) no CSRF token."))
        if any(p["in"] == "path" for p in operation.get("parameters", ())):
            errors.append((404, "No such resource, or not yours."))
        elif not unsafe and getattr(view, "pagination_class", None):
            errors.append((404, "No such page."))
        if unsafe:
            # Every write appends an event, which the log can refuse (no active key, ...).
            errors.append((409, "The request conflicts with the current state: `detail` says how."))
        if self._idempotent():
            errors.append((422, "`idempotency_key_reused`: the key was sent with another request."))
        if "requestBody" in operation:
            errors.append((413, "The request body is too large."))
            errors.append((415, "The request body is not in a supported media type."))
        if view.get_throttles():
            errors.append((429, "Too many requests: `retry_after` says when to try again."))
        return errors

    def _server_errors(self) -> list[tuple[int, str]]:
        unsafe = self.method not in SAFE_METHODS
        errors = []
        if unsafe and self.path not in paths_allowed_while_halted():
            errors.append((503, "`halted`: writes are refused until the halt is cleared; or "
                                "`database_unavailable`: try again in a few seconds."))  # fmt: skip
        else:
            errors.append((503, "`database_unavailable`: try again in a few seconds."))
        if unsafe:
            errors.append((507, "`storage_full`: the database cannot write to its disk."))
        return errors
