"""Helpers for the workshop's tests: the runbook's order, a mechanic's client, a flag switch,
a span of time worked today."""

import time
from datetime import UTC, datetime, timedelta

from rest_framework.test import APIClient

from flags.services import flag_set

RUNBOOK_ORDER = {
    "mechanic_name": "Test Mechanic",
    "vin": "TEST123456789",
    "car_number": "12-345-67",
    "part_type": "brake_pads",
    "category": "brakes",
    "original_or_analog": "original",
}
MECHANIC_PASSWORD = "a-long-enough-password-1"
OTHER_MECHANIC_PASSWORD = "a-long-enough-password-2"


def flag_on(name: str, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        flag_set(name=name, enabled=True, actor="test")


def client_for(username: str, password: str) -> APIClient:
    """A client holding the mechanic's token from `POST /api/mechanic/login`."""
    client = APIClient()
    token = client.post(
        "/api/mechanic/login", {"username": username, "password": password}, format="json"
    ).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def span_today(minutes: int, ending_by: datetime | None = None) -> tuple[datetime, datetime]:
    """Up to `minutes` that started today (UTC, the test settings' TIME_ZONE) and ended by now,
    whatever the hour: a time entry counts on the day it starts, and none may end in the
    future (a minute after midnight, the span is that minute). `ending_by` (today) ends it
    earlier: before the mechanic's other time, which a manual entry may not overlap."""
    now = datetime.now(UTC).replace(microsecond=0)
    if ending_by is not None:
        now = min(now, ending_by.astimezone(UTC).replace(microsecond=0))
    midnight = now.replace(hour=0, minute=0, second=0)
    if now - midnight < timedelta(seconds=2):
        time.sleep(2)
        now += timedelta(seconds=2)
    started = max(now - timedelta(minutes=2 * minutes), midnight)
    return started, min(started + timedelta(minutes=minutes), now)
