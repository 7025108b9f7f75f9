"""A mechanic's profile, password, figures and time history; staff's figures; the order
list's date and search filters."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from events.models import Event
from orders.models import MechanicProfile, Order, OrderStatus, TimeEntry
from orders.selectors import workshop_today_bounds
from orders.services import order_create, order_status_change, time_entry_add, timer_start
from tests.workshop import MECHANIC_PASSWORD, RUNBOOK_ORDER, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def mika(mechanic):
    return client_for("mika", MECHANIC_PASSWORD)


def new_order(mechanic, **changes) -> Order:
    return order_create(**{**RUNBOOK_ORDER, **changes}, created_by=mechanic.user)


# --- Profile and password ---------------------------------------------------------------------------


def test_profile__read_and_change_phone_and_language__one_event(mika, mechanic):
    before = mika.get("/api/mechanic/profile").json()

    changed = mika.patch(
        "/api/mechanic/profile", {"phone": "+972 (50) 123-4567", "language": "he"}, format="json"
    )
    unchanged = mika.patch("/api/mechanic/profile", {"language": "he"}, format="json")

    assert (before["username"], before["phone"], before["language"]) == ("mika", "", "en")
    assert changed.status_code == 200
    assert (changed.json()["phone"], changed.json()["language"]) == ("+972 (50) 123-4567", "he")
    assert unchanged.status_code == 200
    events = Event.objects.filter(event_type="mechanic.profile_changed")
    assert [e.payload["fields"] for e in events] == [["language", "phone"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "call me"}, "phone"),
        ({"phone": "12"}, "phone"),
        ({"language": "fr"}, "language"),
        ({"display_name": ""}, "display_name"),
        ({"telegram_chat_id": 1}, "telegram_chat_id"),
    ],
)
def test_profile__invalid__400_unchanged(mika, mechanic, body, field):
    response = mika.patch("/api/mechanic/profile", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["detail"]
    mechanic.refresh_from_db()
    assert (mechanic.phone, mechanic.language) == ("", "en")


def test_profile__staff_without_mechanic_profile__403(staff_client):
    assert staff_client.get("/api/mechanic/profile").status_code == 403


def test_password_change__old_token_revoked_new_password_works_nothing_secret_logged(
    mika, mechanic
):
    new_password = "an-entirely-new-passphrase-7"

    response = mika.post(
        "/api/mechanic/password",
        {"current_password": MECHANIC_PASSWORD, "new_password": new_password},
        format="json",
    )

    assert response.status_code == 200
    assert mika.get("/api/mechanic/profile").status_code == 401  # the old token is gone
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert fresh.get("/api/mechanic/profile").status_code == 200
    assert client_for("mika", new_password).get("/api/mechanic/profile").status_code == 200
    logged = Event.objects.get(event_type="mechanic.password_changed").payload
    assert new_password not in str(logged) and MECHANIC_PASSWORD not in str(logged)


@pytest.mark.parametrize(
    ("current", "new", "field"),
    [
        ("not-my-password", "an-entirely-new-passphrase-7", "current_password"),
        (MECHANIC_PASSWORD, "short", "new_password"),
        (MECHANIC_PASSWORD, "12345678901234", "new_password"),  # numeric only
        (MECHANIC_PASSWORD, MECHANIC_PASSWORD, "new_password"),
    ],
)
def test_password_change__refused__400_password_unchanged(mika, mechanic, current, new, field):
    response = mika.post(
        "/api/mechanic/password",
        {"current_password": current, "new_password": new},
        format="json",
    )

    assert response.status_code == 400
    assert field in response.json()["detail"]
    mechanic.user.refresh_from_db()
    assert mechanic.user.check_password(MECHANIC_PASSWORD)
    assert mika.get("/api/mechanic/profile").status_code == 200


# --- Figures -----------------------------------------------------------------------------------------


def test_mechanic_stats__active_completed_today_time_today_and_all_time(
    mika, mechanic, other_mechanic
):
    done, working, _fresh = new_order(mechanic), new_order(mechanic), new_order(mechanic)
    waiting, dropped = new_order(mechanic), new_order(mechanic)
    new_order(other_mechanic)  # not theirs
    for status in (OrderStatus.IN_PROGRESS, OrderStatus.READY, OrderStatus.COMPLETED):
        order_status_change(order_id=done.pk, status=status, mechanic=mechanic)
    order_status_change(order_id=working.pk, status=OrderStatus.IN_PROGRESS, mechanic=mechanic)
    for status in (OrderStatus.IN_PROGRESS, OrderStatus.READY):  # not finished: active
        order_status_change(order_id=waiting.pk, status=status, mechanic=mechanic)
    order_status_change(order_id=dropped.pk, status=OrderStatus.CANCELLED, mechanic=mechanic)
    now = timezone.now()
    time_entry_add(
        order_id=done.pk,
        mechanic=mechanic,
        started_at=now - timedelta(minutes=30),
        ended_at=now - timedelta(minutes=10),
    )
    time_entry_add(
        order_id=done.pk,
        mechanic=mechanic,
        started_at=now - timedelta(days=3, hours=1),
        ended_at=now - timedelta(days=3),
    )

    stats = mika.get("/api/mechanic/stats").json()

    assert stats["active_orders"] == 3  # new, in progress and ready
    assert stats["completed_today"] == 1
    start, _ = workshop_today_bounds()
    assert stats["time_today_seconds"] == (20 * 60 if now - timedelta(minutes=30) >= start else 0)
    assert stats["all_time"] == {"orders": 5, "completed": 1, "time_seconds": 20 * 60 + 3600}
    assert stats["by_status"]["in_progress"] == 1


def test_staff_stats__by_status_and_today__mechanic_403(mika, mechanic, staff_client):
    first, _second = new_order(mechanic), new_order(mechanic)
    order_status_change(order_id=first.pk, status=OrderStatus.CANCELLED, mechanic=mechanic)

    stats = staff_client.get("/api/admin/orders/stats").json()

    assert stats["total"] == 2
    assert stats["created_today"] == 2
    assert stats["by_status"] == {
        "new": 1,
        "in_progress": 0,
        "ready": 0,
        "completed": 0,
        "cancelled": 1,
    }
    assert mika.get("/api/admin/orders/stats").status_code == 403


# --- Time history --------------------------------------------------------------------------------------


def test_time_history__periods_group_by_day_with_totals_only_own(mika, mechanic, other_mechanic):
    order = new_order(mechanic)
    other = new_order(other_mechanic)
    today = timezone.localdate()
    noon = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    if noon + timedelta(minutes=90) > timezone.now():
        # Every entry below must have ended: before 13:30, use yesterday's and the day before's.
        noon -= timedelta(days=1)
    for days_ago, after_noon, minutes in ((0, 0, 30), (0, 30, 15), (1, 0, 60), (40, 0, 90)):
        start = noon - timedelta(days=days_ago) + timedelta(minutes=after_noon)
        time_entry_add(
            order_id=order.pk,
            mechanic=mechanic,
            started_at=start,
            ended_at=start + timedelta(minutes=minutes),
        )
    time_entry_add(
        order_id=other.pk,
        mechanic=other_mechanic,
        started_at=noon,
        ended_at=noon + timedelta(minutes=5),
    )
    anchor = timezone.localdate(noon)

    custom = mika.get(
        "/api/mechanic/time",
        {"period": "custom", "from": str(anchor - timedelta(days=1)), "to": str(anchor)},
    ).json()
    month_back = mika.get(
        "/api/mechanic/time",
        {"period": "custom", "from": str(anchor - timedelta(days=45)), "to": str(anchor)},
    ).json()
    todays = mika.get("/api/mechanic/time", {"period": "today"}).json()

    assert [d["date"] for d in custom["days"]] == [str(anchor), str(anchor - timedelta(days=1))]
    assert [d["total_seconds"] for d in custom["days"]] == [45 * 60, 60 * 60]
    assert custom["total_seconds"] == 105 * 60
    assert [len(d["entries"]) for d in custom["days"]] == [2, 1]
    assert month_back["total_seconds"] == (105 + 90) * 60
    assert todays["from"] == todays["to"] == str(today)
    expected_today = 45 * 60 if anchor == today else 0
    assert todays["total_seconds"] == expected_today


def test_time_history__running_timer_counts_so_far(mika, mechanic):
    order = new_order(mechanic)
    entry = timer_start(order_id=order.pk, mechanic=mechanic)
    TimeEntry.objects.filter(pk=entry.pk).update(started_at=timezone.now() - timedelta(minutes=5))
    today = timezone.localdate()

    history = mika.get(
        "/api/mechanic/time",
        {"period": "custom", "from": str(today - timedelta(days=1)), "to": str(today)},
    ).json()

    assert history["days"][0]["entries"][0]["ended_at"] is None
    assert 300 <= history["total_seconds"] < 400


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "fortnight"}, "period"),
        ({"period": "custom", "from": "2026-01-01"}, "from"),
        ({"period": "custom", "from": "2026-02-01", "to": "2026-01-01"}, "to"),
        ({"period": "custom", "from": "2024-01-01", "to": "2026-01-01"}, "to"),
        ({"period": "custom", "from": "yesterday", "to": "2026-01-01"}, "from"),
        ({"period": "custom", "from": "9999-12-30", "to": "9999-12-31"}, "to"),
        ({"period": "custom", "from": "0001-01-01", "to": "0001-01-02"}, "from"),
        ({"when": "today"}, "when"),
        ({"period": "week", "from": "2026-01-01"}, "from"),  # not the week: the days asked for?
        ({"to": "2026-01-01"}, "to"),
    ],
)
def test_time_history__bad_period__400(mika, mechanic, params, field):
    page = Client()
    page.force_login(mechanic.user)

    response = mika.get("/api/mechanic/time", params)
    shown = page.get("/mechanic/time", params)

    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert shown.status_code == 200  # the page says what is wrong, or shows today


# --- The order list's filters ----------------------------------------------------------------------------


def test_order_list__date_range_and_search(
    staff_client, mechanic, django_capture_on_commit_callbacks
):
    old = new_order(mechanic, vin="OLDVIN1234")
    recent = new_order(mechanic, vin="NEWVIN5678")
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    today = timezone.localdate()

    def ids(**params) -> list[int]:
        response = staff_client.get("/api/orders", params)
        assert response.status_code == 200, response.json()
        return [o["id"] for o in response.json()["results"]]

    assert ids(created_from=str(today)) == [recent.pk]
    assert ids(created_to=str(today - timedelta(days=5))) == [old.pk]
    assert ids(created_from=str(today - timedelta(days=10)), created_to=str(today)) == [
        recent.pk,
        old.pk,
    ]
    assert ids(search="oldvin") == [old.pk]
    bad = staff_client.get(
        "/api/orders", {"created_from": str(today), "created_to": str(today - timedelta(days=1))}
    )
    assert bad.status_code == 400
    assert "created_to" in bad.json()["detail"]
    for name, day in (("created_to", "9999-12-31"), ("created_from", "0001-01-01")):
        beyond = staff_client.get("/api/orders", {name: day})
        assert beyond.status_code == 400, name
        assert beyond.json()["detail"] == {name: ["A day from 2000-01-01 to 2999-12-31."]}


def test_order_list__search_car_number_only_while_flag_on(
    staff_client, mechanic, django_capture_on_commit_callbacks
):
    from tests.workshop import flag_on

    flag_on("ENABLE_CAR_NUMBER", django_capture_on_commit_callbacks)
    order = new_order(mechanic, car_number="77-123-45")
    found_on = staff_client.get("/api/orders", {"search": "123-45"}).json()["results"]
    from flags.services import flag_set

    with django_capture_on_commit_callbacks(execute=True):
        flag_set(name="ENABLE_CAR_NUMBER", enabled=False, actor="test")
    found_off = staff_client.get("/api/orders", {"search": "123-45"}).json()["results"]

    assert [o["id"] for o in found_on] == [order.pk]
    assert found_off == []


def test_inactive_mechanic__token_no_longer_opens_mechanic_endpoints(mika, mechanic):
    MechanicProfile.objects.filter(pk=mechanic.pk).update(is_active=False)

    assert mika.get("/api/mechanic/profile").status_code == 403
