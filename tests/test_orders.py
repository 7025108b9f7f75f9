"""Orders, the mechanic's status changes and login, and the catalog (SPEC 4; the rollout
runbook's curl commands as written)."""

import json
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from conclave.exceptions import Halted
from conclave.halt import forget_halt_status
from conclave.services import halt_raise
from events.crypto import canonical_payload
from events.integration import CHAIN_LOCK_KEY
from events.models import Event, EventQueueEntry
from events.services import NEW_ROW_ID, event_append_inserting
from flags.selectors import flags_snapshot
from orders.models import Category, MechanicProfile, Order, Part
from orders.services import order_create
from tests.conftest import (
    ScratchDatabase,
    gunicorn,
    run_manage,
    served_env,
    wait_for_lock_waiters,
)
from tests.http import call
from tests.workshop import MECHANIC_PASSWORD, RUNBOOK_ORDER, client_for, flag_on

pytestmark = pytest.mark.django_db

# --- The runbook's order ---------------------------------------------------------------------------


def test_runbook_order__car_number_flag_off__201_without_car_number(api_client, system_keys):
    response = api_client.post("/api/orders", RUNBOOK_ORDER, format="json")

    assert response.status_code == 201
    body = response.json()
    assert "car_number" not in body
    assert (body["vin"], body["status"]) == ("TEST123456789", "new")
    assert Order.objects.get().car_number == ""


def test_runbook_order__car_number_flag_on__201_with_car_number_stored(
    api_client, system_keys, django_capture_on_commit_callbacks
):
    flag_on("ENABLE_CAR_NUMBER", django_capture_on_commit_callbacks)

    response = api_client.post("/api/orders", RUNBOOK_ORDER, format="json")
    admin_notif = api_client.post(
        "/api/orders",
        {**RUNBOOK_ORDER, "vin": "TESTADMIN123456", "car_number": "99-999-99"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["car_number"] == "12-345-67"
    assert admin_notif.status_code == 201
    assert Order.objects.filter(car_number="12-345-67").exists()


def test_order_create__one_event_in_the_same_transaction(api_client, system_keys):
    api_client.post("/api/orders", RUNBOOK_ORDER, format="json")

    events = Event.objects.filter(event_type="order.created")
    assert events.count() == 1
    assert events.get().payload["vin"] == "TEST123456789"


def test_order_create__as_deployed__order_and_its_event_one_statement(
    settings, monkeypatch, system_keys, django_assert_num_queries
):
    """With an integrator process chaining the log, the order row and its event's queue entry
    are one INSERT statement: one round trip, committed together."""
    settings.EVENT_INTEGRATION = "integrator"
    monkeypatch.setattr("conclave.halt.HALT_CHECK_INTERVAL", 60.0)  # however slow the machine
    fields = {**RUNBOOK_ORDER, "flags": flags_snapshot()}
    order_create(**fields)  # reads the halt and the signing keys, kept a moment per process

    with django_assert_num_queries(1):
        order = order_create(**fields)

    entry = EventQueueEntry.objects.order_by("id").last()
    assert entry is not None
    assert (
        entry.payload
        == canonical_payload(
            {
                "order_id": order.pk,
                "vin": "TEST123456789",
                "car_number": None,
                "part_type": "brake_pads",
                "category": "brakes",
                "original_or_analog": "original",
                "mechanic_id": None,
                "actor": "anonymous",
            }
        ).decode()
    )
    stored = Order.objects.get(pk=order.pk)
    assert (order.created_at, order.updated_at) == (stored.created_at, stored.updated_at)
    assert order.created_at is not None


def test_order_create__halted__refused_nothing_written(system_keys):
    halt_raise(reason="drill", actor="test", channel="command")
    forget_halt_status()

    with pytest.raises(Halted):
        order_create(**RUNBOOK_ORDER, flags=flags_snapshot())

    assert not Order.objects.exists()


def test_event_append_inserting__payload_holding_the_stand_in__still_the_new_id(
    settings, system_keys
):
    """A payload that already holds the number standing in for the new id is saved, then
    appended, the plain way."""
    settings.EVENT_INTEGRATION = "integrator"
    order = Order(mechanic_name="M", vin="TEST123456789", part_type="p", category="c")

    pending = event_append_inserting(
        order, event_type="order.created", payload={"note": NEW_ROW_ID}, id_key="order_id"
    )

    entry = EventQueueEntry.objects.get(id=pending.queue_id)
    assert json.loads(entry.payload) == {"note": NEW_ROW_ID, "order_id": order.pk}
    assert Order.objects.filter(pk=order.pk).exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"vin": "ABC12"}, "vin"),
        ({"vin": "TEST-12345"}, "vin"),
        ({"vin": "1HGCM82633A00435I"}, "vin"),  # 17 characters with an I
        ({"vin": "X" * 18}, "vin"),
        ({"original_or_analog": "refurbished"}, "original_or_analog"),
        ({"mechanic_name": ""}, "mechanic_name"),
        ({"part_type": "x" * 101}, "part_type"),
        ({"unexpected": 1}, "unexpected"),
        ({"vin": "WVWZZZ1JZ3W38\u00df"}, "vin"),  # upper() makes "ß" "SS": not a VIN letter
        ({"vin": "TEST\u0131234567"}, "vin"),  # dotless i, "I" once upper-cased
        ({"mechanic_name": "Dan \u202eevil"}, "mechanic_name"),  # reorders what staff see
        ({"part_type": "pads\x07"}, "part_type"),
        ({"category": "\u2068x"}, "category"),
        ({"mechanic_name": "Dan \ud800"}, "mechanic_name"),  # half a character: not text
        ({"part_type": "pads\udfff"}, "part_type"),
    ],
)
def test_order_create__invalid__400_naming_the_field_nothing_written(
    api_client, system_keys, change, field
):
    # As JSON escapes (a lone surrogate cannot be written in UTF-8, only as "\ud800").
    body = json.dumps({**RUNBOOK_ORDER, **change})
    response = api_client.post("/api/orders", body, content_type="application/json")

    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert not Order.objects.exists()
    assert not Event.objects.filter(event_type="order.created").exists()


def test_order_create__names_judged_by_what_they_say_not_the_spaces_around(api_client, system_keys):
    name = "N" * 100

    padded = api_client.post(
        "/api/orders", {**RUNBOOK_ORDER, "mechanic_name": f"  {name}  "}, format="json"
    )
    long = api_client.post(
        "/api/orders", {**RUNBOOK_ORDER, "mechanic_name": f"{name}N"}, format="json"
    )

    assert padded.status_code == 201 and padded.json()["mechanic_name"] == name
    assert long.status_code == 400 and list(long.json()["detail"]) == ["mechanic_name"]


def test_order_create__hebrew_marks_and_emoji_joiners__kept(api_client, system_keys):
    """Only control characters and direction overrides are refused: the right-to-left mark
    Hebrew text carries and the joiner inside an emoji are text."""
    name = "\u05d3\u05e0\u200f (Dan) \U0001f468\u200d\U0001f527"

    response = api_client.post("/api/orders", {**RUNBOOK_ORDER, "mechanic_name": name},
                               format="json")  # fmt: skip

    assert response.status_code == 201
    assert Order.objects.get().mechanic_name == name


def test_order_create__car_number_invalid_while_flag_on__400(
    api_client, system_keys, django_capture_on_commit_callbacks
):
    flag_on("ENABLE_CAR_NUMBER", django_capture_on_commit_callbacks)

    response = api_client.post(
        "/api/orders", {**RUNBOOK_ORDER, "car_number": "12 345 67!"}, format="json"
    )

    assert response.status_code == 400
    assert "car_number" in response.json()["detail"]


def test_order_create__every_field_s_problem_at_once(
    api_client, system_keys, django_capture_on_commit_callbacks
):
    flag_on("ENABLE_CAR_NUMBER", django_capture_on_commit_callbacks)

    response = api_client.post(
        "/api/orders",
        {**RUNBOOK_ORDER, "vin": "bad", "car_number": "12 345 67!"},
        format="json",
    )

    assert response.status_code == 400
    assert sorted(response.json()["detail"]) == ["car_number", "vin"]
    assert not Order.objects.exists()


