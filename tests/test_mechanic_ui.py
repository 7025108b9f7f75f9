"""The mechanic's pages, server side: sign-in (password, throttle, one-time link), who sees
what, filters and fragments, and the queries a page costs. In a real browser:
test_mechanic_browser.py."""

import logging
import re

import pytest
from django.test import Client

from conclave.halt import forget_halt_status
from conclave.services import halt_raise
from orders.models import Category, Order, Part
from orders.services import order_create
from orders.services.login_links import login_link_issue
from tests.workshop import MECHANIC_PASSWORD, RUNBOOK_ORDER, flag_on, span_today

pytestmark = pytest.mark.django_db


def signed_in(mechanic) -> Client:
    client = Client()
    client.force_login(mechanic.user)
    return client


def orders_of(mechanic, count: int = 1, **fields) -> list[Order]:
    return [
        order_create(**{**RUNBOOK_ORDER, **fields}, created_by=mechanic.user) for _ in range(count)
    ]


# --- Signing in -------------------------------------------------------------------------------------


def test_login__right_password__dashboard(mechanic):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/mechanic/login")
    token = page.cookies["csrftoken"].value

    response = client.post(
        "/mechanic/login",
        {"username": "mika", "password": MECHANIC_PASSWORD, "csrfmiddlewaretoken": token},
    )

    assert response.status_code == 302 and response["Location"] == "/mechanic/"
    assert client.get("/mechanic/").status_code == 200
    assert response.cookies["sessionid"]["httponly"]


def test_login__without_the_csrf_token__refused(mechanic):
    client = Client(enforce_csrf_checks=True)

    response = client.post("/mechanic/login", {"username": "mika", "password": MECHANIC_PASSWORD})

    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_login__wrong_password__clear_message_and_no_session(mechanic):
    client = Client()

    response = client.post("/mechanic/login", {"username": "mika", "password": "nope"})

    assert response.status_code == 200
    assert "Wrong username or password." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login__staff_without_a_mechanic_profile__refused(staff_user):
    staff_user.set_password("staff-password-long-1")
    staff_user.save()

    client = Client()
    response = client.post(
        "/mechanic/login", {"username": "stella", "password": "staff-password-long-1"}
    )

    assert "Wrong username or password." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login__repeated_failures_throttled_like_the_api_login(mechanic, monkeypatch):
    from mechanic_ui.views import LoginFormThrottle

    monkeypatch.setattr(LoginFormThrottle, "THROTTLE_RATES", {"login": "3/min"})
    client = Client()
    statuses = [
        client.post("/mechanic/login", {"username": "mika", "password": "nope"}).status_code
        for _ in range(4)
    ]
    right = client.post("/mechanic/login", {"username": "mika", "password": MECHANIC_PASSWORD})

    assert statuses == [200, 200, 200, 429]
    assert right.status_code == 429 and "Too many attempts" in right.content.decode()
    assert int(right["Retry-After"]) > 0


def test_login__next_on_another_site_ignored(mechanic):
    response = Client().post(
        "/mechanic/login?next=https://evil.example/",
        {"username": "mika", "password": MECHANIC_PASSWORD},
    )

    assert response["Location"] == "/mechanic/"


def test_pages_need_a_signed_in_mechanic(mechanic, staff_user):
    order = orders_of(mechanic)[0]
    anonymous = Client().get(f"/mechanic/orders/{order.pk}")
    staff = Client()
    staff.force_login(staff_user)

    assert anonymous.status_code == 302
    assert anonymous["Location"] == f"/mechanic/login?next=/mechanic/orders/{order.pk}"
    assert staff.get("/mechanic/").status_code == 302


def test_logout__post_only(mechanic):
    client = signed_in(mechanic)

    assert client.get("/mechanic/logout").status_code == 405
    assert client.post("/mechanic/logout").status_code == 302
    assert client.get("/mechanic/").status_code == 302


def test_one_time_link__signs_in_and_opens_the_order__once(mechanic):
    order = orders_of(mechanic)[0]
    token = login_link_issue(mechanic=mechanic, order=order)
    client = Client()

    first = client.get(f"/mechanic/login/link/{token}")
    second = Client().get(f"/mechanic/login/link/{token}")

    assert first.status_code == 302 and first["Location"] == f"/mechanic/orders/{order.pk}"
    assert client.get(first["Location"]).status_code == 200
    assert second.status_code == 403 and "not valid" in second.content.decode()


