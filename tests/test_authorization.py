"""Who may call what: every route of the URL conf (the admin's aside, below) × every method it
answers × every persona, with the status each must get. The routes and methods are read from
the URL conf, so a new endpoint without a row here fails `test_matrix__covers_every_route`.

A write carries an empty body: a persona let through gets 400 (the body is checked after the
permissions), one kept out gets 401/403, or 404 where the object is not theirs to see. The
objects in the paths are mechanic A's: mechanic B must get 404, never 403 (no hint that the
order exists). Pages (mechanic/, admin/) are called with a session, the API with a token.

The admin (`admin/…`): every page of every registered model, for every persona, is allowed
exactly when the persona's role (conclave.roles) holds the model's view permission.
"""

import io
import json

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from PIL import Image
from rest_framework.authtoken.models import Token

from conclave.roles import ROLES
from orders.services import item_add, photo_add, work_add
from tests.personas import (
    ANONYMOUS,
    FLAG_MANAGER,
    KEEPER,
    MECHANIC_A,
    MECHANIC_B,
    PERSONAS,
    SECURITY_ADMIN,
    STAFF_MEMBER,
    Workshop,
    build_workshop,
)

pytestmark = pytest.mark.django_db

# Statuses in the order of PERSONAS:
#  anonymous, mechanic A, mechanic B, staff, flag manager, keeper, security admin
MATRIX: dict[tuple[str, str], str] = {
    # The workshop's staff (the Staff role) handle orders; the other staff roles do not see
    # them. Catalog writes need the catalog's model permissions; flags, a flag manager's.
    ("DELETE", "api/admin/categories/<int:category_id>"): "401 403 403 204 403 403 403",
    ("DELETE", "api/admin/parts/<int:part_id>"): "401 403 403 204 403 403 403",
    ("DELETE", "api/orders/<int:order_id>/items/<int:item_id>"): "401 204 404 204 404 404 404",
    ("DELETE", "api/orders/<int:order_id>/photos/<int:photo_id>"): "401 204 404 204 404 404 404",
    ("DELETE", "api/orders/<int:order_id>/works/<int:work_id>"): "401 204 404 204 404 404 404",
    ("GET", "api/admin/feature-flags"): "401 403 403 403 200 403 403",
    ("GET", "api/admin/orders/stats"): "401 403 403 200 403 403 403",
    ("GET", "api/categories"): "404 404 404 404 404 404 404",  # ENABLE_PART_CATEGORIES off
    ("GET", "api/config/feature-flags"): "200 200 200 200 200 200 200",
    ("GET", "api/docs/"): "200 200 200 200 200 200 200",
    ("GET", "api/me"): "401 200 200 200 200 200 200",
    ("GET", "api/mechanic/profile"): "401 200 200 403 403 403 403",
    ("GET", "api/mechanic/stats"): "401 200 200 403 403 403 403",
    ("GET", "api/mechanic/time"): "401 200 200 403 403 403 403",
    ("GET", "api/mechanic/time/active"): "401 200 200 403 403 403 403",
    ("GET", "api/orders"): "401 200 200 200 200 200 200",  # each sees their own (or none)
    ("GET", "api/orders/<int:order_id>"): "401 200 404 200 404 404 404",
    ("GET", "api/orders/<int:order_id>/comments"): "401 200 404 200 404 404 404",
    ("GET", "api/orders/<int:order_id>/items"): "401 200 404 200 404 404 404",
    ("GET", "api/admin/mechanics"): "401 403 403 200 403 403 403",
    ("GET", "api/orders/<int:order_id>/photos"): "401 200 404 200 404 404 404",
    ("GET", "api/orders/<int:order_id>/photos/<int:photo_id>"): "401 200 404 200 404 404 404",
    ("GET", "api/orders/<int:order_id>/time"): "401 200 404 200 404 404 404",
    ("GET", "api/orders/<int:order_id>/works"): "401 200 404 200 404 404 404",
    ("GET", "api/parts"): "404 404 404 404 404 404 404",  # ENABLE_PART_CATEGORIES off
    ("GET", "api/schema/"): "200 200 200 200 200 200 200",
    ("GET", "health"): "200 200 200 200 200 200 200",
    ("GET", "mechanic/"): "302 200 200 302 302 302 302",
    ("GET", "mechanic/language"): "405 405 405 405 405 405 405",
    ("GET", "mechanic/login"): "200 302 302 200 200 200 200",
    ("GET", "mechanic/login/link/<str:token>"): "403 403 403 403 403 403 403",
    ("GET", "mechanic/logout"): "405 405 405 405 405 405 405",
    ("GET", "mechanic/orders/<int:order_id>"): "302 200 404 302 302 302 302",
    ("GET", "mechanic/orders/new"): "302 200 200 302 302 302 302",
    ("GET", "mechanic/profile"): "302 200 200 302 302 302 302",
    ("GET", "mechanic/time"): "302 200 200 302 302 302 302",
    ("GET", "metrics"): "200 200 200 200 200 200 200",
    ("GET", "v1/admin/halt"): "401 403 403 200 200 200 200",
    ("GET", "v1/admin/halt/ceremony"): "401 403 403 409 409 409 409",  # not halted
    ("GET", "v1/health"): "200 200 200 200 200 200 200",
    ("GET", "v1/health/constitutional"): "200 200 200 200 200 200 200",
    ("GET", "v1/observer/checkpoints"): "200 200 200 200 200 200 200",
    ("GET", "v1/observer/checkpoints/latest"): "404 404 404 404 404 404 404",  # none yet
    ("GET", "v1/observer/events"): "200 200 200 200 200 200 200",
    ("GET", "v1/observer/events/<int:sequence>"): "200 200 200 200 200 200 200",
    ("GET", "v1/observer/export"): "200 200 200 200 200 200 200",
    ("GET", "v1/observer/keys"): "200 200 200 200 200 200 200",
    ("GET", "v1/observer/proofs/consistency"): "400 400 400 400 400 400 400",  # no sizes
    ("GET", "v1/observer/proofs/inclusion"): "400 400 400 400 400 400 400",
    ("GET", "v1/observer/roots"): "400 400 400 400 400 400 400",
    ("GET", "v1/observer/verification-spec"): "200 200 200 200 200 200 200",
    ("GET", "v1/ready"): "200 200 200 200 200 200 200",
    ("PATCH", "api/admin/categories/<int:category_id>"): "401 403 403 200 403 403 403",
    ("PATCH", "api/admin/parts/<int:part_id>"): "401 403 403 200 403 403 403",
    ("PATCH", "api/mechanic/orders/<int:order_id>/status"): "401 200 404 403 403 403 403",
    ("PATCH", "api/orders/<int:order_id>"): "401 200 404 200 404 404 404",
    ("PATCH", "api/mechanic/profile"): "401 200 200 403 403 403 403",
    ("POST", "api/admin/categories"): "401 403 403 201 403 403 403",
    ("POST", "api/admin/categories/reorder"): "401 403 403 400 403 403 403",
    ("POST", "api/admin/feature-flags/kill-switch"): "401 403 403 403 200 403 403",
    ("POST", "api/admin/orders/<int:order_id>/assign"): "401 403 403 200 403 403 403",
    ("PATCH", "api/admin/orders/<int:order_id>/status"): "401 403 403 200 403 403 403",
    ("POST", "api/admin/parts"): "401 403 403 400 403 403 403",
    ("POST", "api/mechanic/login"): "400 400 400 400 400 400 400",
    ("POST", "api/mechanic/orders/<int:order_id>/time/start"): "401 201 404 403 403 403 403",
    ("POST", "api/mechanic/password"): "401 400 400 403 403 403 403",
    ("POST", "api/mechanic/time/stop"): "401 409 409 403 403 403 403",  # no timer running
    ("POST", "api/orders"): "400 400 400 400 400 400 400",  # anyone may order
    ("POST", "api/orders/<int:order_id>/comments"): "401 201 404 201 404 404 404",
    ("POST", "api/orders/<int:order_id>/items"): "401 201 404 201 404 404 404",
    ("POST", "api/orders/<int:order_id>/photos"): "401 201 404 201 404 404 404",
    ("POST", "api/orders/<int:order_id>/time"): "401 201 404 403 403 403 403",
    ("POST", "api/orders/<int:order_id>/works"): "401 201 404 201 404 404 404",
    ("POST", "api/telegram/webhook"): "403 403 403 403 403 403 403",  # no secret
    ("POST", "mechanic/"): "302 405 405 302 302 302 302",
    ("POST", "mechanic/language"): "404 404 404 404 404 404 404",  # ENABLE_MECH_I18N off
    ("POST", "mechanic/login"): "200 200 200 200 200 200 200",  # the form, with its errors
    ("POST", "mechanic/login/link/<str:token>"): "403 403 403 403 403 403 403",
    ("POST", "mechanic/logout"): "302 302 302 302 302 302 302",
    ("POST", "mechanic/orders/<int:order_id>"): "302 405 405 302 302 302 302",
    ("POST", "mechanic/orders/new"): "302 200 200 302 302 302 302",
    ("POST", "mechanic/profile"): "302 200 200 302 302 302 302",
    ("POST", "mechanic/time"): "302 405 405 302 302 302 302",
    ("POST", "metrics"): "405 405 405 405 405 405 405",
    # SPEC 3.4: any staff token raises the halt; approving needs a keeper's signature over
    # the challenge, and clearing a quorum of them (here: nothing to clear).
    ("POST", "v1/admin/halt"): "401 403 403 400 400 400 400",
    ("POST", "v1/admin/halt/ceremony/approve"): "401 403 403 400 400 400 400",
    ("POST", "v1/admin/halt/clear"): "401 403 403 409 409 409 409",
    ("PUT", "api/admin/feature-flags/<str:name>"): "401 403 403 403 200 403 403",
}


