"""The workshop's time zone (TIME_ZONE): its days and its clock on the pages and in the admin;
UTC in the JSON APIs and the event log."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from orders.models import Order
from orders.services import order_create, time_entry_add
from tests.workshop import MECHANIC_PASSWORD, RUNBOOK_ORDER, client_for

pytestmark = pytest.mark.django_db


def zone_on_another_day() -> ZoneInfo:
    """UTC+14 or UTC-12, whichever has a date other than UTC's right now, with at least an
    hour and a half of its day gone and ten minutes left (one of them always has)."""
    now = timezone.now()
    for name in ("Etc/GMT-14", "Etc/GMT+12"):  # the Etc names turn the sign round
        local = now.astimezone(ZoneInfo(name))
        gone = local - local.replace(hour=0, minute=0, second=0, microsecond=0)
        if local.date() != now.date() and timedelta(minutes=90) <= gone <= timedelta(
            hours=23, minutes=50
        ):
            return ZoneInfo(name)
    raise AssertionError(f"neither zone is on another day at {now}")


def test_days__the_workshops__history_stats_page_and_admin(settings, mechanic, staff_user):
    """Half an hour before the workshop's midnight is yesterday, half an hour after is today,
    whichever UTC day each falls on."""
    zone = zone_on_another_day()
    settings.TIME_ZONE = zone.key
    local_today = timezone.now().astimezone(zone).date()
    midnight = datetime.combine(local_today, time.min, tzinfo=zone)
    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    for start, notes in ((midnight - timedelta(minutes=60), "late yesterday"),
                         (midnight + timedelta(minutes=30), "early today")):  # fmt: skip
        time_entry_add(
            order_id=order.pk, mechanic=mechanic, started_at=start,
            ended_at=start + timedelta(minutes=30), notes=notes,
        )  # fmt: skip
    yesterdays, todays = (order_create(**RUNBOOK_ORDER, created_by=None) for _ in range(2))
    Order.objects.filter(pk=yesterdays.pk).update(created_at=midnight - timedelta(minutes=30))
    Order.objects.filter(pk=todays.pk).update(created_at=midnight + timedelta(minutes=30))
    Order.objects.filter(pk=order.pk).update(created_at=midnight + timedelta(minutes=40))
    mika = client_for("mika", MECHANIC_PASSWORD)
    page = Client()
    page.force_login(mechanic.user)
    admin = Client()
    admin.force_login(staff_user)

    today = mika.get("/api/mechanic/time", {"period": "today"}).json()
    yesterday = mika.get("/api/mechanic/time", {"period": "yesterday"}).json()
    stats = mika.get("/api/mechanic/stats").json()
    staff_stats = admin.get("/api/admin/orders/stats").json()
    todays_page = page.get("/mechanic/time?period=today").content.decode()
    dashboard = admin.get("/admin/").content.decode()

    def days(history):
        return [(d["date"], [e["notes"] for e in d["entries"]]) for d in history["days"]]

    assert today["from"] == today["to"] == str(local_today)
    assert days(today) == [(str(local_today), ["early today"])]
    assert days(yesterday) == [(str(local_today - timedelta(days=1)), ["late yesterday"])]
    assert stats["time_today_seconds"] == 30 * 60
    assert staff_stats["created_today"] == 2
    assert "early today" in todays_page and "late yesterday" not in todays_page
    assert "00:30 – 01:00" in todays_page  # the workshop's clock
    assert "Orders today (2)" in dashboard


def test_clock__pages_show_the_workshops_the_api_speaks_utc(settings, mechanic):
    settings.TIME_ZONE = "Asia/Jerusalem"  # UTC+2 in January
    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    mika = client_for("mika", MECHANIC_PASSWORD)
    page = Client()
    page.force_login(mechanic.user)

    offset = mika.post(
        f"/api/orders/{order.pk}/time",
        {"started_at": "2026-01-05T10:00:00+02:00", "ended_at": "2026-01-05T11:00:00+02:00"},
        format="json",
    )
    naive = mika.post(
        f"/api/orders/{order.pk}/time",
        {"started_at": "2026-01-06T08:00:00", "ended_at": "2026-01-06T09:00:00"},
        format="json",
    )
    overlapping = mika.post(
        f"/api/orders/{order.pk}/time",
        {"started_at": "2026-01-05T08:30:00Z", "ended_at": "2026-01-05T08:45:00Z"},
        format="json",
    )
    listed = mika.get(f"/api/orders/{order.pk}/time").json()["entries"]
    shown = page.get(f"/mechanic/orders/{order.pk}").content.decode()
    keys = Client().get("/v1/observer/keys").json()

    assert offset.json()["started_at"] == "2026-01-05T08:00:00Z"
    assert naive.json()["started_at"] == "2026-01-06T08:00:00Z"  # no offset: UTC
    assert [e["started_at"] for e in listed] == ["2026-01-05T08:00:00Z", "2026-01-06T08:00:00Z"]
    assert mika.get(f"/api/orders/{order.pk}").json()["created_at"].endswith("Z")
    assert "2026-01-05 10:00 – 11:00" in shown and "2026-01-06 10:00 – 11:00" in shown
    assert overlapping.status_code == 409
    assert "from 2026-01-05 10:00 to 2026-01-05 11:00" in overlapping.json()["detail"]
    assert all(key["active_from"].endswith("Z") for key in keys["keys"])


@pytest.mark.parametrize(
    ("today", "starts_on", "first"),
    [
        ("2026-12-03", "monday", "2026-11-30"),  # a Thursday
        ("2026-12-03", "sunday", "2026-11-29"),
        ("2026-12-06", "sunday", "2026-12-06"),  # a Sunday: its own week's first day
        ("2026-12-06", "monday", "2026-11-30"),
        ("2026-12-04", "saturday", "2026-11-28"),  # a Friday
        ("2026-12-05", "saturday", "2026-12-05"),
    ],
)
def test_week__starts_on_the_workshops_first_day(settings, today, starts_on, first):
    from datetime import date

    from orders.selectors import time_period

    settings.WEEK_STARTS_ON = starts_on
    day = date.fromisoformat(today)

    assert time_period("week", None, None, today=day) == (date.fromisoformat(first), day)
    assert time_period("month", None, None, today=day) == (day.replace(day=1), day)
    assert time_period("yesterday", None, None, today=day) == (day - timedelta(days=1),) * 2