def test_one_time_link__request_log__token_masked(mechanic, caplog):
    """The link is a credential until it is used (and for good if its use fails): the request
    log names the path without it."""
    order = orders_of(mechanic)[0]
    token = login_link_issue(mechanic=mechanic, order=order)

    with caplog.at_level(logging.INFO, logger="conclave.requests"):
        used = Client().get(f"/mechanic/login/link/{token}?from=telegram")
        refused = Client().get(f"/mechanic/login/link/{token}x")

    logged = [record.msg for record in caplog.records if record.name == "conclave.requests"]
    assert (used.status_code, refused.status_code) == (302, 403)
    assert [line["request"] for line in logged] == [
        "GET /mechanic/login/link/[redacted]?from=telegram",
        "GET /mechanic/login/link/[redacted]",
    ]
    assert token not in caplog.text


def test_one_time_link__database_down_while_redeeming__503_logged_without_the_token(
    mechanic, monkeypatch, caplog
):
    """The token is still unused then: Django's own line for the 5xx names the path too."""
    from django.db import OperationalError

    def unreachable(token: str):
        raise OperationalError("connection refused")

    token = login_link_issue(mechanic=mechanic, order=orders_of(mechanic)[0])
    monkeypatch.setattr("mechanic_ui.views.login_link_redeem", unreachable)

    with caplog.at_level(logging.INFO):
        response = Client().get(f"/mechanic/login/link/{token}")

    assert response.status_code == 503
    assert "Service Unavailable: /mechanic/login/link/[redacted]" in caplog.messages
    assert token not in caplog.text


@pytest.mark.parametrize(
    "change",
    ["password_reset", "password_changed", "deactivated_and_back", "chat_relinked", "reassigned"],
)
def test_one_time_link__outstanding_ones_die_with_what_they_were_sent_for(
    mechanic, other_mechanic, staff_user, change
):
    from orders.services import (
        mechanic_password_change,
        mechanic_password_reset,
        mechanic_set_active,
        mechanic_telegram_link,
        order_assign,
    )
    from tests.workshop import MECHANIC_PASSWORD

    order = orders_of(mechanic)[0]
    token = login_link_issue(mechanic=mechanic, order=order)
    new_password = "another-long-enough-password-5"
    {
        "password_reset": lambda: mechanic_password_reset(
            mechanic=mechanic, new_password=new_password, actor=staff_user
        ),
        "password_changed": lambda: mechanic_password_change(
            user=mechanic.user, current_password=MECHANIC_PASSWORD, new_password=new_password
        ),
        "deactivated_and_back": lambda: [
            mechanic_set_active(mechanic=mechanic, active=active, actor=staff_user)
            for active in (False, True)
        ],
        "chat_relinked": lambda: mechanic_telegram_link(
            mechanic=mechanic, chat_id=4242, actor=staff_user
        ),
        "reassigned": lambda: order_assign(
            order_id=order.pk, mechanic_id=other_mechanic.pk, actor=staff_user
        ),
    }[change]()

    response = Client().get(f"/mechanic/login/link/{token}")

    assert response.status_code == 403 and "not valid" in response.content.decode()


def test_one_time_link__altered__refused(mechanic):
    order = orders_of(mechanic)[0]
    token = login_link_issue(mechanic=mechanic, order=order)

    assert Client().get(f"/mechanic/login/link/{token}x").status_code == 403


# --- The dashboard ----------------------------------------------------------------------------------


def test_dashboard__only_the_mechanics_own_orders(mechanic, other_mechanic):
    mine = orders_of(mechanic)[0]
    theirs = orders_of(other_mechanic)[0]

    html = signed_in(mechanic).get("/mechanic/").content.decode()

    assert f'data-order="{mine.pk}"' in html
    assert f'data-order="{theirs.pk}"' not in html


