"""`Idempotency-Key`: a retried write gets its first answer again and writes nothing twice."""

import io
import threading
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.utils import timezone
from PIL import Image

from conclave.models import IdempotentRequest
from conclave.tasks import purge_idempotency_keys
from events.models import EventQueueEntry
from orders.models import Comment, Order, OrderPhoto, TimeEntry
from orders.services import order_create
from tests.conftest import gunicorn, served_env, wait_for_lock_waiters
from tests.http import call
from tests.workshop import MECHANIC_PASSWORD, OTHER_MECHANIC_PASSWORD, RUNBOOK_ORDER, client_for

pytestmark = pytest.mark.django_db


def key() -> str:
    return str(uuid.uuid4())


def queued(event_type: str) -> int:
    return EventQueueEntry.objects.filter(event_type=event_type).count()


@pytest.fixture
def mika(mechanic):
    return client_for("mika", MECHANIC_PASSWORD)


@pytest.fixture
def order(mechanic):
    return order_create(**{**RUNBOOK_ORDER, "car_number": ""}, created_by=mechanic.user)


def test_order_create__retried_with_its_key__first_answer_again_one_order_one_event(
    api_client, system_keys
):
    sent = key()

    first = api_client.post("/api/orders", RUNBOOK_ORDER, format="json", HTTP_IDEMPOTENCY_KEY=sent)
    again = api_client.post("/api/orders", RUNBOOK_ORDER, format="json", HTTP_IDEMPOTENCY_KEY=sent)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert "Idempotent-Replayed" not in first
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    assert queued("order.created") == 1


def test_order_create__no_key__each_request_writes(api_client, system_keys):
    api_client.post("/api/orders", RUNBOOK_ORDER, format="json")
    api_client.post("/api/orders", RUNBOOK_ORDER, format="json")

    assert Order.objects.count() == 2
    assert IdempotentRequest.objects.count() == 0


def test_same_key__different_body__422_nothing_written(api_client, system_keys):
    sent = key()
    api_client.post("/api/orders", RUNBOOK_ORDER, format="json", HTTP_IDEMPOTENCY_KEY=sent)

    response = api_client.post(
        "/api/orders",
        {**RUNBOOK_ORDER, "vin": "TESTADMIN123456"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=sent,
    )

    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"
    assert list(Order.objects.values_list("vin", flat=True)) == ["TEST123456789"]
    assert queued("order.created") == 1


def test_same_key__another_path__422(mika, order):
    sent = key()
    mika.post(
        f"/api/orders/{order.pk}/comments", {"text": "Pads fitted"}, HTTP_IDEMPOTENCY_KEY=sent
    )

    response = mika.post("/api/mechanic/time/stop", HTTP_IDEMPOTENCY_KEY=sent)

    assert response.status_code == 422
    assert Comment.objects.count() == 1


def test_refused_request__not_kept__the_key_serves_the_corrected_request(api_client, system_keys):
    sent = key()

    refused = api_client.post(
        "/api/orders", {**RUNBOOK_ORDER, "vin": "BAD"}, format="json", HTTP_IDEMPOTENCY_KEY=sent
    )
    corrected = api_client.post(
        "/api/orders", RUNBOOK_ORDER, format="json", HTTP_IDEMPOTENCY_KEY=sent
    )

    assert (refused.status_code, corrected.status_code) == (400, 201)
    assert Order.objects.count() == 1
    assert IdempotentRequest.objects.get().status == 201


def test_keys__per_user__another_mechanic_with_the_same_key_writes_their_own(
    mika, other_mechanic, order
):
    nora = client_for("nora", OTHER_MECHANIC_PASSWORD)
    nora_order = order_create(**{**RUNBOOK_ORDER, "car_number": ""}, created_by=other_mechanic.user)
    sent = key()

    mine = mika.post(
        f"/api/orders/{order.pk}/comments", {"text": "Pads fitted"}, HTTP_IDEMPOTENCY_KEY=sent
    )
    theirs = nora.post(
        f"/api/orders/{nora_order.pk}/comments", {"text": "Pads fitted"}, HTTP_IDEMPOTENCY_KEY=sent
    )

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in theirs
    assert Comment.objects.count() == 2


@pytest.mark.parametrize("sent", ["", "x" * 256, "naïve", "two words"])
def test_key__malformed__400_naming_the_header_nothing_written(api_client, system_keys, sent):
    response = api_client.post(
        "/api/orders", RUNBOOK_ORDER, format="json", HTTP_IDEMPOTENCY_KEY=sent
    )

    assert response.status_code == 400
    assert list(response.json()["detail"]) == ["Idempotency-Key"]
    assert Order.objects.count() == 0


def test_manual_time_entry_and_comment__retried__written_once(mika, order):
    entry = {
        "started_at": "2026-12-01T08:00:00Z",
        "ended_at": "2026-12-01T09:30:00Z",
        "notes": "Brakes",
    }
    entry_key, comment_key = key(), key()

    for _ in range(3):
        assert (
            mika.post(
                f"/api/orders/{order.pk}/time", entry, format="json", HTTP_IDEMPOTENCY_KEY=entry_key
            ).status_code
            == 201
        )
        assert (
            mika.post(
                f"/api/orders/{order.pk}/comments",
                {"text": "Pads fitted"},
                format="json",
                HTTP_IDEMPOTENCY_KEY=comment_key,
            ).status_code
            == 201
        )

    assert TimeEntry.objects.count() == 1
    assert Comment.objects.count() == 1
    assert mika.get(f"/api/orders/{order.pk}/time").json()["total_seconds"] == 90 * 60


def test_photo__upload_retried__one_photo__another_image_with_the_key_422(mika, order):
    def image(color: tuple[int, int, int]) -> io.BytesIO:
        buffer = io.BytesIO()
        Image.new("RGB", (4, 3), color).save(buffer, format="PNG")
        buffer.seek(0)
        buffer.name = "car.png"
        return buffer

    sent = key()
    path = f"/api/orders/{order.pk}/photos"

    first = mika.post(
        path, {"photo": image((200, 10, 10))}, format="multipart", HTTP_IDEMPOTENCY_KEY=sent
    )
    again = mika.post(
        path, {"photo": image((200, 10, 10))}, format="multipart", HTTP_IDEMPOTENCY_KEY=sent
    )
    other = mika.post(
        path, {"photo": image((10, 200, 10))}, format="multipart", HTTP_IDEMPOTENCY_KEY=sent
    )

    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 422)
    assert again.json() == first.json()
    assert OrderPhoto.objects.count() == 1