def test_order_create__a_blank_name_and_a_bad_vin__both_told_at_once(api_client, system_keys):
    """A problem the request's shape shows (a blank name, an unknown origin) and one the
    order's own checks find (a VIN's letters) come back together: one round, not two."""
    response = api_client.post(
        "/api/orders",
        {**RUNBOOK_ORDER, "mechanic_name": "", "vin": "IOQ", "original_or_analog": "used"},
        format="json",
    )

    unknown_too = api_client.post(
        "/api/orders", {**RUNBOOK_ORDER, "vin": "IOQ", "colour": "red"}, format="json"
    )
    not_an_object = api_client.post("/api/orders", ["vin", "IOQ"], format="json")

    assert response.status_code == 400
    assert sorted(response.json()["detail"]) == ["mechanic_name", "original_or_analog", "vin"]
    assert sorted(unknown_too.json()["detail"]) == ["colour", "vin"]
    assert not_an_object.status_code == 400
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("mechanic_name", ""), ("mechanic_name", "   "), ("mechanic_name", "x" * 101),
     ("vin", ""), ("vin", "A" * 18), ("part_type", "y" * 101), ("category", ""),
     ("original_or_analog", "used")],
)  # fmt: skip
def test_order_create__a_field_s_problem__the_same_words_whatever_else_the_body_holds(
    api_client, system_keys, field, value
):
    """A client sees one message for one problem: not one when the body is otherwise right
    and another when a field missing (or unknown) sends the body through the serializer."""
    missing = "part_type" if field != "part_type" else "category"
    alone = api_client.post("/api/orders", {**RUNBOOK_ORDER, field: value}, format="json")
    without = {name: v for name, v in {**RUNBOOK_ORDER, field: value}.items() if name != missing}
    beside_missing = api_client.post("/api/orders", without, format="json")
    beside_unknown = api_client.post(
        "/api/orders", {**RUNBOOK_ORDER, field: value, "colour": "red"}, format="json"
    )

    assert alone.status_code == beside_missing.status_code == beside_unknown.status_code == 400
    told = alone.json()["detail"][field]
    assert beside_missing.json()["detail"][field] == told
    assert sorted(beside_missing.json()["detail"]) == sorted([field, missing])
    assert beside_unknown.json()["detail"][field] == told
    assert not Order.objects.exists()


def test_order_create__car_number_while_its_flag_is_off__its_length_checked_its_text_not_kept(
    api_client, system_keys
):
    """While ENABLE_CAR_NUMBER is off a car number is ignored, but the request's shape is the
    API document's (a string of at most 20 characters), whichever path reads the body."""
    too_long = "1" * 21
    unread = api_client.post(
        "/api/orders", {**RUNBOOK_ORDER, "car_number": "no such plate!"}, format="json"
    )
    alone = api_client.post("/api/orders", {**RUNBOOK_ORDER, "car_number": too_long}, format="json")
    beside = api_client.post(
        "/api/orders", {**RUNBOOK_ORDER, "car_number": too_long, "colour": "red"}, format="json"
    )

    assert unread.status_code == 201 and "car_number" not in unread.json()
    assert Order.objects.get().car_number == ""
    assert alone.status_code == 400 and list(alone.json()["detail"]) == ["car_number"]
    assert beside.status_code == 400
    assert beside.json()["detail"] == {**alone.json()["detail"], "colour": ["Unknown field."]}
    assert Order.objects.count() == 1


def test_order_create__lower_case_vin__stored_upper_case(api_client, system_keys):
    response = api_client.post(
        "/api/orders", {**RUNBOOK_ORDER, "vin": "wvwzzz1jzxw000001"}, format="json"
    )

    assert response.json()["vin"] == "WVWZZZ1JZXW000001"


def test_order_create__anonymous__throttled_per_address(monkeypatch, api_client, system_keys):
    from orders.apis.common import AnonymousOrderThrottle

    monkeypatch.setattr(AnonymousOrderThrottle, "THROTTLE_RATES", {"orders_anon": "3/min"})

    statuses = [
        api_client.post("/api/orders", RUNBOOK_ORDER, format="json").status_code for _ in range(4)
    ]

    assert statuses == [201, 201, 201, 429]


def test_orders_options__anonymous__described_as_the_post_it_allows(api_client):
    """Whoever may send an order may ask what the endpoint takes: OPTIONS answers as the
    POST it describes (anyone), not as the list (signed in)."""
    response = api_client.options("/api/orders")

    assert response.status_code == 200
    assert response.json()["name"] == "Orders Api"
    assert not Order.objects.exists()


def test_reads_without_parameters__a_parameter_refused_not_ignored(mechanic, staff_client):
    """A read that takes no parameters refuses one, as the lists refuse those they do not
    take: `?mechanic_id=` on the workshop's totals would otherwise answer the whole
    workshop's as if filtered, `?period=` on a mechanic's figures all time's."""
    mika = client_for("mika", MECHANIC_PASSWORD)
    order_id = mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]
    reads = {
        staff_client: ["/api/admin/orders/stats?mechanic_id=1"],
        mika: [
            f"/api/orders/{order_id}?fields=vin",
            "/api/mechanic/stats?period=today",
            "/api/mechanic/profile?x=1",
            "/api/mechanic/time/active?order_id=1",
            f"/api/orders/{order_id}/time?period=week",
            f"/api/orders/{order_id}/items?page=2",
            f"/api/orders/{order_id}/works?page=2",
            f"/api/orders/{order_id}/photos?page=2",
        ],
    }

    answers = {url: client.get(url) for client, urls in reads.items() for url in urls}

    for url, answer in answers.items():
        name = url.split("?")[1].split("=")[0]
        assert (url, answer.status_code, answer.json()) == (url, 400, {
            "error": "validation_error", "detail": {name: ["Unknown field."]},
        })  # fmt: skip
    assert mika.get(f"/api/orders/{order_id}").status_code == 200


# --- Mechanics: their own orders only --------------------------------------------------------------


def test_mechanic_order__assigned_to_them__status_moves_along(mechanic):
    client = client_for("mika", "a-long-enough-password-1")
    order_id = client.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]

    moves = [
        client.patch(
            f"/api/mechanic/orders/{order_id}/status", {"status": status}, format="json"
        ).status_code
        for status in ("in_progress", "ready", "completed")
    ]

    assert Order.objects.get().mechanic == mechanic
    assert moves == [200, 200, 200]
    changes = Event.objects.filter(event_type="order.status_changed")
    assert [(e.payload["old"], e.payload["new"]) for e in changes] == [
        ("new", "in_progress"),
        ("in_progress", "ready"),
        ("ready", "completed"),
    ]


@pytest.mark.parametrize(
    ("path", "target", "allowed"),
    [
        ([], "ready", ["in_progress", "cancelled"]),
        ([], "completed", ["in_progress", "cancelled"]),
        (["in_progress", "ready"], "cancelled", ["completed"]),
        (["cancelled"], "in_progress", []),
    ],
)
def test_status_change__illegal__409_naming_allowed(mechanic, path, target, allowed):
    client = client_for("mika", "a-long-enough-password-1")
    order_id = client.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]
    for status in path:
        client.patch(f"/api/mechanic/orders/{order_id}/status", {"status": status}, format="json")

    response = client.patch(
        f"/api/mechanic/orders/{order_id}/status", {"status": target}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["allowed"] == allowed
    words = {"in_progress": "in progress"}
    if allowed:
        assert response.json()["detail"] == (
            f"Order {order_id} is {words.get(path[-1], path[-1]) if path else 'new'}. Its status "
            f"can change to: {', '.join(words.get(a, a) for a in allowed)}."
        )
    else:
        assert response.json()["detail"] == (
            f"Order {order_id} is cancelled; its status can no longer change."
        )


@pytest.mark.parametrize(
    ("language", "detail"),
    [
        ("he", "הזמנה {id} חדשה. אפשר לשנות את הסטטוס שלה ל: בעבודה, בוטלה."),
        ("ru", "Заказ {id} новый. Его статус можно сменить на: в работе, отменён."),
    ],
)
def test_status_change__illegal__the_reason_in_the_callers_language(mechanic, language, detail):
    client = client_for("mika", "a-long-enough-password-1")
    order_id = client.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]

    response = client.patch(
        f"/api/mechanic/orders/{order_id}/status",
        {"status": "ready"},
        format="json",
        HTTP_ACCEPT_LANGUAGE=language,
    )

    assert response.status_code == 409
    assert response.json()["detail"] == detail.format(id=order_id)
    assert response.json()["allowed"] == ["in_progress", "cancelled"]  # codes never change


def test_other_mechanics_order__invisible_and_unchangeable(mechanic, other_mechanic):
    mika = client_for("mika", "a-long-enough-password-1")
    nora = client_for("nora", "a-long-enough-password-2")
    order_id = mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]

    seen = nora.get(f"/api/orders/{order_id}")
    changed = nora.patch(
        f"/api/mechanic/orders/{order_id}/status", {"status": "in_progress"}, format="json"
    )
    listed = nora.get("/api/orders").json()

    assert (seen.status_code, changed.status_code) == (404, 404)
    assert listed["count"] == 0
    assert Order.objects.get().status == "new"


def test_order_list__staff_all_filtered_mechanic_own(
    mechanic, other_mechanic, staff_user, api_client
):
    from rest_framework.authtoken.models import Token

    mika = client_for("mika", "a-long-enough-password-1")
    nora = client_for("nora", "a-long-enough-password-2")
    for client in (mika, mika, nora):
        client.post("/api/orders", RUNBOOK_ORDER, format="json")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=staff_user).key}")

    everything = api_client.get("/api/orders").json()
    by_mechanic = api_client.get(f"/api/orders?mechanic_id={mechanic.pk}").json()
    own = mika.get("/api/orders").json()
    bad_filter = api_client.get("/api/orders?status=lost")

    assert everything["count"] == 3
    assert by_mechanic["count"] == 2
    assert own["count"] == 2
    assert bad_filter.status_code == 400


