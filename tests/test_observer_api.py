import json

import pytest
from rest_framework.throttling import ScopedRateThrottle

from events.services import event_append, key_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def log(system_keys):
    for n in range(5):
        event_append(event_type="order.created", payload={"n": n})
    event_append(event_type="flag.toggled", payload={"flag": "ENABLE_CAR_NUMBER"})
    return 7  # events in the log


def test_events__first_page__every_column_and_next_cursor(api_client, log):
    body = api_client.get("/v1/observer/events?limit=3").json()

    assert [e["sequence"] for e in body["events"]] == [1, 2, 3]
    assert body["next_after_sequence"] == 3
    assert set(body["events"][1]) == {
        "sequence",
        "event_type",
        "payload",
        "agent_id",
        "signing_key_id",
        "signing_mode",
        "local_timestamp",
        "authority_timestamp",
        "prev_hash",
        "content_hash",
        "signature",
        "witness_id",
        "witness_key_id",
        "witness_signature",
        "schema_version",
    }
    assert body["events"][1]["local_timestamp"].endswith("Z")


def test_events__walk_pages__whole_log_once(api_client, log):
    seen, after = [], 0
    while after is not None:
        body = api_client.get(f"/v1/observer/events?after_sequence={after}&limit=2").json()
        seen += [e["sequence"] for e in body["events"]]
        after = body["next_after_sequence"]

    assert seen == list(range(1, log + 1))


def test_events__filters__event_type_and_as_of_sequence(api_client, log):
    by_type = api_client.get("/v1/observer/events?event_type=flag.toggled").json()["events"]
    as_of = api_client.get("/v1/observer/events?as_of_sequence=4").json()["events"]

    assert [e["sequence"] for e in by_type] == [7]
    assert [e["sequence"] for e in as_of] == [1, 2, 3, 4]


def test_events__time_range__by_authority_timestamp(api_client, log):
    events = api_client.get("/v1/observer/events").json()["events"]
    middle = events[3]["authority_timestamp"]

    since = api_client.get("/v1/observer/events", {"since": middle}).json()["events"]
    until = api_client.get("/v1/observer/events", {"until": middle}).json()["events"]

    assert since[0]["sequence"] == 4
    assert until[-1]["sequence"] == 3


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=1001", "after_sequence=-1", "after_sequence=abc",
              "since=yesterday", "colour=blue"],
)  # fmt: skip
def test_events__bad_query__400_json(api_client, log, query):
    response = api_client.get(f"/v1/observer/events?{query}")

    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"


def test_event_detail__found__immutable_cache(api_client, log):
    response = api_client.get("/v1/observer/events/2")

    assert response.status_code == 200
    assert response.json()["sequence"] == 2
    assert "immutable" in response["Cache-Control"]


def test_event_detail__missing__404(api_client, log):
    response = api_client.get("/v1/observer/events/999")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_keys__every_key_ever_with_hex_public_keys(api_client, system_keys):
    key_register(kind="witness", owner="SYSTEM:WITNESS_2")

    keys = api_client.get("/v1/observer/keys").json()["keys"]

    assert {k["owner"] for k in keys} == {
        "SYSTEM:EVENT_WRITER",
        "SYSTEM:WITNESS",
        "SYSTEM:WITNESS_2",
    }
    for key in keys:
        assert set(key) == {
            "key_id",
            "owner",
            "kind",
            "algorithm",
            "public_key",
            "active_from",
            "active_until",
        }
        assert key["algorithm"] == "Ed25519"
        assert len(key["public_key"]) == 64 and key["public_key"] == key["public_key"].lower()


def test_verification_spec__states_hashing_and_signing_rules(api_client, db):
    spec = api_client.get("/v1/observer/verification-spec").json()

    assert spec["content_hash"]["algorithm"] == "SHA-256"
    assert "RFC 8785" in spec["content_hash"]["input"]
    assert spec["chain"]["genesis_prev_hash"] == "0" * 64
    assert spec["signature"]["algorithm"] == "Ed25519"
    assert spec["merkle_tree"]["leaf_hash"] == "SHA-256(0x00 || the 32 raw bytes of content_hash)"
    assert "RFC 8785" in spec["checkpoint"]["signed_message"]


def test_export__json_lines_in_sequence_order(api_client, log):
    response = api_client.get("/v1/observer/export")

    assert response["Content-Type"] == "application/x-ndjson"
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert [json.loads(line)["sequence"] for line in lines] == list(range(1, log + 1))


def test_export__after_sequence__resumes_where_a_broken_download_stopped(api_client, log):
    response = api_client.get("/v1/observer/export?after_sequence=4")

    lines = b"".join(response.streaming_content).decode().splitlines()
    assert [json.loads(line)["sequence"] for line in lines] == list(range(5, log + 1))


@pytest.mark.parametrize(
    "query",
    ["after_sequence=-1", "after_sequence=x", "after_sequence=1&after_sequence=2", "from=4",
     "after=4"],
)  # fmt: skip
def test_export__bad_or_unknown_parameter__400_before_any_line(api_client, log, query):
    """An export asked for from somewhere it cannot read is refused, not the whole log."""
    response = api_client.get(f"/v1/observer/export?{query}")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "validation_error"


@pytest.mark.parametrize(
    "path",
    ["events/1", "keys", "verification-spec", "checkpoints/latest", "export"],
)
def test_observer__endpoint_without_parameters__unknown_one_refused(api_client, log, path):
    response = api_client.get(f"/v1/observer/{path}?limit=3")

    assert response.status_code == 400
    assert response.json() == {
        "error": "validation_error",
        "detail": {"limit": ["Unknown parameter."]},
    }


def test_observer__no_credentials_needed_and_bad_token_ignored(api_client, log):
    response = api_client.get("/v1/observer/events", HTTP_AUTHORIZATION="Bearer nonsense")

    assert response.status_code == 200


def test_observer__writes__not_allowed(api_client, log):
    assert api_client.post("/v1/observer/events", {}, format="json").status_code == 405


def test_observer__throttled_per_client_address(api_client, db, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"observer": "3/min"})

    statuses = [
        api_client.get(
            "/v1/observer/verification-spec", HTTP_X_FORWARDED_FOR=f"10.1.1.{n}"
        ).status_code
        for n in range(4)
    ]

    assert statuses == [200, 200, 200, 429]