def test_delete__retried__204_again_not_404(mika, order):
    item = mika.post(f"/api/orders/{order.pk}/items", {"name": "Clip", "unit_price": "0.20"})
    path = f"/api/orders/{order.pk}/items/{item.json()['id']}"
    sent = key()

    first = mika.delete(path, HTTP_IDEMPOTENCY_KEY=sent)
    again = mika.delete(path, HTTP_IDEMPOTENCY_KEY=sent)

    assert (first.status_code, again.status_code) == (204, 204)
    assert again["Idempotent-Replayed"] == "true"


def test_purge__answers_older_than_a_day_forgotten(api_client, system_keys):
    old, recent = key(), key()
    api_client.post("/api/orders", RUNBOOK_ORDER, format="json", HTTP_IDEMPOTENCY_KEY=old)
    api_client.post("/api/orders", RUNBOOK_ORDER, format="json", HTTP_IDEMPOTENCY_KEY=recent)
    IdempotentRequest.objects.filter(key=old).update(
        created_at=timezone.now() - timedelta(hours=24, minutes=1)
    )

    assert purge_idempotency_keys() == 1

    assert list(IdempotentRequest.objects.values_list("key", flat=True)) == [recent]


def test_retry_while_the_first_is_still_writing__waits_and_gets_its_answer(
    scratch_database, tmp_path
):
    """Two gunicorn workers. The first request holds its key's row until it commits; the
    retry waits on it, then answers from it. The test holds both at a known point with a
    lock on `orders`."""
    database = scratch_database("conclave_idempotency")
    env = served_env(database, tmp_path)
    sent = key()
    answers: dict[str, tuple[int, Any]] = {}

    with gunicorn(env) as base, psycopg.connect(database.dsn) as holder:

        def post(name: str) -> None:
            answers[name] = call(
                "POST", f"{base}/api/orders", body=RUNBOOK_ORDER, headers={"Idempotency-Key": sent}
            )

        holder.execute("LOCK TABLE orders IN EXCLUSIVE MODE")
        first = threading.Thread(target=post, args=("first",))
        first.start()
        wait_for_lock_waiters(database.dsn, 1)  # its key's row written, waiting to write the order
        retry = threading.Thread(target=post, args=("retry",))
        retry.start()
        wait_for_lock_waiters(database.dsn, 2)  # waiting on the first's key row
        holder.rollback()  # the lock released
        first.join(timeout=30)
        retry.join(timeout=30)
        (orders,) = holder.execute("SELECT count(*) FROM orders").fetchone()

    assert answers["first"][0] == answers["retry"][0] == 201
    assert answers["retry"][1] == answers["first"][1]
    assert orders == 1