@pytest.mark.parametrize(
    "query", ["status=new&status=completed", "mechanic_id=1&mechanic_id=2", "page=1&page=2"]
)
def test_order_list__parameter_given_twice__400_not_the_last_one_taken(staff_client, query):
    """`?status=new&status=completed` read as `completed` alone would answer another question
    than the one asked."""
    response = staff_client.get(f"/api/orders?{query}")

    name = query.split("=")[0]
    assert response.status_code == 400
    assert response.json()["detail"] == {name: ["Given more than once: give it once."]}


def test_order_list__queries_do_not_grow_with_orders(mechanic, django_assert_max_num_queries):
    mika = client_for("mika", "a-long-enough-password-1")
    for _ in range(30):
        mika.post("/api/orders", RUNBOOK_ORDER, format="json")

    # token, mechanic profile, count, page
    with django_assert_max_num_queries(5):
        response = mika.get("/api/orders")

    assert len(response.json()["results"]) == 30


def test_status_change__not_a_mechanic__403(api_client, system_keys):
    order_id = api_client.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]

    response = api_client.patch(
        f"/api/mechanic/orders/{order_id}/status", {"status": "in_progress"}, format="json"
    )

    assert response.status_code in (401, 403)


# --- Login ------------------------------------------------------------------------------------------


def test_login__wrong_password__401_then_locked_out(settings, mechanic, api_client):
    settings.LOGIN_LOCKOUT_FAILURES = 3
    wrong = {"username": "mika", "password": "not-it"}

    statuses = [
        api_client.post("/api/mechanic/login", wrong, format="json").status_code for _ in range(3)
    ]
    locked = api_client.post(
        "/api/mechanic/login",
        {"username": "mika", "password": "a-long-enough-password-1"},
        format="json",
    )

    assert statuses == [401, 401, 401]
    assert locked.status_code == 429
    assert locked.json()["error"] == "locked_out"


def test_login__not_a_mechanic__same_401(api_client, system_keys):
    from tests.factories import UserFactory

    UserFactory(username="clerk")

    response = api_client.post(
        "/api/mechanic/login",
        {"username": "clerk", "password": "correct horse battery"},
        format="json",
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"


def test_create_mechanic_command__weak_password_refused(system_keys, tmp_path):
    from io import StringIO

    from django.core.management.base import CommandError

    call_command("create_mechanic", "ivan", "--password", "a-long-enough-password-3",
                 "--language", "ru", stdout=StringIO())  # fmt: skip
    with pytest.raises(CommandError, match="password"):
        call_command("create_mechanic", "olga", "--password", "123", stdout=StringIO())

    assert Event.objects.filter(event_type="mechanic.created").count() == 1


@pytest.mark.parametrize("username", ["a b", "a\tb", "\u202eevil", "mika!", "mika\n"])
def test_create_mechanic_command__username_django_would_refuse__refused(system_keys, username):
    from io import StringIO

    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="username.*letters, numbers"):
        call_command("create_mechanic", username, "--password", "a-long-enough-password-3",
                     stdout=StringIO())  # fmt: skip

    assert not MechanicProfile.objects.exists()


@pytest.mark.parametrize("username", ["IVAN", "Ivan"])
def test_create_mechanic_command__a_name_taken_in_another_case__refused(system_keys, username):
    from io import StringIO

    from django.core.management.base import CommandError

    call_command("create_mechanic", "ivan", "--password", "a-long-enough-password-3",
                 stdout=StringIO())  # fmt: skip
    with pytest.raises(CommandError, match="A user named ivan exists already."):
        call_command("create_mechanic", username, "--password", "a-long-enough-password-4",
                     stdout=StringIO())  # fmt: skip

    assert list(MechanicProfile.objects.values_list("user__username", flat=True)) == ["ivan"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [("\u202eevil", "text direction overrides"), ("a\nb", "Control characters"),
     ("x" * 101, "1 to 100 characters")],
)  # fmt: skip
def test_create_mechanic_command__display_name_the_profile_would_refuse__refused(
    system_keys, name, problem
):
    from io import StringIO

    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=problem):
        call_command("create_mechanic", "ivan", "--password", "a-long-enough-password-3",
                     "--name", name, stdout=StringIO())  # fmt: skip

    assert not MechanicProfile.objects.exists()


def test_create_mechanic_command__display_name_trimmed_or_the_username(system_keys):
    from io import StringIO

    call_command("create_mechanic", "ivan", "--password", "a-long-enough-password-3",
                 "--name", "  Ivan Petrov ", stdout=StringIO())  # fmt: skip
    call_command("create_mechanic", "olga", "--password", "a-long-enough-password-4",
                 "--name", "   ", stdout=StringIO())  # fmt: skip

    assert sorted(MechanicProfile.objects.values_list("display_name", flat=True)) == [
        "Ivan Petrov", "olga",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("chat_id", "problem"),
    [("0", "positive id"), ("-5", "positive id"), (str(2**52), "positive id"),
     (str(2**70), "positive id"), ("777", "linked to another mechanic")],
)  # fmt: skip
def test_create_mechanic_command__chat_id_refused_as_the_link_refuses_it(
    system_keys, chat_id, problem
):
    from io import StringIO

    from django.core.management.base import CommandError

    call_command("create_mechanic", "ivan", "--password", "a-long-enough-password-3",
                 "--telegram-chat-id", "777", stdout=StringIO())  # fmt: skip
    with pytest.raises(CommandError, match=problem):
        call_command("create_mechanic", "olga", "--password", "a-long-enough-password-4",
                     "--telegram-chat-id", chat_id, stdout=StringIO())  # fmt: skip

    assert list(MechanicProfile.objects.values_list("user__username", flat=True)) == ["ivan"]


def test_mechanic_chat__one_mechanic_per_chat_in_the_database_too(mechanic, other_mechanic):
    from django.db import IntegrityError, transaction

    MechanicProfile.objects.filter(pk=mechanic.pk).update(telegram_chat_id=4242)

    with pytest.raises(IntegrityError), transaction.atomic():
        MechanicProfile.objects.filter(pk=other_mechanic.pk).update(telegram_chat_id=4242)
    MechanicProfile.objects.filter(pk=other_mechanic.pk).update(telegram_chat_id=None)
    MechanicProfile.objects.filter(pk=mechanic.pk).update(telegram_chat_id=None)  # NULLs repeat


def test_names_and_keys_taken_while_a_write_waits__conflict_not_a_traceback(
    scratch_database, tmp_path
):
    """The services check that a username, a chat or a keeper's public key is free, then
    write it; another transaction may write the same value in between. The test writes it
    first and holds it uncommitted while the command's check passes and its insert waits on
    the unique index; once the test commits, the command refuses as its check would have."""
    database = scratch_database("conclave_taken_meanwhile")
    env = served_env(database, tmp_path)
    made = run_manage("create_mechanic", "ivan", "--password", MECHANIC_PASSWORD, env=env)
    assert made.returncode == 0, made.stderr
    public_key = "ab" * 32
    register = (
        "from events.services import keeper_key_register as register;"
        f"register(keeper_id='KEEPER:late', public_key=bytes.fromhex('{public_key}'))"
    )
    admin_add = (
        "from django.contrib.auth.models import User; from django.test import Client;"
        "client = Client(raise_request_exception=False, SERVER_NAME='localhost');"
        "client.force_login(User.objects.create_superuser('root', password=None));"
        "answer = client.post('/admin/events/keeperkey/add/',"
        f" {{'keeper_id': 'KEEPER:late', 'public_key_hex': '{'cd' * 32}'}});"
        "print(answer.status_code, answer.content.decode())"
    )
    keeper_row = (
        "INSERT INTO keeper_keys (id, key_id, public_key, active_from, keeper_id, created_at)"
        " VALUES (gen_random_uuid(), %s, decode(%s, 'hex'), now(), %s, now())"
    )
    races: dict[str, tuple[tuple[str, tuple[str, ...]], list[str]]] = {
        "username": (
            (
                "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,"
                " email, is_staff, is_active, date_joined)"
                " VALUES ('!', false, 'mika', '', '', '', false, true, now())",
                (),
            ),
            ["create_mechanic", "mika", "--password", MECHANIC_PASSWORD],
        ),
        "chat": (
            ("UPDATE mechanic_profiles SET telegram_chat_id = 4242", ()),
            [
                "create_mechanic",
                "olga",
                "--password",
                MECHANIC_PASSWORD,
                "--telegram-chat-id",
                "4242",
            ],
        ),
        "keeper key": (
            (keeper_row, ("keeper-first", public_key, "KEEPER:first")),
            ["shell", "-c", register],
        ),
        "admin page": (
            (keeper_row, ("keeper-second", "cd" * 32, "KEEPER:second")),
            ["shell", "-v", "0", "-c", admin_add],
        ),
    }
    results: dict[str, Any] = {}
    for race, ((first, values), command) in races.items():
        with psycopg.connect(database.dsn) as holder:
            holder.execute(first, values)
            late = threading.Thread(
                target=lambda race=race, command=command: results.update(
                    {race: run_manage(*command, env=env)}
                )
            )
            late.start()
            wait_for_lock_waiters(database.dsn, 1)  # its check passed; its insert waits
            holder.commit()
            late.join(timeout=60)

    assert results["username"].returncode == 1, results["username"].stderr
    assert "conflict: A user named mika exists already." in results["username"].stderr
    assert results["chat"].returncode == 1, results["chat"].stderr
    assert "Chat 4242 is linked to another mechanic already." in results["chat"].stderr
    assert "Conflict: This public key is registered already" in results["keeper key"].stderr
    assert "IntegrityError" not in results["keeper key"].stderr
    assert results["admin page"].stdout.startswith("409 "), results["admin page"].stdout[:300]
    assert "This public key is registered already" in results["admin page"].stdout
    assert "Nothing was changed." in results["admin page"].stdout
    with psycopg.connect(database.dsn) as reader:
        users = reader.execute("SELECT username FROM auth_user ORDER BY username").fetchall()
        keys = reader.execute("SELECT keeper_id FROM keeper_keys ORDER BY 1").fetchall()
        created = reader.execute(
            "SELECT count(*) FROM events WHERE event_type = 'mechanic.created'"
        ).fetchone()
    assert users == [("ivan",), ("mika",), ("root",)]
    assert keys == [("KEEPER:first",), ("KEEPER:second",)]
    assert created == (1,)


