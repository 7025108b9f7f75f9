"""Staff manage the catalog: create, update, reorder, delete (refused while orders use it)."""

from decimal import Decimal

import pytest
from rest_framework.authtoken.models import Token

from events.models import Event
from orders.models import Category, Order, Part
from orders.services import item_add, order_create
from tests.factories import UserFactory
from tests.workshop import MECHANIC_PASSWORD, RUNBOOK_ORDER, client_for

pytestmark = pytest.mark.django_db


def event_types() -> list[str]:
    return list(
        Event.objects.filter(event_type__startswith="catalog.")
        .order_by("sequence")
        .values_list("event_type", flat=True)
    )


@pytest.fixture
def brakes(staff_client):
    return staff_client.post(
        "/api/admin/categories",
        {"name_en": "Brakes", "name_he": "בלמים", "name_ru": "Тормоза", "icon": "disc"},
        format="json",
    ).json()


@pytest.fixture
def pad(staff_client, brakes):
    return staff_client.post(
        "/api/admin/parts",
        {
            "category_id": brakes["id"],
            "name_en": "Brake pad",
            "name_ru": "Колодка",
            "part_number": "BP-1",
            "price": "45.90",
            "is_common": True,
        },
        format="json",
    ).json()


def test_create_update_and_read_back_in_each_language(staff_client, brakes, pad):
    renamed = staff_client.patch(
        f"/api/admin/parts/{pad['id']}", {"price": "47.00", "name_he": "רפידה"}, format="json"
    )

    assert brakes["sort_order"] == 0
    assert (pad["price"], pad["is_common"], pad["name_he"]) == ("45.90", True, "")
    assert renamed.status_code == 200
    part = Part.objects.get()
    assert (part.price, part.name("he"), part.name("ru")) == (Decimal("47.00"), "רפידה", "Колодка")
    assert event_types() == [
        "catalog.category_created",
        "catalog.part_created",
        "catalog.part_changed",
    ]
    changed = Event.objects.get(event_type="catalog.part_changed").payload
    assert (changed["price"], changed["name_he"]) == ("47.00", "רפידה")


