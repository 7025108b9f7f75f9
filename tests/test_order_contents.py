"""Parts, labour, totals and photos on an order (issue: order items, custom works, photos)."""

import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from events.models import Event
from orders.models import Category, Order, OrderItem, OrderPhoto, OrderStatus, OrderWork, Part
from orders.services import order_create
from orders.services.items import ORDER_LINES_MAX_COUNT
from tests.workshop import (
    MECHANIC_PASSWORD,
    OTHER_MECHANIC_PASSWORD,
    RUNBOOK_ORDER,
    client_for,
    flag_on,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(mechanic):
    return order_create(**{**RUNBOOK_ORDER, "car_number": ""}, created_by=mechanic.user)


@pytest.fixture
def mika(mechanic):
    return client_for("mika", MECHANIC_PASSWORD)


@pytest.fixture
def nora(other_mechanic):
    return client_for("nora", OTHER_MECHANIC_PASSWORD)


def events(event_type: str) -> list[dict]:
    return [e.payload for e in Event.objects.filter(event_type=event_type).order_by("sequence")]


# --- Custom parts, labour and the total ------------------------------------------------------------


def test_total__custom_parts_and_labour__exact_decimal_sum(mika, order):
    # 3 x 0.10 + 0.20 + 0.10 is 0.6000000000000001 in floats; the order says 0.60.
    first = mika.post(
        f"/api/orders/{order.pk}/items",
        {"name": "Washer", "part_number": "W-1", "quantity": 3, "unit_price": "0.10"},
        format="json",
    )
    mika.post(
        f"/api/orders/{order.pk}/items", {"name": "Clip", "unit_price": "0.20"}, format="json"
    )
    labour = mika.post(
        f"/api/orders/{order.pk}/works",
        {"name": "Fit", "description": "Fit washers", "price": "0.10", "estimated_minutes": 5},
        format="json",
    )

    detail = mika.get(f"/api/orders/{order.pk}").json()

    assert first.status_code == 201, first.json()
    assert first.json()["line_total"] == "0.30"
    assert first.json()["is_custom"] is True
    assert labour.status_code == 201, labour.json()
    assert detail["total"] == "0.60"
    assert [i["name"] for i in detail["items"]] == ["Washer", "Clip"]
    assert [w["estimated_minutes"] for w in detail["works"]] == [5]
    assert [e["unit_price"] for e in events("order.item_added")] == ["0.10", "0.20"]
    assert [e["price"] for e in events("order.work_added")] == ["0.10"]


def test_remove__item_and_work__total_follows_and_each_removal_is_an_event(mika, order):
    item = mika.post(
        f"/api/orders/{order.pk}/items",
        {"name": "Pad", "quantity": 2, "unit_price": "12.50"},
        format="json",
    ).json()
    work = mika.post(
        f"/api/orders/{order.pk}/works", {"name": "Fit", "price": "30"}, format="json"
    ).json()

    removed_item = mika.delete(f"/api/orders/{order.pk}/items/{item['id']}")
    after_item = mika.get(f"/api/orders/{order.pk}").json()["total"]
    removed_work = mika.delete(f"/api/orders/{order.pk}/works/{work['id']}")
    again = mika.delete(f"/api/orders/{order.pk}/works/{work['id']}")

    assert (removed_item.status_code, after_item) == (204, "30.00")
    assert removed_work.status_code == 204
    assert again.status_code == 404
    assert mika.get(f"/api/orders/{order.pk}").json()["total"] == "0.00"
    assert len(events("order.item_removed")) == len(events("order.work_removed")) == 1


@pytest.mark.parametrize(
    ("fields", "field"), [({"name": "Pad\x00"}, "name"), ({"part_number": "\x00"}, "part_number")]
)
def test_item_add__nul_through_the_service__refused_naming_the_field(order, fields, field):
    from conclave.exceptions import ValidationFailed
    from orders.services.items import item_add

    with pytest.raises(ValidationFailed) as refused:
        item_add(order_id=order.pk, user=order.created_by, **{"name": "Pad", **fields},
                 unit_price="1.00")  # fmt: skip

    assert refused.value.detail.keys() == {field}
    assert not OrderItem.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Pad", "unit_price": "-1"}, "unit_price"),
        ({"name": "Pad", "unit_price": "1.005"}, "unit_price"),
        ({"name": "Pad", "unit_price": "100000000"}, "unit_price"),
        ({"name": "Pad", "unit_price": "abc"}, "unit_price"),
        ({"name": "Pad"}, "unit_price"),
        ({"name": "Pad", "unit_price": "1", "quantity": 0}, "quantity"),
        ({"name": "Pad", "unit_price": "1", "quantity": 1000}, "quantity"),
        ({"name": "", "unit_price": "1"}, "name"),
        ({"name": "x" * 201, "unit_price": "1"}, "name"),
        ({"name": "Pad", "unit_price": "1", "colour": "red"}, "colour"),
        ({"part_id": 1, "name": "Pad", "unit_price": "1"}, "part_id"),
    ],
)
def test_item_add__invalid__400_naming_the_field_nothing_written(mika, order, body, field):
    response = mika.post(f"/api/orders/{order.pk}/items", body, format="json")

    assert response.status_code == 400, response.json()
    assert field in response.json()["detail"]
    assert not OrderItem.objects.exists()
    assert not events("order.item_added")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Fit", "price": "-0.01"}, "price"),
        ({"name": "Fit", "price": "1", "estimated_minutes": 0}, "estimated_minutes"),
        ({"name": "  ", "price": "1"}, "name"),
        ({"price": "1"}, "name"),
    ],
)
def test_work_add__invalid__400(mika, order, body, field):
    response = mika.post(f"/api/orders/{order.pk}/works", body, format="json")

    assert response.status_code == 400, response.json()
    assert field in response.json()["detail"]
    assert not order.works.exists()