def _routes(resolver=None, prefix: str = ""):
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _methods(callback) -> list[str]:
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is not None:
        names = [m for m in view_class.http_method_names if m not in ("options", "head")]
        return [m.upper() for m in names if hasattr(view_class, m)]
    return ["GET", "POST"]  # a function view: both are tried, and the table says what each gets


def api_routes() -> list[tuple[str, str]]:
    return sorted(
        (method, route)
        for route, callback in _routes()
        if not route.startswith("admin/")
        for method in _methods(callback)
    )


@pytest.fixture
def workshop(system_keys) -> Workshop:
    return build_workshop()


def _png() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(buffer, "PNG")
    return SimpleUploadedFile("p.png", buffer.getvalue(), content_type="image/png")


def _path(route: str, workshop: Workshop) -> str:
    order = workshop.order_a
    owner = Token.objects.get(key=workshop.tokens[MECHANIC_A]).user
    values = {
        "<int:order_id>": order.pk,
        "<int:category_id>": workshop.category.pk,
        "<int:part_id>": workshop.part.pk,
        "<int:sequence>": 1,
        "<str:name>": "ENABLE_CAR_NUMBER",
        "<str:token>": "not-a-token",
    }
    if "<int:item_id>" in route:
        values["<int:item_id>"] = item_add(
            order_id=order.pk, user=owner, name="Bolt", unit_price="1.00"
        ).pk
    if "<int:work_id>" in route:
        values["<int:work_id>"] = work_add(
            order_id=order.pk, user=owner, name="Fit", price="5.00"
        ).pk
    if "<int:photo_id>" in route:
        values["<int:photo_id>"] = photo_add(order_id=order.pk, user=owner, upload=_png()).pk
    path = "/" + route
    for placeholder, value in values.items():
        path = path.replace(placeholder, str(value))
    assert "<" not in path, f"no value for a parameter of {route}"
    return path


