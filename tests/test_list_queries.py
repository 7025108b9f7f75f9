"""Every list costs a fixed number of queries, whatever its length (pinned)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Category, Part
from orders.services import comment_add, order_create, time_entry_add
from tests.workshop import MECHANIC_PASSWORD, RUNBOOK_ORDER, client_for, flag_on

pytestmark = pytest.mark.django_db

ROWS = 12


@pytest.fixture
def busy_mechanic(mechanic):
    """A mechanic with ROWS orders, each with a comment and a time entry."""
    now = timezone.now()
    for n in range(ROWS):
        order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
        comment_add(order=order, author=mechanic.user, text=f"note {n}")
        time_entry_add(
            order_id=order.pk,
            mechanic=mechanic,
            started_at=now - timedelta(minutes=10 * (n + 1)),
            ended_at=now - timedelta(minutes=10 * n),
        )
    return mechanic


# Token lookup (with its user) and the mechanic profile are one query each; the rest is the
# list's own.
@pytest.mark.parametrize(
    ("url", "queries"),
    [
        ("/api/orders", 4),  # + count, page
        ("/api/mechanic/time?period=today", 3),  # + entries
        ("/api/mechanic/stats", 8),  # + by status, completed today, time today x2, all time x2
    ],
)
def test_mechanic_lists__fixed_queries(busy_mechanic, django_assert_num_queries, url, queries):
    client = client_for("mika", MECHANIC_PASSWORD)
    client.get(url)  # warm: this process's flag snapshot

    with django_assert_num_queries(queries):
        response = client.get(url)

    assert response.status_code == 200


def test_staff_order_list__fixed_queries(busy_mechanic, staff_client, django_assert_num_queries):
    staff_client.get("/api/orders")  # warm: this process's flag snapshot
    # token, the staff member's permissions (their own, their groups'), count, page (the
    # mechanic joined in)
    with django_assert_num_queries(5):
        response = staff_client.get("/api/orders", {"page_size": 100})

    assert len(response.json()["results"]) == ROWS


def test_comments__fixed_queries(busy_mechanic, staff_client, django_assert_num_queries):
    order_id = busy_mechanic.orders.first().pk
    for n in range(ROWS):
        comment_add(order=busy_mechanic.orders.first(), author=busy_mechanic.user, text=str(n))

    # token, the staff member's permissions (their own, their groups'), order, count, the
    # page's comments with their authors
    with django_assert_num_queries(6):
        response = staff_client.get(f"/api/orders/{order_id}/comments")

    assert len(response.json()["results"]) == ROWS + 1


def test_catalog__fixed_queries(api_client, system_keys, django_assert_num_queries,
                                django_capture_on_commit_callbacks):  # fmt: skip
    flag_on("ENABLE_PART_CATEGORIES", django_capture_on_commit_callbacks)
    for n in range(ROWS):
        category = Category.objects.create(name_en=f"C{n}", name_he="", name_ru="")
        Part.objects.create(category=category, name_en=f"P{n}", name_he="", name_ru="", price=1)
    api_client.get("/api/categories")  # warm: this process's flag snapshot

    with django_assert_num_queries(1):
        categories = api_client.get("/api/categories")
    with django_assert_num_queries(1):
        parts = api_client.get("/api/parts")

    assert len(categories.json()) == len(parts.json()) == ROWS


def test_staff_mechanics_list__fixed_queries(
    busy_mechanic, other_mechanic, staff_client, django_assert_num_queries
):
    staff_client.get("/api/admin/mechanics")  # warm: this process's flag snapshot
    # token, the staff member's permissions (their own, their groups'), count, page (users
    # joined, open orders counted in it)
    with django_assert_num_queries(5):
        response = staff_client.get("/api/admin/mechanics")

    assert [m["open_orders"] for m in response.json()["results"]] == [ROWS, 0]