def test_dashboard__filter_in_the_url(mechanic):
    new, started = orders_of(mechanic, 2)
    Order.objects.filter(pk=started.pk).update(status="in_progress")
    client = signed_in(mechanic)

    in_progress = client.get("/mechanic/?status=in_progress").content.decode()
    unknown = client.get("/mechanic/?status=bogus").content.decode()

    assert f'data-order="{started.pk}"' in in_progress
    assert f'data-order="{new.pk}"' not in in_progress
    assert 'data-filter="in_progress" aria-current="page"' in in_progress
    assert f'data-order="{new.pk}"' in unknown  # an unknown filter shows all


def test_dashboard__ready_orders_have_their_filter(mechanic):
    """The dashboard counts ready orders in their own card: they can be listed alone too."""
    new, ready = orders_of(mechanic, 2)
    Order.objects.filter(pk=ready.pk).update(status="ready")

    page = signed_in(mechanic).get("/mechanic/?status=ready").content.decode()

    assert f'data-order="{ready.pk}"' in page
    assert f'data-order="{new.pk}"' not in page
    assert 'data-filter="ready" aria-current="page"' in page


def test_dashboard__car_numbers_only_while_the_flag_is_on(
    mechanic, django_capture_on_commit_callbacks
):
    orders_of(mechanic)
    client = signed_in(mechanic)
    before = client.get("/mechanic/").content.decode()
    flag_on("ENABLE_CAR_NUMBER", django_capture_on_commit_callbacks)
    orders_of(mechanic, car_number="77-777-77")

    after = client.get("/mechanic/").content.decode()

    assert "order-car-number" not in before
    assert '<bdi class="order-car-number" dir="ltr">77-777-77</bdi>' in after


def test_dashboard__search_and_pagination(mechanic):
    orders_of(mechanic, 21)
    special = orders_of(mechanic, vin="WBA1234567")[0]
    client = signed_in(mechanic)

    found = client.get("/mechanic/?q=wba12").content.decode()
    second_page = client.get("/mechanic/?page=2").content.decode()

    assert found.count("data-order=") == 1 and f'data-order="{special.pk}"' in found
    assert second_page.count("data-order=") == 2 and "Page 2 of 2" in second_page


def test_dashboard__fragment_for_the_refresh(mechanic):
    orders_of(mechanic)

    fragment = signed_in(mechanic).get("/mechanic/", HTTP_X_FRAGMENT="orders")

    html = fragment.content.decode()
    assert "order-list" in html and "<html" not in html
    assert fragment["Cache-Control"].startswith("max-age=0")


def test_dashboard__queries_do_not_grow_with_the_orders(mechanic, django_assert_num_queries):
    orders_of(mechanic, 20)
    client = signed_in(mechanic)

    with django_assert_num_queries(11):
        client.get("/mechanic/")


# --- An order ---------------------------------------------------------------------------------------


def test_order__another_mechanics_order_does_not_exist(mechanic, other_mechanic):
    theirs = orders_of(other_mechanic)[0]

    assert signed_in(mechanic).get(f"/mechanic/orders/{theirs.pk}").status_code == 404


def test_order__buttons_only_for_the_moves_allowed_now(mechanic):
    order = orders_of(mechanic)[0]
    client = signed_in(mechanic)

    new = client.get(f"/mechanic/orders/{order.pk}").content.decode()
    Order.objects.filter(pk=order.pk).update(status="ready")
    ready = client.get(f"/mechanic/orders/{order.pk}").content.decode()

    assert 'data-status="in_progress"' in new and 'data-status="cancelled"' in new
    assert 'data-status="ready"' not in new
    assert 'data-status="completed"' in ready and 'data-status="cancelled"' not in ready


def test_order__queries_do_not_grow_with_comments_and_entries(mechanic, django_assert_num_queries):
    from orders.services import comment_add

    order = orders_of(mechanic)[0]
    for n in range(10):
        comment_add(order=order, author=mechanic.user, text=f"note {n}")
    client = signed_in(mechanic)

    with django_assert_num_queries(10):
        client.get(f"/mechanic/orders/{order.pk}")


