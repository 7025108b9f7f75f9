from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from rest_framework.authentication import (
    SessionAuthentication,
    TokenAuthentication,
    get_authorization_header,
)
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request


class BearerTokenAuthentication(TokenAuthentication):
    """DRF tokens presented as `Authorization: Bearer <token>` (SPEC section 2), the scheme's
    name in any case (RFC 9110). A token sent under another scheme (DRF's own `Token`, `JWT`)
    is refused with 401 rather than passed over: where anyone may write (an order), the
    request would otherwise be served as no one's. `Basic` beside the session cookie is left
    to the session: a proxy asking for a password (a staging site) has the browser send it
    with every request."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, Token] | None:
        words = get_authorization_header(request).split(maxsplit=1)
        if not words:
            return None
        scheme = words[0].lower()
        if scheme == b"basic" and settings.SESSION_COOKIE_NAME in request._request.COOKIES:
            return None
        if scheme != b"bearer":
            raise AuthenticationFailed(
                "Send the token as `Authorization: Bearer <token>`; the "
                f"{words[0].decode('latin-1')[:20]} scheme is not accepted."
            )
        return super().authenticate(request)


class SessionCookieAuthentication(SessionAuthentication):
    """DRF's session authentication (with its CSRF check), skipped at once when the request
    carries no session cookie: such a request can only be anonymous, and asking Django for
    its user builds a session store to find that out (2% of an anonymous order)."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        if settings.SESSION_COOKIE_NAME not in request._request.COOKIES:
            return None
        return super().authenticate(request)
