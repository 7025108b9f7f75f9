import pytest
from rest_framework.test import APIClient

from tests.exception_urls import DOMAIN_ERRORS
from tests.workshop import flag_on

pytestmark = [pytest.mark.urls("tests.exception_urls"), pytest.mark.django_db]


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        ("validation", 400, "validation_error"),
        ("not-found", 404, "not_found"),
        ("feature-disabled", 404, "feature_disabled"),
        ("forbidden", 403, "forbidden"),
        ("conflict", 409, "conflict"),
        ("halted", 503, "halted"),
    ],
)
def test_domain_error__raised_by_view__json_error_body(api_client, kind, status, error):
    response = api_client.get(f"/api/test/domain/{kind}")

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == error
    assert response.json()["detail"]


def test_domain_error__extra_fields__kept_beside_detail(api_client):
    body = api_client.get("/api/test/domain/conflict").json()

    assert body == {
        "error": "conflict",
        "detail": "Cannot go from completed to new.",
        "allowed": ["cancelled"],
    }


def test_halted__body__names_reason_as_spec_requires(api_client):
    body = api_client.get("/api/test/domain/halted").json()

    assert body["error"] == "halted"
    assert body["reason"] == "integrity check failed at sequence 7"


@pytest.mark.parametrize(
    ("kind", "status"),
    [("validation", 400), ("not-found", 404), ("forbidden", 403), ("conflict", 409)],
)
def test_domain_error__raised_by_a_page__its_status_and_a_page_saying_why(
    admin_client, client, system_keys, django_capture_on_commit_callbacks, kind, status
):
    """A refusal a page's view did not catch (the state changed after its own checks)."""
    flag_on("ENABLE_MECH_I18N", django_capture_on_commit_callbacks)
    admin = admin_client.post(f"/admin/test/refused/{kind}")
    mechanic = client.post(f"/mechanic/test/refused/{kind}", HTTP_ACCEPT_LANGUAGE="ru")
    other = client.post(f"/page/test/refused/{kind}")

    assert (admin.status_code, mechanic.status_code, other.status_code) == (status,) * 3
    assert 'id="refusal"' in admin.content.decode()
    assert "Nothing was changed." in admin.content.decode()
    assert 'href="/admin/test/refused/' in admin.content.decode()
    assert 'id="refusal"' in mechanic.content.decode()
    assert "Ничего не изменено." in mechanic.content.decode()
    assert other.json()["error"] == DOMAIN_ERRORS[kind].error
    refusal = DOMAIN_ERRORS[kind].detail
    text = refusal if isinstance(refusal, str) else refusal["vin"][0]
    assert text in admin.content.decode() and text in mechanic.content.decode()


def test_domain_error__raised_by_a_page_read__refused_not_saved(
    admin_client, client, system_keys, django_capture_on_commit_callbacks
):
    flag_on("ENABLE_MECH_I18N", django_capture_on_commit_callbacks)

    admin = admin_client.get("/admin/test/refused/not-found")
    mechanic = client.get("/mechanic/test/refused/not-found", HTTP_ACCEPT_LANGUAGE="ru")

    assert admin.status_code == mechanic.status_code == 404
    assert "Refused" in admin.content.decode()
    assert "Nothing was changed." not in admin.content.decode()
    assert "Отклонено" in mechanic.content.decode()
    assert "Ничего не изменено." not in mechanic.content.decode()


def test_halted__raised_by_a_page__the_halt_page_with_retry_after(admin_client, client):
    admin = admin_client.post("/admin/test/refused/halted")
    mechanic = client.post("/mechanic/test/refused/halted")
    other = client.post("/page/test/refused/halted")

    assert (admin.status_code, mechanic.status_code, other.status_code) == (503, 503, 503)
    assert 'id="halted-refusal"' in admin.content.decode()
    assert 'id="halted-refusal"' in mechanic.content.decode()
    assert other.json()["reason"] == "integrity check failed at sequence 7"
    assert admin["Retry-After"] == mechanic["Retry-After"] == other["Retry-After"] == "60"


def test_drf_validation_error__field_errors_under_detail(api_client):
    response = api_client.post("/api/test/echo", {"quantity": 0}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "validation_error"
    assert "quantity" in body["detail"]


def test_malformed_json__parse_error_400(api_client):
    response = api_client.post("/api/test/echo", data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"


def test_unsupported_media_type__415_json(api_client):
    response = api_client.post("/api/test/echo", data="quantity=1", content_type="text/plain")

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_wrong_method__405_json(api_client):
    response = api_client.delete("/api/test/echo")

    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        ("validation", 400, "validation_error"),
        ("http404", 404, "not_found"),
        ("permission", 403, "permission_denied"),
    ],
)
def test_django_exception__in_api_view__translated(api_client, kind, status, error):
    response = api_client.get(f"/api/test/django/{kind}")

    assert response.status_code == status
    assert response.json()["error"] == error


def test_django_validation_error__keeps_field_messages(api_client):
    body = api_client.get("/api/test/django/validation").json()

    assert body["detail"] == {"car_number": ["Too long."]}


def test_unexpected_exception__500_json_without_internals():
    client = APIClient(raise_request_exception=False)

    response = client.get("/api/test/django/boom")

    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert "unexpected failure" not in response.content.decode()


def test_unknown_api_path__404_json(api_client):
    response = api_client.get("/api/no-such-endpoint")

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "No such endpoint."}


@pytest.mark.parametrize("path", ["/api/no-such-endpoint", "/v1/no-such-endpoint"])
def test_unknown_api_path__json_with_debug_on_too(api_client, settings, path):
    """`make run` serves with DEBUG on: an API client's typo gets the API's JSON 404 there
    too, not Django's debug page. The pages keep the debug page (it lists the URLs)."""
    settings.DEBUG = True

    response = api_client.get(path)
    page = api_client.get("/no-such-page")

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "No such endpoint."}
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_throttled__429_with_retry_after(api_client):
    statuses = [api_client.get("/api/test/throttled").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    response = api_client.get("/api/test/throttled")
    body = response.json()
    assert body["error"] == "throttled"
    assert 0 < body["retry_after"] <= 60
    assert int(response["Retry-After"]) > 0


def test_throttle__forged_x_forwarded_for__same_client(api_client):
    statuses = [
        api_client.get("/api/test/throttled", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code
        for n in range(3)
    ]

    assert statuses == [200, 200, 429]


def test_input_serializer__each_instance_binds_copies_of_the_declared_fields():
    from orders.apis.orders import OrdersApi

    declared = OrdersApi.InputSerializer._declared_fields
    first, second = OrdersApi.InputSerializer(data={}), OrdersApi.InputSerializer(data={})

    for name, field in declared.items():
        mine, theirs = first.fields[name], second.fields[name]
        assert mine is not field and theirs is not field and mine is not theirs
        assert type(mine) is type(field)
        assert (mine.parent, theirs.parent, field.parent) == (first, second, None)
        # What the field was built with, for DRF's deep copy of it.
        assert (mine._args, mine._kwargs) == (field._args, field._kwargs)
        assert mine.validators == field.validators