def test_catalog_item__copies_name_and_price__later_catalog_change_leaves_order_alone(
    mika, order, django_capture_on_commit_callbacks
):
    category = Category.objects.create(name_en="Brakes", name_he="בלמים", name_ru="Тормоза")
    part = Part.objects.create(
        category=category,
        name_en="Brake pad",
        name_he="רפידה",
        name_ru="Колодка",
        part_number="BP-1",
        price=Decimal("45.90"),
    )
    off = mika.post(f"/api/orders/{order.pk}/items", {"part_id": part.pk}, format="json")
    flag_on("ENABLE_PART_CATEGORIES", django_capture_on_commit_callbacks)

    on = mika.post(
        f"/api/orders/{order.pk}/items", {"part_id": part.pk, "quantity": 2}, format="json"
    )
    missing = mika.post(f"/api/orders/{order.pk}/items", {"part_id": 999999}, format="json")
    Part.objects.filter(pk=part.pk).update(price=Decimal("99.00"), name_en="Renamed")

    assert (off.status_code, off.json()["error"]) == (404, "feature_disabled")
    assert off.json()["detail"] == (
        "The parts catalog has been switched off: name the part instead. (ENABLE_PART_CATEGORIES)"
    )
    assert on.status_code == 201, on.json()
    assert (on.json()["name"], on.json()["unit_price"], on.json()["part_id"]) == (
        "Brake pad",
        "45.90",
        part.pk,
    )
    assert missing.status_code == 400
    assert mika.get(f"/api/orders/{order.pk}").json()["total"] == "91.80"


def test_items__other_mechanic_404_anonymous_401_staff_may(
    mika, nora, order, api_client, staff_client
):
    body = {"name": "Pad", "unit_price": "1"}
    anonymous = type(api_client)().post(f"/api/orders/{order.pk}/items", body, format="json")

    other = nora.post(f"/api/orders/{order.pk}/items", body, format="json")
    other_read = nora.get(f"/api/orders/{order.pk}/items")
    staff = staff_client.post(
        f"/api/orders/{order.pk}/works", {"name": "Check", "price": "2"}, format="json"
    )

    assert other.status_code == other_read.status_code == 404
    assert anonymous.status_code == 401
    assert staff.status_code == 201
    assert mika.get(f"/api/orders/{order.pk}/works").json()[0]["name"] == "Check"
    assert not OrderItem.objects.exists()


@pytest.mark.parametrize("final", [OrderStatus.COMPLETED, OrderStatus.CANCELLED])
def test_items__final_order__409_nothing_written(mika, order, final):
    Order.objects.filter(pk=order.pk).update(status=final)

    item = mika.post(
        f"/api/orders/{order.pk}/items", {"name": "Pad", "unit_price": "1"}, format="json"
    )
    work = mika.post(f"/api/orders/{order.pk}/works", {"name": "Fit", "price": "1"}, format="json")

    assert item.status_code == work.status_code == 409
    assert final in item.json()["detail"]
    assert not OrderItem.objects.exists()


