import logging
import re
import shutil
import subprocess
import time

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from tests.conftest import free_port

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/v1/health", "/health"])
def test_health__any_state__200_with_uptime_and_hsm_mode(api_client, path):
    response = api_client.get(path)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "uptime_seconds", "hsm_mode"}
    assert body["status"] == "ok"
    assert body["uptime_seconds"] >= 0
    assert body["hsm_mode"] == "DEVELOPMENT"


@override_settings(DEV_MODE=False, HSM_MODE="PRODUCTION")
def test_health__production_signing__reports_production_hsm_mode(api_client):
    assert api_client.get("/v1/health").json()["hsm_mode"] == "PRODUCTION"


def test_health__needs_no_credentials_even_with_a_bad_token(api_client):
    response = api_client.get("/v1/health", HTTP_AUTHORIZATION="Bearer not-a-token")

    assert response.status_code == 200


def test_ready__postgres_and_redis_up__200_connected(api_client):
    response = api_client.get("/v1/ready")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "database": "connected",
        "redis": "connected",
        "broker": "connected",
        "outbox": {"backlog": 0, "oldest_age_seconds": 0.0},
    }


@pytest.fixture
def private_redis(tmp_path):
    """A real redis-server of the test's own, so stopping it disturbs nothing else."""
    port = free_port()
    server = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        if (
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, check=False
            ).stdout.strip()
            == b"PONG"
        ):
            break
        time.sleep(0.05)
    yield server, url
    server.kill()
    server.wait()


def redis_settings(url):
    caches = {"default": {**settings.CACHES["default"], "LOCATION": url}}
    return override_settings(
        REDIS_URL=url,
        CACHES=caches,
        CELERY_BROKER_URL=url,
        CELERY_BROKER_TRANSPORT_OPTIONS={"socket_connect_timeout": 1, "socket_timeout": 1},
    )


def test_ready__redis_stopped__503_naming_redis_and_broker(private_redis):
    server, url = private_redis
    client = APIClient()
    with redis_settings(url):
        assert client.get("/v1/ready").status_code == 200
        server.terminate()
        server.wait()

        response = client.get("/v1/ready")

    assert response.status_code == 503
    assert response.json() == {
        "status": "not_ready",
        "database": "connected",
        "redis": "unavailable",
        "broker": "unavailable",
        "down": ["redis", "broker"],
        "outbox": {"backlog": 0, "oldest_age_seconds": 0.0},
    }


def test_ready__redis_stopped__health_still_200(private_redis):
    server, url = private_redis
    server.terminate()
    server.wait()
    with redis_settings(url):
        response = APIClient().get("/v1/health")

    assert response.status_code == 200


def test_metrics__after_requests__counts_and_latency_by_view(api_client):
    api_client.get("/v1/health")
    api_client.get("/api/no-such-endpoint")

    response = api_client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert re.search(
        r'conclave_http_requests_total\{method="GET",status="200",view="health"\} [1-9]', text
    )
    assert re.search(
        r'conclave_http_requests_total\{method="GET",status="404",view="unmatched"\} [1-9]', text
    )
    assert (
        'conclave_http_request_duration_seconds_bucket{le="0.005",method="GET",view="health"}'
        in text
    )


def test_metrics__unknown_method__bounded_label(api_client):
    api_client.generic("BREW", "/v1/health")

    text = api_client.get("/metrics").content.decode()

    assert 'method="OTHER"' in text
    assert "BREW" not in text


def test_response__carries_request_id(api_client):
    first = api_client.get("/v1/health")["X-Request-ID"]
    second = api_client.get("/v1/health")["X-Request-ID"]

    assert re.fullmatch(r"[0-9a-f-]{36}", first)
    assert first != second


def test_response__upstream_request_id__not_trusted_by_default(api_client):
    response = api_client.get("/v1/health", HTTP_X_REQUEST_ID="attacker-chosen")

    assert response["X-Request-ID"] != "attacker-chosen"


