"""Every write of the workshop's and the flags' API is an event: each call that changes
something appends exactly one event, of its type, in its transaction; a refused call appends
none. The writes are read from the URL conf (`api/…`, every unsafe method), so a new write
that this walk does not make fails `test_walk__makes_every_write_of_the_api`."""

import io
import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Max
from django.test import Client
from django.urls import resolve
from PIL import Image

from events.models import Event
from tests.personas import FLAG_MANAGER, MECHANIC_A, STAFF_MEMBER, Workshop, build_workshop
from tests.test_authorization import api_routes

pytestmark = pytest.mark.django_db

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
# Writes that are not state changes of the workshop, with why.
NOT_EVENTS = {
    # A sign-in: no state of the workshop changes (its failures lock the name out: a cache).
    ("POST", "api/mechanic/login"),
    # The bot's webhook: each update's order is made by the services walked here (test_bot).
    ("POST", "api/telegram/webhook"),
}


class Walk:
    """Calls the API as the workshop's personas, noting each route it wrote to and the events
    each call appended."""

    def __init__(self, workshop: Workshop) -> None:
        self.workshop = workshop
        self.made: set[tuple[str, str]] = set()

    def __call__(
        self, persona: str, method: str, path: str, body: dict | None = None, *, photo=None
    ) -> tuple[int, Any, list[str]]:
        client = Client(headers=self.workshop.headers(persona))
        last = Event.objects.aggregate(last=Max("sequence"))["last"] or 0
        if photo is not None:
            response = client.post(path, {"photo": photo})
        else:
            response = client.generic(
                method, path, json.dumps(body or {}), content_type="application/json"
            )
        if 200 <= response.status_code < 300:
            self.made.add((method, resolve(path).route))
        appended = list(
            Event.objects.filter(sequence__gt=last)
            .order_by("sequence")
            .values_list("event_type", flat=True)
        )
        data = response.json() if response.content else None
        return response.status_code, data, appended


def _png() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(buffer, "PNG")
    return SimpleUploadedFile("p.png", buffer.getvalue(), content_type="image/png")


