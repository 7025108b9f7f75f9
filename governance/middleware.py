from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import NoReverseMatch, reverse

from conclave.exceptions import Halted
from governance.halt import halt_status

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Writes that must go on while halted: the halt itself, its ceremony, signing in and out.
ALLOWED_WHILE_HALTED = (
    "halt",
    "halt-ceremony-approve",
    "halt-clear",
    "admin:login",
    "admin:logout",
)


class HaltMiddleware:
    """Refuses every unsafe request while the system is halted (SPEC 3.4): API, admin and bot
    webhook alike, with 503 `{"error": "halted", "reason": ...}`. Reads go on. The check is a
    lookup in this process's halt status, refreshed from both channels every half second."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._allowed: frozenset[str] | None = None

    def allowed_paths(self) -> frozenset[str]:
        if self._allowed is None:
            paths = set()
            for name in ALLOWED_WHILE_HALTED:
                try:
                    paths.add(reverse(name))
                except NoReverseMatch:  # a URL conf without it (tests' own)
                    continue
            self._allowed = frozenset(paths)
        return self._allowed

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in SAFE_METHODS and request.path_info not in self.allowed_paths():
            status = halt_status()
            if status.halted:
                refusal = Halted(status.reason or "halted")
                response = JsonResponse(refusal.body(), status=refusal.status_code)
                response["Retry-After"] = "60"
                return response
        return self.get_response(request)