def test_items_and_works__an_order_holds_a_hundred_lines_of_each__then_409(mika, order):
    """An order's lines are bounded, as its photos are: its page and its detail answer stay a
    size a phone can take. Taking a line off makes room again."""
    OrderItem.objects.bulk_create(
        OrderItem(
            order=order, name=f"Part {n}", quantity=1, unit_price=1, added_by=order.created_by
        )
        for n in range(ORDER_LINES_MAX_COUNT)
    )
    OrderWork.objects.bulk_create(
        OrderWork(order=order, name=f"Work {n}", price=1, added_by=order.created_by)
        for n in range(ORDER_LINES_MAX_COUNT)
    )
    url = f"/api/orders/{order.pk}"

    item = mika.post(f"{url}/items", {"name": "Pad", "unit_price": "1"}, format="json")
    work = mika.post(f"{url}/works", {"name": "Fit", "price": "1"}, format="json")
    mika.delete(f"{url}/items/{order.items.first().pk}")
    room_again = mika.post(f"{url}/items", {"name": "Pad", "unit_price": "1"}, format="json")

    assert (item.status_code, work.status_code) == (409, 409)
    assert item.json()["detail"] == (
        f"Order {order.pk} has {ORDER_LINES_MAX_COUNT} parts already: remove one first."
    )
    assert work.json()["detail"] == (
        f"Order {order.pk} has {ORDER_LINES_MAX_COUNT} labour lines already: remove one first."
    )
    assert room_again.status_code == 201
    assert order.items.count() == order.works.count() == ORDER_LINES_MAX_COUNT
    assert not events("order.work_added")


@pytest.mark.parametrize(
    "change", ["item_add", "item_remove", "work_add", "work_remove", "photo", "photo_remove"]
)
def test_contents_changed__the_order_s_updated_at_moves(mika, order, change):
    url = f"/api/orders/{order.pk}"
    item = mika.post(f"{url}/items", {"name": "Clip", "unit_price": "0.20"}, format="json")
    work = mika.post(f"{url}/works", {"name": "Fit", "price": "5.00"}, format="json")
    photo = upload(mika, order.pk, image_bytes("PNG"), "car.png")
    long_ago = order.created_at - timedelta(days=30)
    Order.objects.filter(pk=order.pk).update(updated_at=long_ago)

    response = {
        "item_add": lambda: mika.post(f"{url}/items", {"name": "Nut", "unit_price": "1"}),
        "item_remove": lambda: mika.delete(f"{url}/items/{item.json()['id']}"),
        "work_add": lambda: mika.post(f"{url}/works", {"name": "Test", "price": "1.00"}),
        "work_remove": lambda: mika.delete(f"{url}/works/{work.json()['id']}"),
        "photo": lambda: upload(mika, order.pk, image_bytes("PNG"), "car.png"),
        "photo_remove": lambda: mika.delete(f"{url}/photos/{photo.json()['id']}"),
    }[change]()

    assert response.status_code in (201, 204), response.content
    order.refresh_from_db()
    assert order.updated_at > long_ago + timedelta(days=29)
    assert mika.get(url).json()["updated_at"] == order.updated_at.isoformat().replace("+00:00", "Z")


def test_order_detail__query_count_does_not_grow_with_contents(
    mika, order, django_assert_num_queries
):
    def count_queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert mika.get(f"/api/orders/{order.pk}").status_code == 200
        return len(captured)

    few = count_queries()
    for n in range(5):
        mika.post(
            f"/api/orders/{order.pk}/items", {"name": f"P{n}", "unit_price": "1"}, format="json"
        )
        mika.post(f"/api/orders/{order.pk}/works", {"name": f"W{n}", "price": "1"}, format="json")

    with django_assert_num_queries(few):
        assert mika.get(f"/api/orders/{order.pk}").json()["total"] == "10.00"


# --- Photos -----------------------------------------------------------------------------------------


def image_bytes(image_format: str, size: tuple[int, int] = (4, 3)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buffer, format=image_format)
    return buffer.getvalue()