def test_new_category_goes_last_and_reorder_puts_them_in_the_order_given(staff_client, brakes):
    engine = staff_client.post("/api/admin/categories", {"name_en": "Engine"}, format="json")
    body = staff_client.post("/api/admin/categories", {"name_en": "Body"}, format="json")
    ids = [body.json()["id"], brakes["id"], engine.json()["id"]]

    reordered = staff_client.post("/api/admin/categories/reorder", {"ids": ids}, format="json")
    partial = staff_client.post("/api/admin/categories/reorder", {"ids": ids[:2]}, format="json")
    twice = staff_client.post(
        "/api/admin/categories/reorder", {"ids": [ids[0], ids[0], ids[1]]}, format="json"
    )

    assert engine.json()["sort_order"] == 1 and body.json()["sort_order"] == 2
    assert reordered.status_code == 200
    assert list(Category.objects.order_by("sort_order").values_list("pk", flat=True)) == ids
    assert partial.status_code == twice.status_code == 400
    assert event_types().count("catalog.categories_reordered") == 1


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/admin/categories", {"name_en": ""}, "name_en"),
        ("/api/admin/categories", {"name_en": "x" * 101}, "name_en"),
        ("/api/admin/categories", {"name_en": "A", "colour": "red"}, "colour"),
        ("/api/admin/parts", {"category_id": 999, "name_en": "A", "price": "1"}, "category_id"),
        ("/api/admin/parts", {"category_id": 1, "name_en": "A", "price": "-1"}, "price"),
        ("/api/admin/parts", {"category_id": 1, "name_en": "A"}, "price"),
    ],
)
def test_invalid__400_nothing_written(staff_client, url, body, field):
    response = staff_client.post(url, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert not Category.objects.exists() and not Part.objects.exists()
    assert event_types() == []


@pytest.mark.parametrize(
    ("body", "taken"),
    [
        ({"name_en": "Brakes"}, "Brakes"),
        ({"name_en": "  BRAKES "}, "Brakes"),
        ({"name_en": "Stopping", "name_ru": "тормоза"}, "Тормоза"),
    ],
)
def test_category__a_name_another_has__409_nothing_written(staff_client, brakes, body, taken):
    events = event_types()

    made = staff_client.post("/api/admin/categories", body, format="json")
    engine = Category.objects.create(name_en="Engine", name_ru="Двигатель")
    renamed = staff_client.patch(f"/api/admin/categories/{engine.pk}", body, format="json")

    for response in (made, renamed):
        assert response.status_code == 409, response.content
        assert response.json()["detail"] == f"Category {brakes['id']} is named {taken} already."
        assert response.json()["category_id"] == brakes["id"]
    assert sorted(Category.objects.values_list("name_en", flat=True)) == ["Brakes", "Engine"]
    assert event_types() == events


def test_category__its_own_name_again_or_translations_both_empty__not_a_clash(staff_client, brakes):
    engine = staff_client.post("/api/admin/categories", {"name_en": "Engine"}, format="json")
    glass = staff_client.post("/api/admin/categories", {"name_en": "Glass"}, format="json")
    same = staff_client.patch(
        f"/api/admin/categories/{brakes['id']}", {"name_en": "brakes"}, format="json"
    )

    assert (engine.status_code, glass.status_code) == (201, 201)
    assert engine.json()["name_he"] == glass.json()["name_he"] == ""
    assert same.status_code == 200 and same.json()["name_en"] == "brakes"


def test_part__same_name_and_number_in_its_category__409(staff_client, brakes, pad):
    engine = staff_client.post("/api/admin/categories", {"name_en": "Engine"}, format="json")
    events = event_types()
    twin = {"category_id": brakes["id"], "name_en": "brake PAD", "part_number": "bp-1",
            "price": "50.00"}  # fmt: skip

    refused = staff_client.post("/api/admin/parts", twin, format="json")
    other_number = staff_client.post(
        "/api/admin/parts", {**twin, "part_number": "BP-2"}, format="json"
    )
    other_category = staff_client.post(
        "/api/admin/parts", {**twin, "category_id": engine.json()["id"]}, format="json"
    )
    moved_onto_it = staff_client.patch(
        f"/api/admin/parts/{other_number.json()['id']}", {"part_number": "BP-1"}, format="json"
    )

    assert refused.status_code == 409, refused.content
    assert refused.json()["detail"] == (
        f"Part {pad['id']} of this category is Brake pad, number BP-1, already."
    )
    assert refused.json()["part_id"] == pad["id"]
    assert (other_number.status_code, other_category.status_code) == (201, 201)
    assert moved_onto_it.status_code == 409
    assert Part.objects.filter(part_number__iexact="bp-1").count() == 2  # pad, other category
    assert len(event_types()) == len(events) + 2


def test_delete__unused_category_goes_with_its_parts(staff_client, brakes, pad):
    response = staff_client.delete(f"/api/admin/categories/{brakes['id']}")

    assert response.status_code == 204
    assert not Category.objects.exists() and not Part.objects.exists()
    deleted = Event.objects.get(event_type="catalog.category_deleted").payload
    assert deleted["part_ids"] == [pad["id"]]
    assert staff_client.delete(f"/api/admin/categories/{brakes['id']}").status_code == 404


def test_delete__category_or_part_an_order_uses__409_nothing_deleted(
    staff_client, staff_user, brakes, pad, mechanic
):
    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    item_add(
        order_id=order.pk,
        user=staff_user,
        part_id=pad["id"],
        flags={"ENABLE_PART_CATEGORIES": True},
    )

    category = staff_client.delete(f"/api/admin/categories/{brakes['id']}")
    part = staff_client.delete(f"/api/admin/parts/{pad['id']}")

    assert category.status_code == part.status_code == 409
    assert category.json()["orders"] == 1
    assert "used by 1 order" in category.json()["detail"]
    assert Category.objects.count() == Part.objects.count() == 1
    assert "catalog.category_deleted" not in event_types()


def test_delete__part_named_as_the_orders_part__409(staff_client, pad, mechanic):
    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    Order.objects.filter(pk=order.pk).update(part_id=pad["id"])

    assert staff_client.delete(f"/api/admin/parts/{pad['id']}").status_code == 409


def test_permissions__mechanic_and_plain_staff_403_anonymous_401(api_client, mechanic, brakes):
    plain_staff = UserFactory(username="plain", is_staff=True)
    staff_token = Token.objects.create(user=plain_staff).key
    mika = client_for("mika", MECHANIC_PASSWORD)
    url = f"/api/admin/categories/{brakes['id']}"

    anonymous = type(api_client)().patch(url, {"name_en": "X"}, format="json")
    as_mechanic = mika.patch(url, {"name_en": "X"}, format="json")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {staff_token}")
    as_plain_staff = api_client.delete(url)

    assert anonymous.status_code == 401
    assert as_mechanic.status_code == as_plain_staff.status_code == 403
    assert Category.objects.get().name_en == "Brakes"


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("get", "/api/admin/categories", "POST, OPTIONS"),
        ("get", "/api/admin/parts", "POST, OPTIONS"),
        ("get", "/api/admin/categories/{id}", "PATCH, DELETE, OPTIONS"),
        ("put", "/api/admin/categories/{id}", "PATCH, DELETE, OPTIONS"),
        ("get", "/api/admin/categories/reorder", "POST, OPTIONS"),
    ],
)
def test_method_the_endpoint_lacks__405_naming_the_allowed_ones(
    staff_client, brakes, method, url, allowed
):
    response = getattr(staff_client, method)(url.format(id=brakes["id"]), {}, format="json")

    assert response.status_code == 405, response.json()
    assert response.json()["error"] == "method_not_allowed"
    assert response["Allow"] == allowed