def test_order__the_latest_comments_shown__all_of_them_on_asking(
    mechanic, django_assert_num_queries
):
    """An order's page shows its latest ORDER_PAGE_COMMENTS comments, oldest of them first,
    and says how many came before, with a link to all of them: a long discussion does not
    make every visit to the order load all of it."""
    from mechanic_ui.views import ORDER_PAGE_COMMENTS
    from orders.services import comment_add

    order = orders_of(mechanic)[0]
    for n in range(ORDER_PAGE_COMMENTS + 3):
        comment_add(order=order, author=mechanic.user, text=f"note {n:03d}")
    client = signed_in(mechanic)

    with django_assert_num_queries(11):  # the page's ten and the count of the comments
        latest = client.get(f"/mechanic/orders/{order.pk}").content.decode()
    every = client.get(f"/mechanic/orders/{order.pk}?comments=all").content.decode()

    shown = re.findall(r"note (\d{3})", latest)
    assert shown == [f"{n:03d}" for n in range(3, ORDER_PAGE_COMMENTS + 3)]
    assert "3 earlier comments" in latest and 'href="?comments=all#comments"' in latest
    assert re.findall(r"note (\d{3})", every) == [
        f"{n:03d}" for n in range(ORDER_PAGE_COMMENTS + 3)
    ]
    assert "earlier comments" not in every


def test_order__a_comment_added_between_the_page_s_two_reads__not_counted_as_earlier(mechanic):
    """The latest comments and the count of those before them are two reads: a comment added
    between them is newer than every one shown, not one of the earlier ones."""
    from django.db import connection

    from orders.selectors import order_comments_latest
    from orders.services import comment_add

    order = orders_of(mechanic)[0]
    for n in range(5):
        comment_add(order=order, author=mechanic.user, text=f"note {n}")
    added: list[str] = []

    def another_comment_first(execute, sql, params, many, context):
        if not added and "COUNT(" in sql.upper():
            added.append("late")
            comment_add(order=order, author=mechanic.user, text="late")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(another_comment_first):
        shown, earlier = order_comments_latest(order, limit=3)

    assert added == ["late"]
    assert [comment.text for comment in shown] == ["note 2", "note 3", "note 4"]
    assert earlier == 2


def test_order__adding_and_removing_only_while_open__catalog_while_on(
    mechanic, django_capture_on_commit_callbacks
):
    from orders.services import item_add, order_status_change

    order = orders_of(mechanic)[0]
    item_add(order_id=order.pk, user=mechanic.user, name="Clamp", unit_price="3.40")
    client = signed_in(mechanic)

    open_page = client.get(f"/mechanic/orders/{order.pk}").content.decode()
    flag_on("ENABLE_PART_CATEGORIES", django_capture_on_commit_callbacks)
    Part.objects.create(
        category=Category.objects.create(name_en="Brakes"), name_en="Disc", price="80.00"
    )
    with_catalog = client.get(f"/mechanic/orders/{order.pk}").content.decode()
    order_status_change(order_id=order.pk, status="cancelled", mechanic=mechanic)
    finished = client.get(f"/mechanic/orders/{order.pk}").content.decode()

    forms = ('data-action="item"', 'data-action="work"', 'data-action="photo"')
    assert all(form in open_page for form in forms)
    assert 'data-action="item-remove"' in open_page
    assert 'name="part_id"' not in open_page and 'name="part_id"' in with_catalog
    assert ">Disc" in with_catalog
    assert not any(form in finished for form in forms)
    assert "-remove" not in finished
    assert "Clamp" in finished


def test_order__no_photo_form_once_the_order_has_as_many_as_it_may(mechanic, settings):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from orders.services import photo_add

    settings.ORDER_PHOTO_MAX_COUNT = 1
    order = orders_of(mechanic)[0]
    client = signed_in(mechanic)
    before = client.get(f"/mechanic/orders/{order.pk}").content.decode()
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(buffer, "PNG")
    upload = SimpleUploadedFile("car.png", buffer.getvalue(), content_type="image/png")
    photo_add(order_id=order.pk, user=mechanic.user, upload=upload)

    after = client.get(f"/mechanic/orders/{order.pk}").content.decode()

    assert 'data-action="photo"' in before
    assert 'data-action="photo"' not in after
    assert 'data-action="photo-remove"' in after


