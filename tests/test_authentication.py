import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(user):
    return Token.objects.create(user=user)


def test_bearer_token__valid__authenticated(api_client, user, token):
    response = api_client.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token.key}")

    assert response.status_code == 200
    assert response.json() == {
        "id": user.pk,
        "username": user.username,
        "is_staff": False,
        "groups": [],
    }


def test_no_credentials__401_with_bearer_challenge(api_client):
    response = api_client.get("/api/me")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"] == "not_authenticated"


def test_bearer_token__unknown__401(api_client, token):
    response = api_client.get("/api/me", HTTP_AUTHORIZATION="Bearer " + "0" * 40)

    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"


def test_token_keyword__not_bearer__not_accepted(api_client, token):
    response = api_client.get("/api/me", HTTP_AUTHORIZATION=f"Token {token.key}")

    assert response.status_code == 401
    assert response.json() == {
        "error": "authentication_failed",
        "detail": "Send the token as `Authorization: Bearer <token>`; "
        "the Token scheme is not accepted.",
    }


@pytest.mark.parametrize("scheme", ["Token", "token", "JWT", "Basic"])
def test_other_scheme__where_anyone_may_write__refused_not_read_as_anonymous(
    api_client, system_keys, token, scheme
):
    """An order is open to anonymous callers: a client sending its credentials the wrong way
    must hear so, not have its order made as no one's."""
    from orders.models import Order

    order = {
        "mechanic_name": "Mika", "vin": "TEST123456789", "part_type": "pads",
        "category": "brakes", "original_or_analog": "original",
    }  # fmt: skip
    response = api_client.post(
        "/api/orders", order, format="json", HTTP_AUTHORIZATION=f"{scheme} {token.key}"
    )

    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"
    assert f"the {scheme} scheme is not accepted" in response.json()["detail"]
    assert response["WWW-Authenticate"] == "Bearer"
    assert not Order.objects.exists()


@pytest.mark.parametrize("header", ["", "   "])
def test_empty_authorization__anonymous(api_client, header):
    response = api_client.get("/api/me", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_basic_scheme__beside_the_session__a_proxys__passed_over(api_client, user):
    """A proxy's password prompt (a staging site) has the browser send Basic credentials with
    every request: the session still signs the mechanic in."""
    api_client.force_login(user)

    response = api_client.get("/api/me", HTTP_AUTHORIZATION="Basic c3RhZ2luZzpzZWNyZXQ=")

    assert response.status_code == 200
    assert response.json()["id"] == user.pk


def test_bearer_scheme__any_case__accepted(api_client, user, token):
    response = api_client.get("/api/me", HTTP_AUTHORIZATION=f"bearer {token.key}")

    assert response.status_code == 200
    assert response.json()["id"] == user.pk


def test_bearer_token__inactive_user__401(api_client, user, token):
    user.is_active = False
    user.save(update_fields=["is_active"])

    response = api_client.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token.key}")

    assert response.status_code == 401


def test_bearer_token__malformed_header__401(api_client, token):
    response = api_client.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token.key} extra")

    assert response.status_code == 401


def test_bearer_token__belongs_to_its_user_only(api_client):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    bob_token = Token.objects.create(user=bob)

    body = api_client.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {bob_token.key}").json()

    assert body["username"] == "bob"
    assert body["id"] != alice.pk


@pytest.mark.urls("tests.exception_urls")
def test_session_auth__unsafe_method_without_csrf__403(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post("/api/test/session-write", {}, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


@pytest.mark.urls("tests.exception_urls")
def test_bearer_auth__unsafe_method__needs_no_csrf_token(token):
    client = APIClient(enforce_csrf_checks=True)

    response = client.post(
        "/api/test/session-write", {}, format="json", HTTP_AUTHORIZATION=f"Bearer {token.key}"
    )

    assert response.status_code == 200