def _bodies(workshop: Workshop) -> dict[tuple[str, str], dict]:
    """Valid bodies for the writes whose refusal must not hang on the body: a persona let
    through succeeds, one kept out does not. Other writes send `{}`."""
    return {
        ("POST", "api/orders/<int:order_id>/items"): {"name": "Bolt", "unit_price": "1.00"},
        ("POST", "api/orders/<int:order_id>/works"): {"name": "Fit", "price": "5.00"},
        ("POST", "api/orders/<int:order_id>/comments"): {"text": "Brake pads in stock."},
        ("POST", "api/orders/<int:order_id>/time"): {
            "started_at": "2026-01-05T08:00:00Z",
            "ended_at": "2026-01-05T09:00:00Z",
        },
        ("PATCH", "api/mechanic/orders/<int:order_id>/status"): {"status": "cancelled"},
        ("PATCH", "api/admin/orders/<int:order_id>/status"): {"status": "in_progress"},
        ("PATCH", "api/orders/<int:order_id>"): {"part_type": "Brake discs"},
        ("POST", "api/admin/orders/<int:order_id>/assign"): {
            "mechanic_id": workshop.order_b.mechanic_id
        },
        ("PUT", "api/admin/feature-flags/<str:name>"): {"enabled": True},
        ("POST", "api/admin/categories"): {"name_en": "Filters"},
    }