def test_response__upstream_request_id__trusted_when_configured_and_plain(settings):
    settings.TRUST_UPSTREAM_REQUEST_ID = True
    client = APIClient()  # its middleware reads the setting

    plain = client.get("/v1/health", HTTP_X_REQUEST_ID="edge-7f3a.1")["X-Request-ID"]
    odd = client.get("/v1/health", HTTP_X_REQUEST_ID="<b>forged id</b>")["X-Request-ID"]

    assert plain == "edge-7f3a.1"
    assert re.fullmatch(r"[0-9a-f-]{36}", odd)


def test_request_log__one_line_per_request__id_peer_code_user(staff_client, staff_user, caplog):
    with caplog.at_level(logging.INFO, logger="conclave.requests"):
        listed = staff_client.get("/api/orders")
        missing = staff_client.get("/api/orders/999999")
        anonymous = APIClient().get("/v1/health")

    lines = [record.msg for record in caplog.records if record.name == "conclave.requests"]
    assert [(line["event"], line["level"], line["code"]) for line in lines] == [
        ("request_finished", "info", 200),
        ("request_finished", "warning", 404),
        ("request_finished", "info", 200),
    ]
    assert [line["request_id"] for line in lines] == [
        response["X-Request-ID"] for response in (listed, missing, anonymous)
    ]
    assert lines[0]["request"] == "GET /api/orders"
    assert lines[0]["peer"] == "127.0.0.1"
    assert [line["user_id"] for line in lines] == [staff_user.pk, staff_user.pk, None]


@pytest.mark.parametrize(
    ("accept", "query", "status"),
    [
        (None, "", 200),
        ("*/*", "", 200),
        ("application/json", "", 200),
        ("application/json; indent=2", "", 200),
        ("text/html,application/json;q=0.9", "", 200),
        ("application/xml", "", 406),
        (None, "?format=json", 200),
        (None, "?format=xml", 404),
    ],
)
def test_content_negotiation__json_only__as_drf_answers(api_client, accept, query, status):
    headers = {"HTTP_ACCEPT": accept} if accept else {}

    response = api_client.get(f"/v1/health{query}", **headers)

    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")


def test_openapi_schema__served_and_lists_core_endpoints(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/v1/health", "/v1/ready", "/health", "/api/me"} <= set(paths)
    schemes = response.json()["components"]["securitySchemes"]
    assert any(scheme.get("scheme") == "bearer" for scheme in schemes.values())


def test_api_docs__served_without_external_assets(api_client):
    response = api_client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn.jsdelivr.net" not in html


def test_redis_stopped__flags_from_the_database__orders_taken__the_halt_still_refuses(
    private_redis, system_keys, django_capture_on_commit_callbacks
):
    from conclave.halt import forget_halt_status
    from conclave.services import halt_raise
    from events.models import Event
    from flags.selectors import forget_flags
    from orders.models import Order
    from tests.workshop import RUNBOOK_ORDER, flag_on

    server, url = private_redis
    client = APIClient()
    with redis_settings(url):
        flag_on("ENABLE_CAR_NUMBER", django_capture_on_commit_callbacks)
        server.terminate()
        server.wait()
        forget_flags()
        forget_halt_status()

        flags = client.get("/api/config/feature-flags")
        taken = client.post("/api/orders", RUNBOOK_ORDER, format="json")
        halt_raise(reason="drill", actor="test", channel="api")  # the database channel only
        forget_halt_status()
        refused = client.post("/api/orders", RUNBOOK_ORDER, format="json")

    assert flags.status_code == 200 and flags.json()["ENABLE_CAR_NUMBER"] is True
    assert taken.status_code == 201 and taken.json()["car_number"] == "12-345-67"
    assert refused.status_code == 503 and refused.json()["error"] == "halted"
    assert Order.objects.count() == 1
    assert Event.objects.filter(event_type="order.created").count() == 1