def test_usernames_differing_in_case_made_at_once__the_second_refused(scratch_database, tmp_path):
    """ "Ivan" beside "ivan" is one name. A creation that checked its name while another's
    "ivan" was written but not committed finds it free, then waits at the unique index on
    `UPPER(username)` and is refused once the other commits, in the check's words."""
    database = scratch_database("conclave_usernames_at_once")
    env = served_env(database, tmp_path)
    result: dict[str, Any] = {}
    with psycopg.connect(database.dsn) as holder:
        holder.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,"
            " email, is_staff, is_active, date_joined)"
            " VALUES ('!', false, 'ivan', '', '', '', false, true, now())"
        )
        late = threading.Thread(
            target=lambda: result.update(
                made=run_manage("create_mechanic", "Ivan", "--password", MECHANIC_PASSWORD, env=env)
            )
        )
        late.start()
        wait_for_lock_waiters(database.dsn, 1)  # its check passed; its INSERT waits
        holder.commit()
        late.join(timeout=60)

    assert result["made"].returncode == 1, result["made"].stderr
    assert "A user named ivan exists already." in result["made"].stderr
    with psycopg.connect(database.dsn) as reader:
        users = reader.execute("SELECT username FROM auth_user ORDER BY username").fetchall()
        created = reader.execute(
            "SELECT count(*) FROM events WHERE event_type = 'mechanic.created'"
        ).fetchone()
    assert users == [("ivan",)]
    assert created == (0,)


@pytest.mark.django_db
def test_usernames_differing_in_case__refused_whatever_makes_the_user():
    """Django's own user form and `createsuperuser` write users without the mechanics'
    service: the database refuses "IVAN" beside "ivan" for them too."""
    User.objects.create_user("ivan")

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user("IVAN")

    assert list(User.objects.values_list("username", flat=True)) == ["ivan"]


def test_usernames_migration__names_the_users_differing_only_in_case_and_reverses(
    scratch_database, tmp_path
):
    """A database holding "ivan" and "IVAN" from before the index: the migration stops and
    names them (which to rename is the operator's call); once one is renamed it applies,
    and it reverses cleanly."""
    database = scratch_database("conclave_usernames_migration")
    env = served_env(database, tmp_path)

    def index() -> list[tuple[str]]:
        with psycopg.connect(database.dsn) as reader:
            return reader.execute(
                "SELECT indexname FROM pg_indexes WHERE indexname = 'auth_user_username_upper_uniq'"
            ).fetchall()

    back = run_manage("migrate", "conclave", "0005", env=env)
    without = index()
    with psycopg.connect(database.dsn) as writer:
        for name in ("ivan", "IVAN", "Ivan", "mika"):
            writer.execute(
                "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,"
                " email, is_staff, is_active, date_joined)"
                " VALUES ('!', false, %s, '', '', '', false, true, now())",
                [name],
            )
    refused = run_manage("migrate", "-v0", env=env)
    with psycopg.connect(database.dsn) as writer:
        writer.execute("UPDATE auth_user SET username = 'ivan2' WHERE username = 'IVAN'")
        writer.execute("UPDATE auth_user SET username = 'ivan3' WHERE username = 'Ivan'")
    applied = run_manage("migrate", "-v0", env=env)

    assert back.returncode == 0, back.stderr
    assert without == []
    assert refused.returncode == 1
    assert "Usernames differing only in case: IVAN, Ivan, ivan." in refused.stderr
    assert applied.returncode == 0, applied.stderr
    assert index() == [("auth_user_username_upper_uniq",)]


def mika_and_staff(
    database: ScratchDatabase, tmp_path: Path, *steps: list[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """A served scratch workshop with the mechanic mika and a staff operator, after `steps`
    (manage.py commands); returns its environment and the operator's API headers."""
    env = served_env(
        database, tmp_path, DJANGO_SUPERUSER_USERNAME="operator",
        DJANGO_SUPERUSER_EMAIL="operator@example.com", DJANGO_SUPERUSER_PASSWORD="x-" * 8,
    )  # fmt: skip
    for step in (["create_mechanic", "mika", "--password", MECHANIC_PASSWORD],
                 ["createsuperuser", "--noinput"], *steps):  # fmt: skip
        made = run_manage(*step, env=env)
        assert made.returncode == 0, made.stderr
    token = run_manage("drf_create_token", "operator", env=env).stdout.split()[2]
    return env, {"Authorization": f"Bearer {token}"}


def test_part_deleted_while_an_item_takes_it__the_second_refused_cleanly(
    scratch_database, tmp_path
):
    """A part deleted while a mechanic's item names it, either way round: whichever comes
    second is refused as it would be had it come later (400 the part is gone; 409 an order
    uses it), not a foreign key's 500 at COMMIT. Two items taking the same part at once do
    not wait for each other. The test holds the event chain's lock, so each request waits
    there with its change made (or behind the one before it, on the rows they share)."""
    database = scratch_database("conclave_part_race")
    env, staff = mika_and_staff(database, tmp_path, ["flags", "on", "ENABLE_PART_CATEGORIES"])
    answers: dict[str, tuple[int, Any]] = {}

    with gunicorn(env) as base:
        login = {"username": "mika", "password": MECHANIC_PASSWORD}
        token = call("POST", f"{base}/api/mechanic/login", body=login)[1]["token"]
        mika = {"Authorization": f"Bearer {token}"}
        order_id = call("POST", f"{base}/api/orders", body=RUNBOOK_ORDER, headers=mika)[1]["id"]
        category = {"name_en": "Brakes", "name_he": "בלמים", "name_ru": "Тормоза"}
        category_id = call("POST", f"{base}/api/admin/categories", body=category,
                           headers=staff)[1]["id"]  # fmt: skip
        pad, disc = (
            call("POST", f"{base}/api/admin/parts", headers=staff, body={
                "category_id": category_id, "name_en": name, "name_he": name, "name_ru": name,
                "part_number": name, "price": "10.00"})[1]["id"]
            for name in ("Pad", "Disc")
        )  # fmt: skip
        requests = {
            "delete pad": ("DELETE", f"/api/admin/parts/{pad}", staff, None),
            "add pad": ("POST", f"/api/orders/{order_id}/items", mika, {"part_id": pad}),
            "add disc": ("POST", f"/api/orders/{order_id}/items", mika, {"part_id": disc}),
            "delete brakes": ("DELETE", f"/api/admin/categories/{category_id}", staff, None),
        }

        def ask(name: str) -> None:
            method, path, headers, body = requests[name]
            answers[name] = call(method, f"{base}{path}", body=body, headers=headers)

        # Two items taking the disc at once: neither waits for the other's hold on the part,
        # both get as far as the event chain.
        other_order = call("POST", f"{base}/api/orders", body=RUNBOOK_ORDER, headers=mika)[1]
        requests["disc again"] = (
            "POST", f"/api/orders/{other_order['id']}/items", mika, {"part_id": disc},
        )  # fmt: skip
        with psycopg.connect(database.dsn) as holder:
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK_KEY,))
            both = [threading.Thread(target=ask, args=(n,)) for n in ("add disc", "disc again")]
            for thread in both:
                thread.start()
            wait_for_lock_waiters(database.dsn, 2)
            (at_the_chain,) = holder.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event = 'advisory' AND datname = current_database()"
            ).fetchone()
        for thread in both:
            thread.join(timeout=30)
        alongside = (answers.pop("add disc")[0], answers.pop("disc again")[0])
        for first, second in (("delete pad", "add pad"), ("add disc", "delete brakes")):
            with psycopg.connect(database.dsn) as holder:
                holder.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK_KEY,))
                threads = [threading.Thread(target=ask, args=(name,)) for name in (first, second)]
                threads[0].start()
                wait_for_lock_waiters(database.dsn, 1)
                threads[1].start()
                wait_for_lock_waiters(database.dsn, 2)
            for thread in threads:
                thread.join(timeout=30)
        items = call("GET", f"{base}/api/orders/{order_id}", headers=mika)[1]["items"]

    assert answers["delete pad"][0] == 204, answers["delete pad"]
    assert answers["add pad"] == (
        400,
        {"error": "validation_error", "detail": {"part_id": [f"No catalog part {pad}."]}},
    )
    assert answers["add disc"][0] == 201, answers["add disc"]
    assert answers["delete brakes"][0] == 409, answers["delete brakes"]
    assert "used by 2 order(s)" in answers["delete brakes"][1]["detail"]
    assert (alongside, at_the_chain) == ((201, 201), 2)
    assert [item["part_id"] for item in items] == [disc, disc]


