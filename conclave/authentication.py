from typing import Any

from django.conf import settings
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request


class BearerTokenAuthentication(TokenAuthentication):
    """DRF tokens presented as `Authorization: Bearer <token>` (SPEC section 2)."""

    keyword = "Bearer"


class SessionCookieAuthentication(SessionAuthentication):
    """DRF's session authentication (with its CSRF check), skipped at once when the request
    carries no session cookie: such a request can only be anonymous, and asking Django for
    its user builds a session store to find that out (2% of an anonymous order)."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        if settings.SESSION_COOKIE_NAME not in request._request.COOKIES:
            return None
        return super().authenticate(request)