def _client(persona: str, route: str, workshop: Workshop) -> Client:
    client = Client()
    token = workshop.tokens[persona]
    if token is None:
        return client
    if route.startswith(("mechanic/", "admin/")):
        client.force_login(Token.objects.get(key=token).user)
    else:
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def call(method: str, route: str, persona: str, workshop: Workshop) -> int:
    client = _client(persona, route, workshop)
    path = _path(route, workshop)
    if method in ("GET", "DELETE"):
        response = getattr(client, method.lower())(path)
    elif route.endswith("/photos"):
        response = client.post(path, {"photo": _png()})  # multipart
    else:
        body = json.dumps(_bodies(workshop).get((method, route), {}))
        response = getattr(client, method.lower())(path, body, content_type="application/json")
    return response.status_code


def test_matrix__covers_every_route():
    routes = set(api_routes())
    assert sorted(routes - MATRIX.keys()) == [], "routes without a row in MATRIX"
    assert sorted(MATRIX.keys() - routes) == [], "rows in MATRIX for no route"


@pytest.mark.parametrize(("method", "route"), sorted(MATRIX))
def test_matrix__each_persona_gets_its_status(method, route, workshop):
    expected = dict(zip(PERSONAS, MATRIX[(method, route)].split(), strict=True))

    actual = {persona: str(call(method, route, persona, workshop)) for persona in PERSONAS}

    assert actual == expected


# The admin's own pages (GET), beside its model pages.
ADMIN_PAGES: dict[str, str] = {
    "admin/": "302 302 302 200 200 200 200",
    "admin/(?P<url>.*)$": "302 302 302 404 404 404 404",
    "admin/^(?P<app_label>auth|authtoken|events|conclave|flags|orders|notifications)/$": (
        "302 302 302 200 404 404 404"  # the orders app: the Staff role's
    ),
    "admin/autocomplete/": "302 302 302 403 403 403 403",
    "admin/halt/": "302 302 302 403 403 200 200",  # keepers and security admins
    "admin/halt/ceremony/": "302 302 302 403 403 200 200",
    "admin/jsi18n/": "302 302 302 200 200 200 200",
    "admin/login/": "200 200 200 302 302 302 302",
    "admin/logout/": "302 302 302 405 405 405 405",  # POST only
    "admin/password_change/": "302 302 302 200 200 200 200",
    "admin/password_change/done/": "302 302 302 200 200 200 200",
    "admin/r/<path:content_type_id>/<path:object_id>/": "302 302 302 404 404 404 404",
}
ADMIN_PATHS = {
    "admin/r/<path:content_type_id>/<path:object_id>/": "admin/r/1/1/",
    "admin/^(?P<app_label>auth|authtoken|events|conclave|flags|orders|notifications)/$": (
        "admin/orders/"
    ),
    "admin/(?P<url>.*)$": "admin/no-such-page/",
}
ROLE_OF = {
    STAFF_MEMBER: "Staff",
    FLAG_MANAGER: "Flag managers",
    KEEPER: "Keepers",
    SECURITY_ADMIN: "Security admins",
}


def _model_prefixes() -> dict[str, str]:
    return {
        f"admin/{model._meta.app_label}/{model._meta.model_name}/": (
            f"{model._meta.app_label}.view_{model._meta.model_name}"
        )
        for model in admin.site._registry
    }


def admin_pages() -> list[str]:
    prefixes = tuple(_model_prefixes())
    return sorted(
        route
        for route, _ in _routes()
        if route.startswith("admin/") and not route.startswith(prefixes)
    )


def test_admin_matrix__covers_every_page_that_is_not_a_models():
    assert sorted(set(admin_pages()) ^ ADMIN_PAGES.keys()) == []


@pytest.mark.parametrize("route", sorted(ADMIN_PAGES))
def test_admin_matrix__each_persona_gets_its_status(route, workshop):
    expected = dict(zip(PERSONAS, ADMIN_PAGES[route].split(), strict=True))
    path = "/" + ADMIN_PATHS.get(route, route)

    actual = {p: str(_client(p, "admin/", workshop).get(path).status_code) for p in PERSONAS}

    assert actual == expected


@pytest.mark.parametrize("prefix", sorted(_model_prefixes()))
def test_admin_models__list_shown_exactly_to_the_roles_holding_its_view_permission(
    prefix, workshop
):
    view_permission = _model_prefixes()[prefix]

    actual = {p: _client(p, "admin/", workshop).get("/" + prefix).status_code for p in PERSONAS}

    expected = {
        persona: 200 if view_permission in ROLES[ROLE_OF[persona]] else 403 for persona in ROLE_OF
    }
    # Not staff: the admin's login page.
    expected.update({ANONYMOUS: 302, MECHANIC_A: 302, MECHANIC_B: 302})
    assert actual == expected