# --- The catalog -----------------------------------------------------------------------------------


@pytest.fixture
def catalog(db):
    brakes = Category.objects.create(name_en="Brakes", name_he="בלמים", name_ru="Тормоза")
    Part.objects.create(
        category=brakes, name_en="Brake pads", name_he="רפידות בלם", name_ru="Колодки",
        part_number="BP-1", price=Decimal("149.90"), is_common=True,
    )  # fmt: skip
    return brakes


def test_catalog__flag_off__404_naming_the_flag(api_client, catalog):
    response = api_client.get("/api/categories")
    parts = api_client.get(f"/api/parts?category_id={catalog.pk}")

    assert (response.status_code, parts.status_code) == (404, 404)
    assert response.json()["error"] == "feature_disabled"
    assert "ENABLE_PART_CATEGORIES" in response.json()["detail"]


def test_catalog__flag_on__runbook_curls_in_each_language(
    api_client, catalog, system_keys, django_capture_on_commit_callbacks
):
    flag_on("ENABLE_PART_CATEGORIES", django_capture_on_commit_callbacks)

    categories = api_client.get("/api/categories")
    parts = api_client.get(f"/api/parts?category_id={catalog.pk}")
    hebrew = api_client.get("/api/categories?lang=he").json()
    russian = api_client.get(f"/api/parts?category_id={catalog.pk}", HTTP_ACCEPT_LANGUAGE="ru")
    none = api_client.get("/api/parts?category_id=999").json()
    bad = api_client.get("/api/parts?category_id=one")

    assert categories.status_code == 200
    assert categories.json()[0]["name"] == "Brakes"
    assert parts.json()[0] == {
        "id": parts.json()[0]["id"], "category_id": catalog.pk, "name": "Brake pads",
        "part_number": "BP-1", "price": "149.90", "is_common": True,
    }  # fmt: skip
    assert hebrew[0]["name"] == "בלמים"
    assert russian.json()[0]["name"] == "Колодки"
    assert none == []
    assert bad.status_code == 400


@pytest.mark.parametrize("value", ["one", "-1", "\u00b2", "1" * 5000, str(2**63)])
def test_parts__category_id_not_an_id__400_naming_it(
    api_client, catalog, system_keys, django_capture_on_commit_callbacks, value
):
    flag_on("ENABLE_PART_CATEGORIES", django_capture_on_commit_callbacks)

    response = api_client.get("/api/parts", {"category_id": value})

    assert response.status_code == 400
    assert response.json()["detail"].keys() == {"category_id"}


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/api/parts", "category=1", "category"),  # category_id's typo: not every part
        ("/api/parts", "category_id=1&category_id=2", "category_id"),
        ("/api/parts", "lang=fr", "lang"),
        ("/api/categories", "category_id=1", "category_id"),
        ("/api/categories", "lang=english", "lang"),
    ],
)
def test_catalog__parameter_it_cannot_read__400_naming_it(
    api_client, catalog, system_keys, django_capture_on_commit_callbacks, path, query, field
):
    flag_on("ENABLE_PART_CATEGORIES", django_capture_on_commit_callbacks)

    response = api_client.get(f"{path}?{query}")

    assert response.status_code == 400
    assert response.json()["detail"].keys() == {field}


# --- Migrations roll back as the runbook's rollback does --------------------------------------------


def test_orders_migrations__roll_back_car_number_and_catalog_then_forward(
    scratch_database, tmp_path
):
    from tests.conftest import clean_env

    database = scratch_database("conclave_orders_rollback")
    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.test",
        DATABASE_URL=database.url,
        SIGNING_KEY_DIR=str(tmp_path / "keys"),
        LOG_LEVEL="WARNING",
    )
    import psycopg

    def columns() -> set[str]:
        with psycopg.connect(database.dsn) as connection:
            return {
                row[0]
                for row in connection.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'"
                )
            }

    def indexes() -> set[str]:
        with psycopg.connect(database.dsn) as connection:
            return {
                row[0]
                for row in connection.execute(
                    "SELECT indexname FROM pg_indexes WHERE tablename IN ('orders', 'parts')"
                )
            }

    assert run_manage("migrate", "-v0", env=env).returncode == 0
    full, full_indexes = columns(), indexes()
    back = run_manage("migrate", "orders", "0001", env=env)
    rolled_back, rolled_back_indexes = columns(), indexes()
    forward = run_manage("migrate", "-v0", env=env)

    assert {"car_number", "part_id"} <= full
    # the runbook's checklist: "Indexes created: idx_orders_car_number, idx_parts_category_id"
    assert {"idx_orders_car_number", "idx_parts_category_id"} <= full_indexes
    assert not [name for name in full_indexes if name.endswith("_like")]
    assert back.returncode == 0, back.stderr
    assert not {"car_number", "part_id"} & rolled_back
    assert not {"idx_orders_car_number", "idx_parts_category_id"} & rolled_back_indexes
    assert forward.returncode == 0, forward.stderr
    assert (columns(), indexes()) == (full, full_indexes)


# --- Assignment and comments ---------------------------------------------------------------------


def test_assign__staff_assigns_then_reassigns__mechanic_takes_it_from_there(
    staff_client, mechanic, other_mechanic
):
    order_id = APIClient().post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]

    first = staff_client.post(
        f"/api/admin/orders/{order_id}/assign",
        {"mechanic_id": mechanic.pk, "notes": "urgent"},
        format="json",
    )
    second = staff_client.post(
        f"/api/admin/orders/{order_id}/assign", {"mechanic_id": other_mechanic.pk}, format="json"
    )
    nora = client_for("nora", "a-long-enough-password-2")
    mika = client_for("mika", "a-long-enough-password-1")
    moved = nora.patch(
        f"/api/mechanic/orders/{order_id}/status", {"status": "in_progress"}, format="json"
    )

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["mechanic_id"] == other_mechanic.pk
    assert moved.status_code == 200
    assert mika.get(f"/api/orders/{order_id}").status_code == 404
    assigned = Event.objects.filter(event_type="order.assigned")
    assert [e.payload["previous_mechanic_id"] for e in assigned] == [None, mechanic.pk]


@pytest.mark.parametrize("final", ["completed", "cancelled"])
def test_assign__completed_or_cancelled_order__409_stays_with_its_mechanic(
    staff_client, staff_user, mechanic, other_mechanic, final
):
    """A finished order's work is its mechanic's (their figures, its time): giving it to
    another would move that, and send them a link to an order they cannot work on."""
    from orders.services import order_status_set

    order_id = APIClient().post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]
    staff_client.post(
        f"/api/admin/orders/{order_id}/assign", {"mechanic_id": mechanic.pk}, format="json"
    )
    path = ["in_progress", "ready", "completed"] if final == "completed" else ["cancelled"]
    for status in path:
        order_status_set(order_id=order_id, status=status, actor=staff_user)

    response = staff_client.post(
        f"/api/admin/orders/{order_id}/assign", {"mechanic_id": other_mechanic.pk}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"Order {order_id} is {final}; it can no longer be assigned."
    )
    assert Order.objects.get().mechanic == mechanic
    assert Event.objects.filter(event_type="order.assigned").count() == 1


def test_assign__inactive_mechanic_409__not_staff_403(staff_client, mechanic):
    order_id = APIClient().post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]
    mechanic.is_active = False
    mechanic.save()

    inactive = staff_client.post(
        f"/api/admin/orders/{order_id}/assign", {"mechanic_id": mechanic.pk}, format="json"
    )
    missing = staff_client.post(
        f"/api/admin/orders/{order_id}/assign", {"mechanic_id": 9999}, format="json"
    )
    as_mechanic = APIClient()
    as_mechanic.force_authenticate(mechanic.user)
    refused = as_mechanic.post(
        f"/api/admin/orders/{order_id}/assign", {"mechanic_id": mechanic.pk}, format="json"
    )

    assert inactive.status_code == 409
    assert missing.status_code == 400
    assert refused.status_code == 403
    assert Order.objects.get().mechanic is None


