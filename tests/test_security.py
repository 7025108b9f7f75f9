"""The security headers, CORS kept closed, and request bodies' size limits."""

import logging
import re
import subprocess

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from orders.models import Order
from tests.conftest import PYTHON, REPO_ROOT, clean_env
from tests.test_settings import PRODUCTION_ENV
from tests.workshop import RUNBOOK_ORDER

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/config/feature-flags", "/mechanic/login", "/admin/login/"])
def test_headers__csp_nosniff_referrer_frames_on_api_and_pages(client, path):
    response = client.get(path)

    policy = dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"  # no inline script, no eval
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_api_docs__no_inline_script_for_the_csp_to_block(client):
    page = client.get("/api/docs/").content.decode()

    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts and all("src=" in tag for tag in scripts)
    assert client.get("/api/docs/?script=").status_code == 200  # the start-up script itself


def test_production__hsts_over_https():
    code = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client().get('/no-such-page', HTTP_X_FORWARDED_PROTO='https', "
        "HTTP_HOST='hub.example.org'); print(r.headers.get('Strict-Transport-Security'))"
    )
    result = subprocess.run(  # noqa: S603
        [PYTHON, "-c", code], cwd=REPO_ROOT, env=clean_env(**PRODUCTION_ENV),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip

    assert result.stdout.strip() == "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
def test_cors__closed__no_other_origin_is_allowed_to_read(client, method):
    response = client.generic(
        method,
        "/api/config/feature-flags",
        HTTP_ORIGIN="https://elsewhere.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
    )

    assert not [h for h in response.headers if h.lower().startswith("access-control-allow")]


def test_body_over_the_limit__413_before_reading__nothing_made(client, settings, system_keys):
    body = '{"mechanic_name": "' + "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + '"}'

    response = client.post("/api/orders", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"
    assert Order.objects.count() == 0


def test_json_nested_too_deep__400_parse_error__nothing_made(client, system_keys):
    body = '{"mechanic_name": ' + "[" * 100_000 + "]" * 100_000 + "}"  # 200 kB, within the limit

    response = client.post("/api/orders", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "error": "parse_error", "detail": "JSON parse error - nested too deeply.",
    }  # fmt: skip
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        '{"vin": "TEST123456789", "vin": "OTHER1234567", "original_or_analog": "original"}',
        '{"mechanic_name": "M", "part_type": "Pads", "x": {"a": 1, "a": 2}, "vin": "TEST123456789"}',
    ],
)
def test_json_key_given_twice__400_parse_error__nothing_made(client, system_keys, body):
    """Python would keep the last of the two, another reader the first."""
    response = client.post("/api/orders", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"
    assert "is given twice in one object" in response.json()["detail"]
    assert Order.objects.count() == 0


def test_body_within_the_limit__taken(client, system_keys):
    response = client.post("/api/orders", RUNBOOK_ORDER, content_type="application/json")

    assert response.status_code == 201


def test_upload__a_photo_sized_body_passes__beyond_the_photo_limit_413(settings):
    client = Client()
    big = b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE * 2)
    huge = b"x" * (settings.REQUEST_MAX_BYTES + 1)

    # Past the size gate (the order does not exist: 401 for no credentials), then refused.
    within = client.post("/api/orders/1/photos", {"photo": SimpleUploadedFile("p.png", big)})
    beyond = client.post("/api/orders/1/photos", {"photo": SimpleUploadedFile("p.png", huge)})

    assert within.status_code == 401
    assert beyond.status_code == 413


def test_page_body_over_the_limit__413_a_page_saying_so(client, settings):
    """The mechanic pages and the admin answer with their page (a way back to the form), the
    rest with a line of text."""
    body = {"username": "x" * (2 * 1024 * 1024)}

    page = client.post("/mechanic/login", body)
    admin = client.post("/admin/login/", body)
    other = client.post("/", body)

    assert page.status_code == admin.status_code == other.status_code == 413
    told = f"over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"
    assert page["Content-Type"].startswith("text/html")
    assert told in page.content.decode() and 'href="/mechanic/login"' in page.content.decode()
    assert admin["Content-Type"].startswith("text/html") and told in admin.content.decode()
    assert other["Content-Type"].startswith("text/plain")


def test_page_body_over_django_s_limit__logged_as_the_client_s_mistake(client, caplog):
    """Django's security logger writes a form over its limit at ERROR with a traceback: the
    client's mistake, answered 413, is a warning without one."""
    with caplog.at_level(logging.INFO):
        response = client.post("/mechanic/login", {"username": "x" * (2 * 1024 * 1024)})

    [line] = [record for record in caplog.records if record.name.startswith("django.security")]
    assert response.status_code == 413
    assert (line.name, line.levelname, line.exc_info) == (
        "django.security.RequestDataTooBig", "WARNING", None,
    )  # fmt: skip


# --- NUL characters: PostgreSQL's text cannot hold one --------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/admin/orders/order/?status__exact=%00",
        "/admin/orders/order/?vin=a%00",
        "/admin/events/event/?event_type=%00",
        "/mechanic/?q=TEST%00",
    ],
)
def test_nul_in_a_query_string__400_page(path, staff_user, mechanic):
    client = Client()
    client.force_login(staff_user if path.startswith("/admin/") else mechanic.user)
    staff_user.is_superuser = True
    staff_user.save()

    response = client.get(path)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


def test_nul_in_an_api_query_string__400_json_naming_it(client):
    response = client.get("/api/categories?lang=he%00")

    assert response.status_code == 400
    assert response.json() == {"error": "bad_request", "detail": "Null characters are not allowed."}


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/mechanic/login", {"username": "mika\x00", "password": "x"}),
        (
            "/mechanic/orders/new",
            {"part_type": "Mir\x00ror", "vin": "TEST123456789", "original_or_analog": "original"},
        ),
    ],
)
def test_nul_in_a_form__400_nothing_written(mechanic, path, form):
    client = Client()
    if path != "/mechanic/login":
        client.force_login(mechanic.user)

    response = client.post(path, form)

    assert response.status_code == 400
    assert Order.objects.count() == 0
