"""Request throttles. Anonymous clients are throttled by address (DRF's AnonRateThrottle and
the scoped throttles); signed-in users by account, here."""

from typing import TYPE_CHECKING

from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle

if TYPE_CHECKING:  # DRF imports this module while it sets up rest_framework.views
    from rest_framework.request import Request
    from rest_framework.views import APIView


class SignedInUserThrottle(UserRateThrottle):
    """DRF's per-user throttle for signed-in users only. (DRF's own also counts anonymous
    requests by address, in a second history beside the anonymous throttle's.)"""

    def get_cache_key(self, request: "Request", view: "APIView") -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return super().get_cache_key(request, view)


class SignInFormThrottle(SimpleRateThrottle):
    """Sign-in attempts at a page's form by client address, at the API login's rate
    (`THROTTLE_RATE_LOGIN`); each form (`form`) keeps its own count. The page checks it before
    the password and clears it on a success."""

    scope = "login"
    form = ""

    def get_cache_key(self, request: "Request", view: "APIView | None") -> str:
        return self.cache_format % {"scope": f"login-{self.form}", "ident": self.get_ident(request)}

    def wait_seconds(self) -> int:
        """Whole seconds until the next try, at least one: the page's words and Retry-After."""
        return max(1, int(self.wait() or 60))


class PasswordChangeThrottle(SignInFormThrottle):
    """A page's password change (the mechanics' profile, the admin's): tries of the current
    password counted per user, at the login's rate, as `POST /api/mechanic/password`'s scoped
    throttle counts them. A session left open must not be a way to find the password."""

    form = "password"

    def get_cache_key(self, request: "Request", view: "APIView | None") -> str:
        return self.cache_format % {"scope": f"login-{self.form}", "ident": request.user.pk}