# --- Correcting an order's own fields ----------------------------------------------------------


def test_order_correction__a_vin_typed_wrong__put_right_old_and_new_in_one_event(mechanic):
    """A VIN or the part typed wrong was put right only by cancelling the order and making
    it again (its parts, labour, time and comments left behind on the cancelled one)."""
    mika = client_for("mika", "a-long-enough-password-1")
    created = mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()

    response = mika.patch(
        f"/api/orders/{created['id']}",
        {"vin": " test123456780 ", "part_type": "Brake pads, front", "category": "brakes"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["vin"], body["part_type"], body["category"]) == (
        "TEST123456780",
        "Brake pads, front",
        "brakes",
    )
    assert body["updated_at"] > created["updated_at"]
    order = Order.objects.get()
    assert (order.vin, order.part_type) == ("TEST123456780", "Brake pads, front")
    updated = Event.objects.get(event_type="order.updated").payload
    assert updated == {
        "order_id": order.pk,
        "changes": {
            "vin": {"old": "TEST123456789", "new": "TEST123456780"},
            "part_type": {"old": "brake_pads", "new": "Brake pads, front"},
        },
        "actor": "user:mika",
    }


def test_order_correction__refused_whole__nothing_changed(mechanic, other_mechanic, staff_client):
    mika = client_for("mika", "a-long-enough-password-1")
    nora = client_for("nora", "a-long-enough-password-2")
    order_id = mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]
    url = f"/api/orders/{order_id}"

    bad = mika.patch(url, {"vin": "IOQ", "mechanic_name": "Ivan\u202e"}, format="json")
    bad_choice = mika.patch(url, {"original_or_analog": "x"}, format="json")
    shape_and_vin = mika.patch(url, {"part_type": "", "vin": "IOQ"}, format="json")
    empty = mika.patch(url, {}, format="json")
    unknown = mika.patch(url, {"status": "ready"}, format="json")
    same = mika.patch(url, {"vin": "TEST123456789"}, format="json")
    others = nora.patch(url, {"part_type": "Filter"}, format="json")
    anonymous = APIClient().patch(url, {"part_type": "Filter"}, format="json")
    by_staff = staff_client.patch(url, {"original_or_analog": "analog"}, format="json")
    mika.patch(f"/api/mechanic/orders/{order_id}/status", {"status": "cancelled"}, format="json")
    finished = mika.patch(url, {"part_type": "Filter"}, format="json")

    assert bad.status_code == 400
    assert sorted(bad.json()["detail"]) == ["mechanic_name", "vin"]
    assert list(bad_choice.json()["detail"]) == ["original_or_analog"]
    assert sorted(shape_and_vin.json()["detail"]) == ["part_type", "vin"]
    assert empty.status_code == 400
    assert empty.json()["detail"] == {"non_field_errors": ["Give at least one field to change."]}
    assert unknown.status_code == 400 and unknown.json()["detail"] == {"status": ["Unknown field."]}
    assert same.status_code == 200
    assert (others.status_code, anonymous.status_code) == (404, 401)
    assert by_staff.status_code == 200
    assert finished.status_code == 409
    assert finished.json()["detail"] == (
        f"Order {order_id} is cancelled; it can no longer be changed."
    )
    order = Order.objects.get()
    assert (order.vin, order.part_type, order.original_or_analog) == (
        "TEST123456789",
        "brake_pads",
        "analog",
    )
    assert [e.payload["actor"] for e in Event.objects.filter(event_type="order.updated")] == [
        "user:stella"
    ]


def test_order_correction__if_match__a_stale_read_refused_412_nothing_changed(
    mechanic, staff_client
):
    """An API client corrects what it read: with `If-Match` (the `ETag` of its read) a change
    made since, by anyone, refuses the correction instead of being written over."""
    mika = client_for("mika", "a-long-enough-password-1")
    order_id = mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]
    url = f"/api/orders/{order_id}"
    read = staff_client.get(url)
    mika.patch(url, {"part_type": "Pads, front"}, format="json")  # meanwhile

    stale = staff_client.patch(url, {"vin": "TEST123456780"}, format="json",
                               HTTP_IF_MATCH=read["ETag"])  # fmt: skip
    fresh = staff_client.get(url)
    current = staff_client.patch(url, {"vin": "TEST123456780"}, format="json",
                                 HTTP_IF_MATCH=fresh["ETag"])  # fmt: skip
    after = staff_client.get(url)
    any_version = staff_client.patch(url, {"category": "Brakes"}, format="json",
                                     HTTP_IF_MATCH="*")  # fmt: skip
    garbled = staff_client.patch(url, {"category": "Pads"}, format="json",
                                 HTTP_IF_MATCH="not an etag")  # fmt: skip

    assert read["ETag"].startswith('"') and read["ETag"] != fresh["ETag"]
    assert stale.status_code == 412
    assert stale.json() == {
        "error": "precondition_failed",
        "detail": f"Order {order_id} has changed since it was read: read it again.",
    }
    assert current.status_code == 200 and current["ETag"] != fresh["ETag"]
    assert current["ETag"] == after["ETag"] != any_version["ETag"]
    assert garbled.status_code == 412
    order = Order.objects.get()
    assert (order.vin, order.part_type, order.category) == (
        "TEST123456780", "Pads, front", "Brakes"
    )  # fmt: skip
    assert Event.objects.filter(event_type="order.updated").count() == 3


def test_order_correction__car_number_only_while_its_flag_is_on(
    mechanic, django_capture_on_commit_callbacks
):
    """As when an order is made: ignored while ENABLE_CAR_NUMBER is off, and what is stored
    is kept (never emptied by a correction sent while it is off)."""
    from flags.services import flag_set

    mika = client_for("mika", "a-long-enough-password-1")
    flag_on("ENABLE_CAR_NUMBER", django_capture_on_commit_callbacks)
    order_id = mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]
    url = f"/api/orders/{order_id}"

    on = mika.patch(url, {"car_number": "99-999-99"}, format="json")
    bad = mika.patch(url, {"car_number": "99 999 99!"}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        flag_set(name="ENABLE_CAR_NUMBER", enabled=False, actor="test")
    off = mika.patch(url, {"car_number": "", "part_type": "Pads"}, format="json")
    off_unread = mika.patch(url, {"car_number": "no such plate!"}, format="json")
    off_too_long = mika.patch(url, {"car_number": "9" * 21}, format="json")  # the document's 20

    assert on.status_code == 200 and on.json()["car_number"] == "99-999-99"
    assert bad.status_code == 400 and list(bad.json()["detail"]) == ["car_number"]
    assert off.status_code == 200 and "car_number" not in off.json()
    assert off_unread.status_code == 200 and "car_number" not in off_unread.json()
    assert off_too_long.status_code == 400
    assert list(off_too_long.json()["detail"]) == ["car_number"]
    assert Order.objects.get().car_number == "99-999-99"
    changes = [e.payload["changes"] for e in Event.objects.filter(event_type="order.updated")]
    assert changes == [
        {"car_number": {"old": "12-345-67", "new": "99-999-99"}},
        {"part_type": {"old": "brake_pads", "new": "Pads"}},
    ]


def test_staff_status__any_order_moves_along__mechanics_403__illegal_409(staff_client, mechanic):
    """Staff's API moves an order as the admin's buttons do, the anonymous ones included (no
    mechanic can): API consumers could assign an order but not complete or cancel it."""
    order_id = APIClient().post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]
    url = f"/api/admin/orders/{order_id}/status"
    as_mechanic = client_for("mika", "a-long-enough-password-1")

    refused = as_mechanic.patch(url, {"status": "in_progress"}, format="json")
    moves = [
        staff_client.patch(url, {"status": status}, format="json")
        for status in ("in_progress", "ready")
    ]
    illegal = staff_client.patch(url, {"status": "cancelled"}, format="json")
    unknown = staff_client.patch(url, {"status": "lost"}, format="json")
    empty = staff_client.patch(url, {}, format="json")
    missing = staff_client.patch(
        f"/api/admin/orders/{order_id + 1}/status", {"status": "ready"}, format="json"
    )

    assert refused.status_code == 403
    assert [m.status_code for m in moves] == [200, 200]
    assert moves[-1].json()["status"] == "ready"
    assert illegal.status_code == 409
    assert illegal.json()["allowed"] == ["completed"]
    assert unknown.status_code == 400
    assert list(empty.json()["detail"]) == ["status"]
    assert missing.status_code == 404
    assert Order.objects.get().status == "ready"
    changes = Event.objects.filter(event_type="order.status_changed")
    assert [(e.payload["old"], e.payload["new"], e.payload["actor"]) for e in changes] == [
        ("new", "in_progress", "user:stella"),
        ("in_progress", "ready", "user:stella"),
    ]