def test_order__no_part_or_labour_form_once_the_order_has_as_many_lines_as_it_may(mechanic):
    from orders.models import OrderItem, OrderWork
    from orders.services.items import ORDER_LINES_MAX_COUNT

    order = orders_of(mechanic)[0]
    client = signed_in(mechanic)
    OrderItem.objects.bulk_create(
        OrderItem(order=order, name=f"P{n}", quantity=1, unit_price=1, added_by=mechanic.user)
        for n in range(ORDER_LINES_MAX_COUNT)
    )
    parts_full = client.get(f"/mechanic/orders/{order.pk}").content.decode()
    OrderWork.objects.bulk_create(
        OrderWork(order=order, name=f"W{n}", price=1, added_by=mechanic.user)
        for n in range(ORDER_LINES_MAX_COUNT)
    )
    both_full = client.get(f"/mechanic/orders/{order.pk}").content.decode()

    assert 'data-action="item"' not in parts_full and 'data-action="work"' in parts_full
    assert 'data-action="work"' not in both_full
    assert 'data-action="item-remove"' in both_full and 'data-action="photo"' in both_full


def test_halted__banner_with_the_reason_on_every_page(mechanic):
    halt_raise(reason="chain check failed at 42", actor="test", channel="command")
    forget_halt_status()

    html = signed_in(mechanic).get("/mechanic/").content.decode()

    assert '<div id="halted-banner" class="banner banner-halted" role="alert">' in html
    assert "chain check failed at 42" in html


# --- Time and profile -------------------------------------------------------------------------------


def test_time__periods_grouped_by_day_with_totals(mechanic):

    from orders.services import time_entry_add

    order = orders_of(mechanic)[0]
    started, ended = span_today(minutes=60)
    time_entry_add(
        order_id=order.pk, mechanic=mechanic, started_at=started, ended_at=ended, notes="brakes"
    )
    client = signed_in(mechanic)

    today = client.get("/mechanic/time?period=today").content.decode()
    yesterday = client.get("/mechanic/time?period=yesterday").content.decode()
    bad = client.get("/mechanic/time?period=custom&from=2026-02-01&to=2026-01-01")

    assert f'id="period-total">{ended - started}<' in today and "brakes" in today
    assert "(manual) · brakes" in today  # told apart from the timer's, as on the order's page
    assert 'id="period-total">0:00:00<' in yesterday
    assert bad.status_code == 200 and "Must not be before from." in bad.content.decode()


def test_profile__phone_saved_and_bad_phone_refused(mechanic):
    client = signed_in(mechanic)

    saved = client.post("/mechanic/profile", {"form": "phone", "phone": "+972 50-123-4567"})
    refused = client.post("/mechanic/profile", {"form": "phone", "phone": "call me"})

    assert "Your phone number was saved." in saved.content.decode()
    assert "Digits, spaces" in refused.content.decode()
    mechanic.refresh_from_db()
    assert mechanic.phone == "+972 50-123-4567"


def test_profile__password_change_keeps_the_session_and_needs_the_current_one(mechanic):
    client = signed_in(mechanic)

    wrong = client.post(
        "/mechanic/profile",
        {"form": "password", "current_password": "nope", "new_password": "a-new-long-password-7"},
    )
    right = client.post(
        "/mechanic/profile",
        {
            "form": "password",
            "current_password": MECHANIC_PASSWORD,
            "new_password": "a-new-long-password-7",
        },
    )

    assert "This is not your current password." in wrong.content.decode()
    assert "Your password was changed." in right.content.decode()
    assert client.get("/mechanic/").status_code == 200  # still signed in
    mechanic.user.refresh_from_db()
    assert mechanic.user.check_password("a-new-long-password-7")


def test_profile__guesses_of_the_current_password_throttled_like_the_api(mechanic, monkeypatch):
    """A session left open is no way to find the password: the form's tries are counted per
    mechanic, at the login's rate, as `POST /api/mechanic/password` counts them."""
    from conclave.throttling import PasswordChangeThrottle

    monkeypatch.setattr(PasswordChangeThrottle, "THROTTLE_RATES", {"login": "3/min"})
    client = signed_in(mechanic)
    change = {"form": "password", "new_password": "a-new-long-password-7"}
    statuses = [
        client.post("/mechanic/profile", {**change, "current_password": f"guess-{n}"}).status_code
        for n in range(4)
    ]
    right = client.post("/mechanic/profile", {**change, "current_password": MECHANIC_PASSWORD})
    elsewhere = signed_in(mechanic).post(
        "/mechanic/profile", {**change, "current_password": MECHANIC_PASSWORD}
    )

    assert statuses == [200, 200, 200, 429]
    assert right.status_code == elsewhere.status_code == 429
    assert int(right["Retry-After"]) > 0
    assert "Too many attempts" in right.content.decode()
    mechanic.user.refresh_from_db()
    assert mechanic.user.check_password(MECHANIC_PASSWORD)


