"""The workshop's ids in the quick start: SQLite cannot compare a number beyond 64 bits
(Python's OverflowError), where PostgreSQL finds nothing; either way such an id names no row."""

import pytest
from django.db import connection

from orders.models import Category, Order, Part
from tests.workshop import flag_on

pytestmark = [pytest.mark.quickstart, pytest.mark.django_db]

BEYOND = str(2**64)


@pytest.fixture
def pads(system_keys, django_capture_on_commit_callbacks):
    flag_on("ENABLE_PART_CATEGORIES", django_capture_on_commit_callbacks)
    brakes = Category.objects.create(name_en="Brakes")
    return Part.objects.create(category=brakes, name_en="Brake pads", price="120.50")


def test_sqlite__an_id_beyond_64_bits__400_naming_the_field(staff_client, pads):
    assert connection.vendor == "sqlite"

    orders = staff_client.get(f"/api/orders?mechanic_id={BEYOND}")
    parts = staff_client.get(f"/api/parts?category_id={BEYOND}")
    part = staff_client.post(
        "/api/admin/parts",
        {"category_id": int(BEYOND), "name_en": "Discs", "price": "80.00"},
        format="json",
    )

    assert (orders.status_code, orders.json()["detail"].keys()) == (400, {"mechanic_id"})
    assert (parts.status_code, parts.json()["detail"].keys()) == (400, {"category_id"})
    assert (part.status_code, part.json()["detail"].keys()) == (400, {"category_id"})
    assert Part.objects.count() == 1


def test_sqlite__new_order_page__ids_beyond_64_bits_name_no_part(mechanic, pads):
    from tests.test_mechanic_ui import signed_in

    response = signed_in(mechanic).post(
        "/mechanic/orders/new",
        {
            "category_id": BEYOND, "part_ids": [BEYOND, str(pads.pk)], "vin": "TEST123456789",
            "original_or_analog": "original",
        },
    )  # fmt: skip

    order = Order.objects.get()
    assert response.status_code == 302
    assert [item.name for item in order.items.all()] == ["Brake pads"]