def test_comments__own_order_add_and_list__empty_refused__others_404(mechanic, other_mechanic):
    mika = client_for("mika", "a-long-enough-password-1")
    nora = client_for("nora", "a-long-enough-password-2")
    order_id = mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]

    added = mika.post(
        f"/api/orders/{order_id}/comments", {"text": "Pads on the shelf"}, format="json"
    )
    empty = mika.post(f"/api/orders/{order_id}/comments", {"text": "   "}, format="json")
    others = nora.post(f"/api/orders/{order_id}/comments", {"text": "mine?"}, format="json")
    listed = mika.get(f"/api/orders/{order_id}/comments").json()

    assert added.status_code == 201
    assert empty.status_code == 400
    assert others.status_code == 404
    assert [(c["author"], c["text"]) for c in listed["results"]] == [("mika", "Pads on the shelf")]
    assert Event.objects.filter(event_type="order.comment_added").count() == 1


def test_comments__listed_oldest_first_a_page_at_a_time(mechanic):
    """An order's conversation can grow long: it comes a page at a time, as the other lists
    do, oldest first, with the query string checked."""
    mika = client_for("mika", "a-long-enough-password-1")
    order_id = mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]
    url = f"/api/orders/{order_id}/comments"
    for text in ("one", "two", "three"):
        mika.post(url, {"text": text}, format="json")

    first = mika.get(url, {"page_size": 2}).json()
    second = mika.get(first["next"]).json()
    unknown = mika.get(url, {"order": "desc"})
    too_far = mika.get(url, {"page": 3, "page_size": 2})

    assert first["count"] == 3
    assert [c["text"] for c in first["results"]] == ["one", "two"]
    assert [c["text"] for c in second["results"]] == ["three"]
    assert second["next"] is None
    assert unknown.status_code == 400 and list(unknown.json()["detail"]) == ["order"]
    assert too_far.status_code == 404


def test_comments__lines_kept__control_and_bidi_characters_refused(mechanic):
    mika = client_for("mika", "a-long-enough-password-1")
    order_id = mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]
    url = f"/api/orders/{order_id}/comments"

    lines = mika.post(url, {"text": "Pads:\r\n\tfront\n\trear"}, format="json")
    refused = [
        mika.post(url, {"text": text}, format="json")
        for text in ("beep\x07", "ok \u202edone", "\x1b[31mred")
    ]

    assert lines.status_code == 201
    assert [r.status_code for r in refused] == [400, 400, 400]
    assert all("text" in r.json()["detail"] for r in refused)
    assert Event.objects.filter(event_type="order.comment_added").count() == 1


# --- Time tracking ---------------------------------------------------------------------------------


def test_timer__start_stop_one_running_per_mechanic_totals(mechanic):
    mika = client_for("mika", "a-long-enough-password-1")
    first = mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]
    second = mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]

    started = mika.post(f"/api/mechanic/orders/{first}/time/start")
    again = mika.post(f"/api/mechanic/orders/{second}/time/start")
    active = mika.get("/api/mechanic/time/active").json()["entry"]
    stopped = mika.post("/api/mechanic/time/stop")
    nothing = mika.post("/api/mechanic/time/stop")
    totals = mika.get(f"/api/orders/{first}/time").json()

    assert started.status_code == 201
    assert again.status_code == 409
    assert again.json()["running_order_id"] == first
    assert active["order_id"] == first and active["ended_at"] is None
    assert stopped.status_code == 200
    assert nothing.status_code == 409
    assert mika.get("/api/mechanic/time/active").json() == {"entry": None}
    assert len(totals["entries"]) == 1
    assert totals["total_seconds"] == totals["entries"][0]["seconds"] >= 1
    assert [e.event_type for e in Event.objects.filter(event_type__startswith="time.")] == [
        "time.started",
        "time.stopped",
    ]


def test_timer__stops_when_its_order_is_completed_or_cancelled__none_starts_on_one(
    mechanic, staff_user
):
    from orders.models import TimeEntry
    from orders.services import order_status_set

    mika = client_for("mika", "a-long-enough-password-1")
    done, dropped, other = (
        mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"] for _ in range(3)
    )
    mika.post(f"/api/mechanic/orders/{other}/time/start")
    mika.post("/api/mechanic/time/stop")
    mika.post(f"/api/mechanic/orders/{done}/time/start")
    for status in ("in_progress", "ready", "completed"):
        moved = mika.patch(f"/api/mechanic/orders/{done}/status", {"status": status}, format="json")
        assert moved.status_code == 200, moved.json()
    after_completing = mika.get("/api/mechanic/time/active").json()
    mika.post(f"/api/mechanic/orders/{dropped}/time/start")
    order_status_set(order_id=dropped, status="cancelled", actor=staff_user)
    after_cancelling = mika.get("/api/mechanic/time/active").json()
    restart = [mika.post(f"/api/mechanic/orders/{o}/time/start") for o in (done, dropped)]
    stops = [e.payload for e in Event.objects.filter(event_type="time.stopped").order_by("pk")]

    assert after_completing == after_cancelling == {"entry": None}
    assert not TimeEntry.objects.filter(ended_at__isnull=True).exists()
    assert [r.status_code for r in restart] == [409, 409]
    assert "completed or cancelled" in restart[0].json()["detail"]
    assert [(p["order_id"], p["actor"], p.get("reason")) for p in stops] == [
        (other, f"mechanic:{mechanic.pk}", None),
        (done, f"mechanic:{mechanic.pk}", "order_completed"),
        (dropped, "user:stella", "order_cancelled"),
    ]
    assert mika.post(f"/api/mechanic/orders/{other}/time/start").status_code == 201


def test_timer__stops_when_its_mechanic_is_deactivated(mechanic, staff_user):
    from orders.models import TimeEntry
    from orders.services import mechanic_set_active, timer_start

    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    timer_start(order_id=order.pk, mechanic=mechanic)

    mechanic_set_active(mechanic=mechanic, active=False, actor=staff_user)

    (entry,) = TimeEntry.objects.filter(mechanic=mechanic)
    assert entry.ended_at is not None
    stopped = Event.objects.get(event_type="time.stopped").payload
    assert (stopped["entry_id"], stopped["reason"]) == (entry.pk, "mechanic_deactivated")


def test_assign__while_the_mechanic_is_being_deactivated__waits_then_409(
    scratch_database, tmp_path
):
    """Staff assign an order as the mechanic's deactivation commits: the assignment reads the
    mechanic under a lock, so it waits for the deactivation and refuses, rather than giving
    the order to a mechanic who can no longer sign in."""
    database = scratch_database("conclave_assign_race")
    env, staff = mika_and_staff(database, tmp_path)
    answers: dict[str, tuple[int, Any]] = {}

    with gunicorn(env) as base, psycopg.connect(database.dsn) as holder:
        order_id = call("POST", f"{base}/api/orders", body=RUNBOOK_ORDER)[1]["id"]
        (mechanic_id,) = holder.execute(
            "UPDATE mechanic_profiles SET is_active = false RETURNING id"
        ).fetchone()

        def assign() -> None:
            answers["assign"] = call("POST", f"{base}/api/admin/orders/{order_id}/assign",
                                     body={"mechanic_id": mechanic_id}, headers=staff)  # fmt: skip

        late = threading.Thread(target=assign)
        late.start()
        wait_for_lock_waiters(database.dsn, 1, timeout=10)
        holder.commit()
        late.join(timeout=30)
        (assigned,) = holder.execute(
            "SELECT mechanic_id FROM orders WHERE id = %s", (order_id,)
        ).fetchone()

    assert answers["assign"][0] == 409, answers["assign"]
    assert "inactive" in answers["assign"][1]["detail"]
    assert assigned is None


def test_timer__another_mechanics_stops_when_the_order_is_reassigned(
    mechanic, other_mechanic, staff_user
):
    from orders.models import TimeEntry
    from orders.services import order_assign, timer_start

    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    timer_start(order_id=order.pk, mechanic=mechanic)

    order_assign(order_id=order.pk, mechanic_id=other_mechanic.pk, actor=staff_user)

    (entry,) = TimeEntry.objects.filter(order=order)
    assert entry.ended_at is not None
    types = list(Event.objects.order_by("pk").values_list("event_type", flat=True))
    assert types[-2:] == ["order.assigned", "time.stopped"]
    stopped = Event.objects.get(event_type="time.stopped").payload
    assert (stopped["reason"], stopped["actor"]) == ("order_reassigned", "user:stella")


def test_timer__database_allows_one_running_timer_per_mechanic(mechanic):
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    from orders.models import TimeEntry

    order = Order.objects.create(
        mechanic_name="m", vin="TEST123456789", part_type="p", category="c",
        original_or_analog="original", mechanic=mechanic,
    )  # fmt: skip
    TimeEntry.objects.create(order=order, mechanic=mechanic, started_at=timezone.now())

    with pytest.raises(IntegrityError), transaction.atomic():
        TimeEntry.objects.create(order=order, mechanic=mechanic, started_at=timezone.now())