# --- The new-order form -----------------------------------------------------------------------------


@pytest.fixture
def brakes(django_capture_on_commit_callbacks):
    from decimal import Decimal

    from orders.models import Category, Part

    flag_on("ENABLE_PART_CATEGORIES", django_capture_on_commit_callbacks)
    category = Category.objects.create(name_en="Brakes", name_he="בלמים", name_ru="Тормоза")
    pads = Part.objects.create(
        category=category, name_en="Brake pads", name_he="רפידות", name_ru="Колодки",
        price=Decimal("120.50"),
    )  # fmt: skip
    return category, pads


def test_new_order__catalog_and_custom_parts_and_photo_in_one_go(mechanic, brakes):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    category, pads = brakes
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(buffer, "PNG")
    client = signed_in(mechanic)
    assert "Brake pads" in client.get("/mechanic/orders/new").content.decode()

    response = client.post(
        "/mechanic/orders/new",
        {
            "category_id": str(category.pk), "part_ids": [str(pads.pk)],
            "custom_name_0": "Bolt set", "custom_quantity_0": "4", "custom_price_0": "2.25",
            "vin": "test123456789", "original_or_analog": "analog",
            "photo": SimpleUploadedFile("p.png", buffer.getvalue(), content_type="image/png"),
        },
    )  # fmt: skip

    order = Order.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/mechanic/orders/{order.pk}"
    assert (order.vin, order.part_type, order.category, order.mechanic) == (
        "TEST123456789", "Brake pads, Bolt set", "Brakes", mechanic,
    )  # fmt: skip
    assert [(i.name, i.quantity, str(i.unit_price)) for i in order.items.order_by("id")] == [
        ("Brake pads", 1, "120.50"),
        ("Bolt set", 4, "2.25"),
    ]
    assert order.photos.count() == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"vin": "bad"}, "6 to 17 letters and digits."),
        ({"custom_price_0": "free"}, "An amount such as 12.50."),
        ({"original_or_analog": "copy"}, "One of original, analog."),
    ],
)
def test_new_order__any_bad_step__nothing_written_and_the_reason_shown(mechanic, fields, message):
    client = signed_in(mechanic)
    data = {
        "part_type": "Mirror", "vin": "TEST123456789", "original_or_analog": "original",
        "custom_name_0": "Clip", "custom_price_0": "1.00", **fields,
    }  # fmt: skip

    response = client.post("/mechanic/orders/new", data)

    assert response.status_code == 200 and message in response.content.decode()
    assert not Order.objects.exists()


def test_new_order__every_field_s_problem_told_at_once(mechanic):
    data = {"part_type": "Mirror", "vin": "bad", "original_or_analog": "copy"}

    response = signed_in(mechanic).post("/mechanic/orders/new", data)

    page = response.content.decode()
    assert "VIN: 6 to 17 letters and digits." in page
    assert "Original or analog: One of original, analog." in page


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"part_type": ""}, "Part: Name the part you need, or pick it from the catalog."),
        ({"vin": "bad"}, "VIN: 6 to 17 letters and digits."),
        ({"custom_name_0": "Clip", "custom_price_0": "-1"}, "Unit price: An amount from 0"),
        ({"custom_name_0": "Clip", "custom_price_0": " "}, "Unit price: A custom part needs"),
    ],
)
def test_new_order__a_refusal_names_the_field_it_is_about(mechanic, fields, shown):
    data = {"part_type": "Mirror", "vin": "TEST123456789", "original_or_analog": "original",
            **fields}  # fmt: skip

    response = signed_in(mechanic).post("/mechanic/orders/new", data)

    errors = re.search(r'id="order-errors">(.*?)</div>', response.content.decode(), re.S)
    assert errors is not None and shown in errors.group(1)
    assert not Order.objects.exists()


