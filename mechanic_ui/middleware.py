"""The language a request is answered in.

- The mechanic pages (ENABLE_MECH_I18N on): the signed-in mechanic's language (kept on their
  profile, so it follows them to any device), else the language cookie's, else the browser's
  Accept-Language. With the flag off, English.
- The API: the Accept-Language the client sends (the mechanic pages' script sends the page's),
  for error messages; English without one. Field names, codes and values never change.
- Anything else (the admin, the observer, probes): English.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.translation.trans_real import parse_accept_lang_header

from flags.selectors import request_flags
from orders.selectors import mechanic_of

MECHANIC_PREFIX = "/mechanic/"
API_PREFIX = "/api/"


def mechanic_language(request: HttpRequest) -> str:
    if not request_flags(request)["ENABLE_MECH_I18N"]:
        return settings.LANGUAGE_CODE
    mechanic = mechanic_of(request.user)
    if mechanic is not None:
        return str(mechanic.language)
    return translation.get_language_from_request(request)


def accepted_language(request: HttpRequest) -> str:
    """The first language of the Accept-Language header that the product speaks."""
    for code, _quality in parse_accept_lang_header(request.headers.get("Accept-Language", "")):
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


class LanguageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path.startswith(MECHANIC_PREFIX):
            language = mechanic_language(request)
            varies: tuple[str, ...] = ("Cookie", "Accept-Language")
        elif path.startswith(API_PREFIX) and "HTTP_ACCEPT_LANGUAGE" in request.META:
            language = accepted_language(request)
            varies = ("Accept-Language",)
        else:
            return self.get_response(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language
        try:
            response = self.get_response(request)
        finally:
            translation.deactivate()
        response.headers.setdefault("Content-Language", language)
        patch_vary_headers(response, varies)
        return response