@pytest.mark.parametrize(
    ("start", "end", "status"),
    [
        ("2026-01-05T08:00:00Z", "2026-01-05T10:30:00Z", 201),
        ("2026-01-05T10:00:00Z", "2026-01-05T09:00:00Z", 400),
        ("2026-01-05T08:00:00Z", "2026-01-06T09:00:00Z", 400),
        ("2026-01-05T08:00:00Z", "2999-01-01T00:00:00Z", 400),
        ("0001-01-01T00:00:00Z", "0001-01-01T02:30:00Z", 400),
        ("0001-01-01T00:00:00-12:00", "0001-01-01T02:30:00-12:00", 400),
    ],
)
def test_manual_entry__validated(mechanic, start, end, status):
    mika = client_for("mika", "a-long-enough-password-1")
    order_id = mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]

    response = mika.post(
        f"/api/orders/{order_id}/time",
        {"started_at": start, "ended_at": end, "notes": "brakes bled"},
        format="json",
    )

    assert response.status_code == status
    if status == 201:
        assert response.json()["seconds"] == 9000
        assert mika.get(f"/api/orders/{order_id}/time").json()["total_seconds"] == 9000


def test_manual_entry__overlapping_the_mechanics_own_time__409_naming_it(mechanic, other_mechanic):
    mika = client_for("mika", "a-long-enough-password-1")
    nora = client_for("nora", "a-long-enough-password-2")
    first = mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]
    second = mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]
    noras = nora.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]

    def add(client, order_id, start, end):
        return client.post(
            f"/api/orders/{order_id}/time",
            {"started_at": f"2026-01-05T{start}:00Z", "ended_at": f"2026-01-05T{end}:00Z"},
            format="json",
        )

    kept = add(mika, first, "08:00", "10:00")
    inside = add(mika, first, "08:30", "09:30")
    other_order = add(mika, second, "09:59", "11:00")
    covering = add(mika, second, "07:00", "12:00")
    before = add(mika, second, "07:00", "08:00")
    after = add(mika, second, "10:00", "11:00")
    someone_else = add(nora, noras, "08:00", "10:00")
    mika.post(f"/api/mechanic/orders/{first}/time/start")
    during_timer = mika.post(
        f"/api/orders/{second}/time",
        {
            "started_at": (timezone.now() - timedelta(hours=1)).isoformat(),
            "ended_at": timezone.now().isoformat(),
        },
        format="json",
    )

    assert kept.status_code == 201
    assert [r.status_code for r in (inside, other_order, covering)] == [409, 409, 409]
    assert inside.json()["error"] == "conflict"
    assert inside.json()["overlapping_entry_id"] == kept.json()["id"]
    assert inside.json()["overlapping_order_id"] == first
    assert f"order {first}" in inside.json()["detail"]
    assert "08:00" in inside.json()["detail"] and "10:00" in inside.json()["detail"]
    assert other_order.json()["overlapping_order_id"] == first
    assert [r.status_code for r in (before, after, someone_else)] == [201, 201, 201]
    assert during_timer.status_code == 409
    assert during_timer.json()["overlapping_order_id"] == first
    assert Event.objects.filter(event_type="time.added").count() == 4


def test_manual_entries__at_once__the_second_waits_for_the_mechanic_then_sees_the_first(
    scratch_database, tmp_path
):
    """Two overlapping manual entries at once cannot both be kept: the check and the insert
    run under a lock on the mechanic. The test holds that lock, lets a request wait on it,
    writes an entry meanwhile, and the request, let go, finds it."""
    database = scratch_database("conclave_time_overlap")
    env = served_env(database, tmp_path)
    made = run_manage("create_mechanic", "mika", "--password", MECHANIC_PASSWORD, env=env)
    assert made.returncode == 0, made.stderr
    answers: dict[str, tuple[int, Any]] = {}

    with gunicorn(env) as base, psycopg.connect(database.dsn) as holder:
        login = {"username": "mika", "password": MECHANIC_PASSWORD}
        token = call("POST", f"{base}/api/mechanic/login", body=login)[1]["token"]
        headers = {"Authorization": f"Bearer {token}"}
        order_id = call("POST", f"{base}/api/orders", body=RUNBOOK_ORDER, headers=headers)[1]["id"]
        (mechanic_id,) = holder.execute("SELECT id FROM mechanic_profiles FOR UPDATE").fetchone()

        def post() -> None:
            entry = {"started_at": "2026-01-05T08:30:00Z", "ended_at": "2026-01-05T09:30:00Z"}
            answers["late"] = call(
                "POST", f"{base}/api/orders/{order_id}/time", body=entry, headers=headers
            )

        late = threading.Thread(target=post)
        late.start()
        wait_for_lock_waiters(database.dsn, 1)
        holder.execute(
            "INSERT INTO order_time_entries (order_id, mechanic_id, started_at, ended_at,"
            " manual, notes, created_at) VALUES (%s, %s, '2026-01-05T08:00:00Z',"
            " '2026-01-05T10:00:00Z', true, '', now())",
            (order_id, mechanic_id),
        )
        holder.commit()
        late.join(timeout=30)
        (entries,) = holder.execute("SELECT count(*) FROM order_time_entries").fetchone()

    assert answers["late"][0] == 409, answers["late"]
    assert entries == 1


def test_time__other_mechanics_order__404(mechanic, other_mechanic):
    mika = client_for("mika", "a-long-enough-password-1")
    nora = client_for("nora", "a-long-enough-password-2")
    order_id = mika.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]

    start = nora.post(f"/api/mechanic/orders/{order_id}/time/start")
    manual = nora.post(
        f"/api/orders/{order_id}/time",
        {"started_at": "2026-01-05T08:00:00Z", "ended_at": "2026-01-05T09:00:00Z"},
        format="json",
    )
    read = nora.get(f"/api/orders/{order_id}/time")

    assert (start.status_code, manual.status_code, read.status_code) == (404, 404, 404)


def test_staff_mechanics_list__whom_to_assign_with_their_open_orders(
    mechanic, other_mechanic, staff_client, staff_user
):
    from orders.services import mechanic_create, mechanic_set_active, order_status_set

    twin = mechanic_create(username="mika2", password="a-long-enough-password-7",
                           display_name="mika")  # fmt: skip
    mine = [order_create(**RUNBOOK_ORDER, created_by=mechanic.user) for _ in range(3)]
    order_status_set(order_id=mine[0].pk, status="cancelled", actor=staff_user)
    mechanic_set_active(mechanic=other_mechanic, active=False, actor=staff_user)

    everyone = staff_client.get("/api/admin/mechanics").json()
    active = staff_client.get("/api/admin/mechanics", {"active": "true"}).json()
    bad = staff_client.get("/api/admin/mechanics", {"active": "maybe"})
    unknown = staff_client.get("/api/admin/mechanics", {"is_active": "true"})

    assert [(m["username"], m["display_name"], m["active"], m["open_orders"])
            for m in everyone["results"]] == [
        ("mika", "mika", True, 2), ("mika2", "mika", True, 0), ("nora", "nora", False, 0),
    ]  # fmt: skip
    assert everyone["count"] == 3 and set(everyone["results"][0]) == {
        "id", "username", "display_name", "phone", "language", "active", "telegram_linked",
        "open_orders",
    }  # fmt: skip
    assert [m["id"] for m in active["results"]] == [mechanic.pk, twin.pk]
    assert (bad.status_code, unknown.status_code) == (400, 400)


def test_staff_order_list__assigned_or_not__the_orders_waiting_for_a_mechanic(
    mechanic, staff_client, api_client
):
    theirs = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    waiting = [api_client.post("/api/orders", RUNBOOK_ORDER, format="json").json()["id"]
               for _ in range(2)]  # fmt: skip

    unassigned = staff_client.get("/api/orders", {"assigned": "false"}).json()
    assigned = staff_client.get("/api/orders", {"assigned": "true"}).json()
    contradiction = staff_client.get(
        "/api/orders", {"assigned": "false", "mechanic_id": mechanic.pk}
    )

    assert sorted(o["id"] for o in unassigned["results"]) == sorted(waiting)
    assert [o["id"] for o in assigned["results"]] == [theirs.pk]
    assert contradiction.status_code == 400
    assert "mechanic_id" in contradiction.json()["detail"]


@pytest.mark.parametrize("url", ["/api/orders", "/api/admin/mechanics"])
@pytest.mark.parametrize(
    ("query", "field"),
    [({"page": "0"}, "page"), ({"page_size": "0"}, "page_size"),
     ({"page_size": "201"}, "page_size"), ({"page_size": "2", "page": "x"}, "page")],
)  # fmt: skip
def test_staff_lists__page_and_page_size_checked_alike(staff_client, mechanic, url, query, field):
    response = staff_client.get(url, query)

    assert response.status_code == 400
    assert list(response.json()["detail"]) == [field]