def _walk(workshop: Workshop) -> tuple[Walk, list[tuple[str, int, list[str], str]]]:
    """Every write once, in an order that makes each possible; (what, status, events,
    expected event type) for each."""
    walk = Walk(workshop)
    order = workshop.order_a.pk
    seen: list[tuple[str, int, list[str], str]] = []

    def write(what: str, expected: str, persona: str, method: str, path: str, body=None, **kw):
        status, data, appended = walk(persona, method, path, body, **kw)
        seen.append((what, status, appended, expected))
        return data or {}

    mika, staff, flags = MECHANIC_A, STAFF_MEMBER, FLAG_MANAGER
    write("order made", "order.created", mika, "POST", "/api/orders",
          {"mechanic_name": "Mika", "vin": "TEST123456789", "part_type": "Pads",
           "category": "brakes", "original_or_analog": "original"})  # fmt: skip
    write("order corrected", "order.updated", mika, "PATCH", f"/api/orders/{order}",
          {"vin": "TEST123456780"})  # fmt: skip
    write("comment", "order.comment_added", mika, "POST", f"/api/orders/{order}/comments",
          {"text": "Pads in stock."})  # fmt: skip
    item = write("part added", "order.item_added", mika, "POST", f"/api/orders/{order}/items",
                 {"name": "Clip", "unit_price": "0.10"})  # fmt: skip
    write("part taken off", "order.item_removed", mika, "DELETE",
          f"/api/orders/{order}/items/{item['id']}")  # fmt: skip
    work = write("labour added", "order.work_added", mika, "POST", f"/api/orders/{order}/works",
                 {"name": "Fit", "price": "30.00"})  # fmt: skip
    write("labour taken off", "order.work_removed", mika, "DELETE",
          f"/api/orders/{order}/works/{work['id']}")  # fmt: skip
    photo = write("photo added", "order.photo_added", mika, "POST",
                  f"/api/orders/{order}/photos", photo=_png())  # fmt: skip
    write("photo taken off", "order.photo_removed", mika, "DELETE",
          f"/api/orders/{order}/photos/{photo['id']}")  # fmt: skip
    write("time by hand", "time.added", mika, "POST", f"/api/orders/{order}/time",
          {"started_at": "2026-01-05T08:00:00Z", "ended_at": "2026-01-05T09:00:00Z"})  # fmt: skip
    write("timer started", "time.started", mika, "POST",
          f"/api/mechanic/orders/{order}/time/start")  # fmt: skip
    write("timer stopped", "time.stopped", mika, "POST", "/api/mechanic/time/stop")
    write("status by the mechanic", "order.status_changed", mika, "PATCH",
          f"/api/mechanic/orders/{order}/status", {"status": "in_progress"})  # fmt: skip
    write("status by staff", "order.status_changed", staff, "PATCH",
          f"/api/admin/orders/{order}/status", {"status": "ready"})  # fmt: skip
    write("assigned", "order.assigned", staff, "POST",
          f"/api/admin/orders/{workshop.order_b.pk}/assign",
          {"mechanic_id": workshop.order_a.mechanic_id})  # fmt: skip
    write("profile", "mechanic.profile_changed", mika, "PATCH", "/api/mechanic/profile",
          {"phone": "+972 50-123-4567"})  # fmt: skip
    write("password", "mechanic.password_changed", mika, "POST", "/api/mechanic/password",
          {"current_password": "a-long-enough-password-1",
           "new_password": "another-long-password-9"})  # fmt: skip
    category = write("category made", "catalog.category_created", staff, "POST",
                     "/api/admin/categories", {"name_en": "Filters"})  # fmt: skip
    write("category changed", "catalog.category_changed", staff, "PATCH",
          f"/api/admin/categories/{category['id']}", {"icon": "F"})  # fmt: skip
    write("categories reordered", "catalog.categories_reordered", staff, "POST",
          "/api/admin/categories/reorder",
          {"ids": [category["id"], workshop.category.pk]})  # fmt: skip
    part = write("part made", "catalog.part_created", staff, "POST", "/api/admin/parts",
                 {"category_id": category["id"], "name_en": "Oil filter",
                  "price": "12.00"})  # fmt: skip
    write("part changed", "catalog.part_changed", staff, "PATCH",
          f"/api/admin/parts/{part['id']}", {"price": "13.00"})  # fmt: skip
    write("part deleted", "catalog.part_deleted", staff, "DELETE",
          f"/api/admin/parts/{part['id']}")  # fmt: skip
    write("category deleted", "catalog.category_deleted", staff, "DELETE",
          f"/api/admin/categories/{category['id']}")  # fmt: skip
    write("flag", "flag.changed", flags, "PUT", "/api/admin/feature-flags/ENABLE_CAR_NUMBER",
          {"enabled": True})  # fmt: skip
    # One event per flag it switches off: here the one flag on.
    write("kill switch", "flag.changed", flags, "POST", "/api/admin/feature-flags/kill-switch")
    return walk, seen


def test_walk__every_write_one_event_of_its_type(system_keys):
    _, seen = _walk(build_workshop())

    assert [(what, status // 100, appended) for what, status, appended, _ in seen] == [
        (what, 2, [expected]) for what, _, _, expected in seen
    ]


def test_walk__makes_every_write_of_the_api(system_keys):
    walk, _ = _walk(build_workshop())

    writes = {
        (method, route)
        for method, route in api_routes()
        if method in UNSAFE and route.startswith("api/")
    }
    assert sorted(writes - NOT_EVENTS - walk.made) == [], "writes this walk does not make"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/orders", {"vin": "TEST123456789"}),
        ("PATCH", "/api/orders/{order}", {"vin": "AB-12"}),
        ("PATCH", "/api/mechanic/orders/{order}/status", {"status": "completed"}),
        ("POST", "/api/orders/{order}/items", {"name": "Clip"}),
        ("POST", "/api/orders/{order}/time", {"started_at": "2026-01-05T09:00:00Z",
                                              "ended_at": "2026-01-05T08:00:00Z"}),
    ],
)  # fmt: skip
def test_refused_write__no_event(system_keys, method, path, body):
    workshop = build_workshop()
    walk = Walk(workshop)

    status, _, appended = walk(MECHANIC_A, method, path.format(order=workshop.order_a.pk), body)

    assert 400 <= status < 500
    assert appended == []