@pytest.mark.parametrize("quantity", ["\u00b2", "9" * 5000])
def test_new_order__quantity_not_digits__the_reason_shown(mechanic, quantity):
    data = {"part_type": "Mirror", "vin": "TEST123456789", "original_or_analog": "original",
            "custom_name_0": "Clip", "custom_quantity_0": quantity}  # fmt: skip

    response = signed_in(mechanic).post("/mechanic/orders/new", data)

    assert response.status_code == 200
    assert "A whole number from 1 to 999." in response.content.decode()
    assert not Order.objects.exists()


def test_new_order__catalog_ids_not_digits__name_no_part(mechanic, brakes):
    category, pads = brakes
    data = {"category_id": "\u00b2", "part_ids": ["\u00b2", "1" * 5000, str(pads.pk)],
            "vin": "TEST123456789", "original_or_analog": "original"}  # fmt: skip

    response = signed_in(mechanic).post("/mechanic/orders/new", data)

    order = Order.objects.get()
    assert response.status_code == 302
    assert [item.name for item in order.items.all()] == ["Brake pads"]


@pytest.mark.parametrize(
    ("categories", "expected"),
    [((), "Brakes"), (("Brakes", "Engine"), "general")],
    ids=["one-category", "two-categories"],
)
def test_new_order__parts_picked_under_any_category__the_order_takes_theirs(
    mechanic, brakes, categories, expected
):
    category, pads = brakes
    parts = [str(pads.pk)]
    if categories:
        engine = Category.objects.create(name_en="Engine")
        parts.append(str(Part.objects.create(category=engine, name_en="Filter", price="9").pk))
    data = {"category_id": "", "part_ids": parts,
            "vin": "TEST123456789", "original_or_analog": "original"}  # fmt: skip

    response = signed_in(mechanic).post("/mechanic/orders/new", data)

    assert response.status_code == 302
    assert Order.objects.get().category == expected


def test_new_order__a_category_deleted_since_the_form_was_shown__refused_naming_it(
    mechanic, brakes
):
    gone = Category.objects.create(name_en="Glass")
    gone_id = gone.pk
    gone.delete()  # by staff, while the mechanic filled in the form
    data = {"category_id": str(gone_id), "part_type": "Windscreen",
            "vin": "TEST123456789", "original_or_analog": "original"}  # fmt: skip

    response = signed_in(mechanic).post("/mechanic/orders/new", data)

    assert response.status_code == 200
    assert f"Category {gone_id} is no longer in the catalog." in response.content.decode()
    assert not Order.objects.exists()


def test_new_order__catalog_switched_off_since_the_form_was_shown__refused_nothing_dropped(
    mechanic, brakes, django_capture_on_commit_callbacks
):
    from flags.services import flag_set

    category, pads = brakes
    client = signed_in(mechanic)
    assert "Brake pads" in client.get("/mechanic/orders/new").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        flag_set(name="ENABLE_PART_CATEGORIES", enabled=False, actor="test")
    data = {"category_id": str(category.pk), "part_ids": [str(pads.pk)], "part_type": "Bolts",
            "vin": "TEST123456789", "original_or_analog": "original"}  # fmt: skip

    response = client.post("/mechanic/orders/new", data)

    page = response.content.decode()
    assert response.status_code == 200
    assert "The parts catalog has been switched off" in page
    assert 'value="Bolts"' in page  # the typed part is kept; the catalog is no longer shown
    assert not Order.objects.exists()


def test_new_order__a_part_deleted_since_the_form_was_shown__refused_naming_it(mechanic, brakes):
    category, pads = brakes
    client = signed_in(mechanic)
    assert "Brake pads" in client.get("/mechanic/orders/new").content.decode()
    gone = Part.objects.create(category=category, name_en="Disc", price="80.00")
    gone_id = gone.pk
    gone.delete()  # by staff, while the mechanic filled in the form
    data = {"category_id": str(category.pk), "part_ids": [str(pads.pk), str(gone_id)],
            "vin": "TEST123456789", "original_or_analog": "original"}  # fmt: skip

    response = client.post("/mechanic/orders/new", data)

    assert response.status_code == 200
    assert f"Part {gone_id} is no longer in the catalog." in response.content.decode()
    assert not Order.objects.exists()