def upload(client, order_id: int, data: bytes, name: str):
    file = io.BytesIO(data)
    file.name = name
    return client.post(f"/api/orders/{order_id}/photos", {"photo": file}, format="multipart")


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")],
)
def test_photo__jpeg_png_webp__stored_under_a_random_name_served_only_to_who_may_see(
    mika, nora, staff_client, order, image_format, content_type
):
    data = image_bytes(image_format)

    response = upload(mika, order.pk, data, "car.bin")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["content_type"], body["width"], body["height"]) == (content_type, 4, 3)
    stored = OrderPhoto.objects.get()
    assert re.fullmatch(r"order-photos/[0-9a-f]{32}\.(jpg|png|webp)", stored.file.name)
    assert default_storage.exists(stored.file.name)
    own = mika.get(body["url"])
    assert own.status_code == 200
    assert own["Content-Type"] == content_type
    assert own["X-Content-Type-Options"] == "nosniff"
    assert b"".join(own.streaming_content) == data
    assert staff_client.get(body["url"]).status_code == 200
    assert nora.get(body["url"]).status_code == 404
    assert nora.get(f"/api/orders/{order.pk}/photos").status_code == 404
    assert [p["id"] for p in mika.get(f"/api/orders/{order.pk}").json()["photos"]] == [body["id"]]
    assert events("order.photo_added")[0]["sha256"] == stored.sha256


def test_photo__its_file_gone_from_storage__404_saying_so_and_logged(mika, order, caplog):
    """A storage restored without the media, a file deleted by hand: the order's page still
    asks for the photo; that is a clear 404 (and an error in the log), not a 500."""
    body = upload(mika, order.pk, image_bytes("PNG"), "car.png").json()
    default_storage.delete(OrderPhoto.objects.get().file.name)

    with caplog.at_level("ERROR"):
        response = mika.get(body["url"])

    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "detail": f"The file of photo {body['id']} is missing from the storage.",
    }
    assert "photo_file_missing" in caplog.text


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"<?php echo 'hi'; ?>", "shell.jpg"),
        (image_bytes("GIF"), "anim.gif"),
        (image_bytes("BMP"), "old.png"),
        (image_bytes("PNG")[:40], "cut.png"),
        (b"", "empty.jpg"),
    ],
)
def test_photo__not_a_jpeg_png_or_webp__400_nothing_stored(mika, order, data, name):
    response = upload(mika, order.pk, data, name)

    assert response.status_code == 400, response.content
    assert "photo" in response.json()["detail"]
    assert not OrderPhoto.objects.exists()
    assert not events("order.photo_added")


def test_photo__over_the_size_limit__400(mika, order, settings):
    data = image_bytes("PNG", (64, 64))
    settings.ORDER_PHOTO_MAX_BYTES = len(data) - 1

    response = upload(mika, order.pk, data, "big.png")

    assert response.status_code == 400
    assert not OrderPhoto.objects.exists()


def test_photo__other_mechanic_cannot_upload__404(nora, order):
    response = upload(nora, order.pk, image_bytes("PNG"), "x.png")

    assert response.status_code == 404
    assert not OrderPhoto.objects.exists()


def test_photo_remove__own_order__row_file_and_event(
    mika, nora, order, django_capture_on_commit_callbacks
):
    kept = upload(mika, order.pk, image_bytes("PNG"), "kept.png").json()
    gone = upload(mika, order.pk, image_bytes("JPEG"), "wrong.jpg").json()
    name = OrderPhoto.objects.get(pk=gone["id"]).file.name

    not_theirs = nora.delete(gone["url"])
    assert not_theirs.status_code == 404 and default_storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        response = mika.delete(gone["url"])

    assert response.status_code == 204
    assert list(OrderPhoto.objects.values_list("pk", flat=True)) == [kept["id"]]
    assert not default_storage.exists(name)
    assert mika.get(gone["url"]).status_code == 404
    removed = events("order.photo_removed")
    assert [(e["order_id"], e["photo_id"], e["sha256"]) for e in removed] == [
        (order.pk, gone["id"], gone["sha256"])
    ]
    assert mika.delete(gone["url"]).status_code == 404  # once


@pytest.mark.parametrize("final", [OrderStatus.CANCELLED, OrderStatus.COMPLETED])
def test_photo_remove__final_order__409_photo_kept(mika, order, final):
    photo = upload(mika, order.pk, image_bytes("PNG"), "car.png").json()
    Order.objects.filter(pk=order.pk).update(status=final)

    response = mika.delete(photo["url"])

    assert response.status_code == 409
    assert default_storage.exists(OrderPhoto.objects.get(pk=photo["id"]).file.name)
    assert not events("order.photo_removed")