def test_new_order__more_parts_than_an_order_holds__refused_before_any_is_looked_up(
    mechanic, brakes, django_assert_max_num_queries
):
    from orders.services.items import ORDER_LINES_MAX_COUNT

    category, pads = brakes
    client = signed_in(mechanic)
    data = {"category_id": str(category.pk), "part_ids": [str(pads.pk)] * (ORDER_LINES_MAX_COUNT + 1),
            "vin": "TEST123456789", "original_or_analog": "original"}  # fmt: skip

    # the flags, the session, the user, the mechanic, the form's catalog (categories, parts),
    # and the refused transaction (its savepoint, the mechanic's user): no part is held, no
    # line written (101 lines took 1,530 queries before being refused)
    with django_assert_max_num_queries(10):
        response = client.post("/mechanic/orders/new", data)

    assert response.status_code == 200
    assert f"At most {ORDER_LINES_MAX_COUNT} parts on one order." in response.content.decode()
    assert not Order.objects.exists()


def test_new_order__sent_twice__one_order_both_answers_show_it(mechanic):
    import re

    client = signed_in(mechanic)
    form = client.get("/mechanic/orders/new").content.decode()
    (key,) = re.findall(r'name="idempotency_key" value="([0-9a-f]{32})"', form)
    data = {"idempotency_key": key, "part_type": "Mirror", "vin": "TEST123456789",
            "original_or_analog": "original"}  # fmt: skip

    first = client.post("/mechanic/orders/new", data)
    again = client.post("/mechanic/orders/new", data)  # a double click, or a resend

    order = Order.objects.get()
    assert first["Location"] == again["Location"] == f"/mechanic/orders/{order.pk}"


def test_new_order__sent_then_changed_and_sent_again__asked_to_confirm_then_made(mechanic):
    import re

    client = signed_in(mechanic)
    data = {"idempotency_key": "a" * 32, "part_type": "Mirror", "vin": "TEST123456789",
            "original_or_analog": "original"}  # fmt: skip
    client.post("/mechanic/orders/new", data)

    changed = client.post("/mechanic/orders/new", {**data, "part_type": "Wiper"})

    page = changed.content.decode()
    assert changed.status_code == 200 and "This order was sent already." in page
    assert Order.objects.count() == 1
    (key,) = re.findall(r'name="idempotency_key" value="([0-9a-f]{32})"', page)
    confirmed = client.post(
        "/mechanic/orders/new", {**data, "part_type": "Wiper", "idempotency_key": key}
    )
    assert confirmed.status_code == 302
    assert sorted(Order.objects.values_list("part_type", flat=True)) == ["Mirror", "Wiper"]


# --- Static files -----------------------------------------------------------------------------------


def test_static_files__hashed_names_cached_for_a_year(tmp_path):
    """As the image serves them (collected at build time with the production settings): with
    content hashes in their names, so whitenoise lets browsers keep them for good."""
    from tests.conftest import clean_env, run_manage

    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.production",
        SECRET_KEY="static-files-test-placeholder-value-not-a-secret-0000000000000",
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL="postgres://build@localhost/build",
        REDIS_URL="redis://localhost:6379/0",
        ENVIRONMENT="staging",
        DEV_MODE="true",
        STATIC_ROOT=str(tmp_path / "static"),
        CONCLAVE_VAR_DIR=str(tmp_path / "var"),
    )
    collected = run_manage("collectstatic", "--noinput", "-v0", env=env, timeout=180)
    assert collected.returncode == 0, collected.stderr
    code = (
        "from django.test import Client; from django.templatetags.static import static;"
        "url = static('mechanic/app.js');"
        "r = Client(HTTP_HOST='127.0.0.1').get(url, secure=True);"
        "print(url, r.status_code, r['Cache-Control'])"
    )
    served = run_manage("shell", "--no-imports", "-c", code, env=env)

    url, status, cache = served.stdout.strip().splitlines()[-1].split(" ", 2)
    assert re.fullmatch(r"/static/mechanic/app\.[0-9a-f]{12}\.js", url), served.stdout
    assert status == "200"
    assert "max-age=315360000" in cache and "immutable" in cache
