"""The mechanic UI in a real browser: Debian's headless Chromium driven by Playwright against
gunicorn serving a database of the module's own, with no console error allowed on any page."""

import io
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Request, Route, expect, sync_playwright

from tests.conftest import clean_env, gunicorn, run_manage, scratch_databases
from tests.http import call
from tests.workshop import MECHANIC_PASSWORD, RUNBOOK_ORDER, span_today

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="chromium: make test installs it"
)


@dataclass
class Workshop:
    """The product running for the browser: gunicorn's URL, its environment and the signed-in
    mechanic's API token (to set the scene through the API, as a client would)."""

    base: str
    env: dict[str, str]
    token: str

    def manage(self, *args: str) -> str:
        result = run_manage(*args, env=self.env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        status, data = call(
            method, f"{self.base}{path}", body=body,
            headers={"Authorization": f"Bearer {self.token}"},
        )  # fmt: skip
        assert 200 <= status < 300, (status, data)
        return data

    def order(self, **fields) -> int:
        return self.api("POST", "/api/orders", {**RUNBOOK_ORDER, **fields})["id"]

    def flag(self, name: str, on: bool) -> None:
        self.manage("flags", "on" if on else "off", name)

    def login_link(self, order_id: int) -> str:
        code = (
            "from orders.models import MechanicProfile, Order;"
            "from orders.services.login_links import login_link_issue;"
            f"print(login_link_issue(mechanic=MechanicProfile.objects.get(user__username='mika'),"
            f" order=Order.objects.get(pk={order_id})))"
        )
        return self.manage("shell", "--no-imports", "-c", code).strip().splitlines()[-1]


def _workshop(tmp_path, name: str, **overrides: str) -> Iterator[Workshop]:
    with scratch_databases() as make:
        env = clean_env(
            DJANGO_SETTINGS_MODULE="conclave.settings.test",
            DATABASE_URL=make(name).url,
            REDIS_URL="redis://127.0.0.1:6379/15",
            HALT_REDIS_PREFIX=f"ui-{uuid.uuid4().hex[:8]}",
            SIGNING_KEY_DIR=str(tmp_path / "keys"),
            CONCLAVE_VAR_DIR=str(tmp_path / "var"),
            MEDIA_ROOT=str(tmp_path / "media"),  # gunicorn's two workers share the photos
            EVENT_INTEGRATION="inline",
            THROTTLE_RATE_LOGIN="",
            LOG_LEVEL="WARNING",
            **overrides,
        )
        for step in (["migrate", "-v0"], ["keys", "bootstrap"],
                     ["create_mechanic", "mika", "--password", MECHANIC_PASSWORD]):  # fmt: skip
            result = run_manage(*step, env=env, timeout=120)
            assert result.returncode == 0, result.stderr
        with gunicorn(env) as base:
            status, body = call("POST", f"{base}/api/mechanic/login",
                                body={"username": "mika", "password": MECHANIC_PASSWORD})  # fmt: skip
            assert status == 200, body
            yield Workshop(base=base, env=env, token=body["token"])


@pytest.fixture(scope="module")
def workshop(tmp_path_factory) -> Iterator[Workshop]:
    yield from _workshop(tmp_path_factory.mktemp("ui"), "conclave_ui")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _page(
    browser: Browser, base: str, timezone_id: str = "UTC", refused: tuple[int, ...] = (503,)
) -> Iterator[Page]:
    """A page of a new browser context whose clock is in `timezone_id`; at the end, no error
    in its console but the failed requests of the `refused` statuses the test expects."""
    context = browser.new_context(base_url=base, timezone_id=timezone_id)
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.text} {m.location.get('url')}") if m.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    context.close()
    # A refused request shows in the console as a failed resource: only the expected ones.
    expected = tuple(f"status of {status}" for status in refused)
    assert [p for p in problems if not any(e in p for e in expected)] == [], "console errors"


@pytest.fixture
def page(browser, workshop) -> Iterator[Page]:
    yield from _page(browser, workshop.base)


def sign_in(page: Page, password: str = MECHANIC_PASSWORD) -> None:
    page.goto("/mechanic/login")
    page.get_by_label("Username").fill("mika")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_login__wrong_then_right_password(page, workshop):
    order = workshop.order()

    sign_in(page, password="wrong-password")
    expect(page.locator("#login-error")).to_have_text("Wrong username or password.")
    sign_in(page)

    expect(page).to_have_url(re.compile(r"/mechanic/$"))
    expect(page.locator(f'[data-order="{order}"]')).to_contain_text("brake_pads")
    assert page.evaluate("() => window.localStorage.length") == 0


def test_one_time_link__opens_the_order(page, workshop):
    order = workshop.order()
    token = workshop.login_link(order)

    page.goto(f"/mechanic/login/link/{token}")

    expect(page).to_have_url(re.compile(rf"/mechanic/orders/{order}$"))
    expect(page.locator("#order-vin")).to_have_text("TEST123456789")


def test_dashboard__filters_kept_in_the_url_and_car_numbers(page, workshop):
    workshop.flag("ENABLE_CAR_NUMBER", True)
    try:
        new = workshop.order()
        started = workshop.order(car_number="55-555-55")
        workshop.api("PATCH", f"/api/mechanic/orders/{started}/status", {"status": "in_progress"})
        sign_in(page)
        assert int(page.locator("#stat-in-progress").inner_text()) >= 1

        page.locator("[data-filter=in_progress]").click()
        expect(page).to_have_url(re.compile(r"\?status=in_progress$"))
        page.reload()

        card = page.locator(f'[data-order="{started}"]')
        expect(card.locator(".order-car-number")).to_have_text("55-555-55")
        expect(page.locator(f'[data-order="{new}"]')).to_have_count(0)
    finally:
        workshop.flag("ENABLE_CAR_NUMBER", False)


def test_order__status_comment_and_timer(page, workshop):
    order = workshop.order()
    sign_in(page)
    page.locator(f'[data-order="{order}"] a').click()

    page.get_by_role("button", name="Start work").click()
    expect(page.locator("#order-status")).to_have_text("In progress")
    expect(page.get_by_role("button", name="Mark ready")).to_be_visible()

    page.get_by_label("New comment").fill("   ")
    page.get_by_role("button", name="Add the comment").click()
    expect(page.locator("#toast")).to_contain_text("cannot be empty")
    page.get_by_label("New comment").fill("Pads are on the shelf")
    page.get_by_role("button", name="Add the comment").click()
    expect(page.locator("#comments")).to_contain_text("Pads are on the shelf")
    expect(page.get_by_label("New comment")).to_have_value("")  # sent: not typed again

    page.get_by_role("button", name="Start the timer").click()
    running = page.locator("#timer-running")
    expect(running).to_have_text(re.compile(r"0:00:0\d"))
    expect(running).not_to_have_text("0:00:00", timeout=3000)  # it ticks
    page.get_by_role("button", name="Stop the timer").click()
    expect(page.get_by_role("button", name="Start the timer")).to_be_visible()
    entries = workshop.api("GET", f"/api/orders/{order}/time")["entries"]
    assert len(entries) == 1 and entries[0]["ended_at"] is not None


def test_order__a_page_drawn_before_the_order_moved__says_so_and_shows_it_as_it_is(
    browser, workshop
):
    for page in _page(browser, workshop.base, refused=(409,)):
        order = workshop.order()
        sign_in(page)
        page.locator(f'[data-order="{order}"] a').click()
        expect(page.get_by_role("button", name="Start work")).to_be_visible()
        # Moved meanwhile elsewhere (another tab, the phone): the page still offers it.
        workshop.api("PATCH", f"/api/mechanic/orders/{order}/status", {"status": "in_progress"})

        page.get_by_role("button", name="Start work").click()

        expect(page.locator("#toast")).to_have_text(
            f"Order {order} is in progress. Its status can change to: ready, cancelled."
        )
        expect(page.locator("#order-status")).to_have_text("In progress")
        expect(page.get_by_role("button", name="Mark ready")).to_be_visible()
        expect(page.get_by_role("button", name="Start work")).to_have_count(0)


def test_order__labour_sent_after_the_order_was_cancelled_elsewhere__said_and_shown_as_it_is(
    browser, workshop
):
    """Cancelled elsewhere (another device) while its page, showing it open, had labour being
    typed: the refusal is told and the page shows the order as it is now, with nothing left
    to add to it."""
    for page in _page(browser, workshop.base, refused=(409,)):
        order = workshop.order()
        sign_in(page)
        page.goto(f"/mechanic/orders/{order}")
        page.get_by_text("Add labour").click()
        page.get_by_label("Labour", exact=True).fill("Fit the pads")
        page.get_by_label("Price", exact=True).fill("30")
        workshop.api("PATCH", f"/api/mechanic/orders/{order}/status", {"status": "cancelled"})

        page.get_by_role("button", name="Add the labour").click()

        expect(page.locator("#toast")).to_have_text(
            f"Order {order} is cancelled; it can no longer be changed."
        )
        expect(page.locator("#order-status")).to_have_text("Cancelled")
        expect(page.get_by_text("Add labour")).to_have_count(0)
        assert workshop.api("GET", f"/api/orders/{order}")["works"] == []


def test_order__cancelling_is_asked_about_first(page, workshop):
    order = workshop.order()
    sign_in(page)
    page.locator(f'[data-order="{order}"] a').click()
    asked = []

    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Cancel the order").click()
    expect(page.get_by_role("button", name="Cancel the order")).to_be_visible()
    assert workshop.api("GET", f"/api/orders/{order}")["status"] == "new"
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel the order").click()

    expect(page.locator("#order-status")).to_have_text("Cancelled")
    assert asked == [f"Cancel order #{order}? A cancelled order cannot be reopened."]


def correcting(page: Page, workshop: Workshop) -> int:
    """A new order of the mechanic's, its page open at the correction form; its id."""
    order = workshop.order()
    sign_in(page)
    page.goto(f"/mechanic/orders/{order}")
    page.get_by_text("Correct the order").click()
    return order


def test_order__a_vin_typed_wrong_corrected_on_the_order_page(browser, workshop):
    for page in _page(browser, workshop.base, refused=(400,)):
        order = correcting(page, workshop)
        page.get_by_role("button", name="Save the correction").click()
        expect(page.locator("#toast")).to_have_text("Give at least one field to change.")
        page.locator("#correct-vin").fill("AB-1234")
        page.get_by_role("button", name="Save the correction").click()
        expect(page.locator("#toast")).to_contain_text("VIN: ")
        page.locator("#correct-vin").fill("test123456780")
        page.get_by_label("Original or analog").select_option("analog")
        page.get_by_role("button", name="Save the correction").click()

        expect(page.locator("#order-vin")).to_have_text("TEST123456780")
        expect(page.locator("#correct-vin")).to_have_value("TEST123456780")  # drawn afresh
        detail = workshop.api("GET", f"/api/orders/{order}")
        assert (detail["vin"], detail["original_or_analog"], detail["part_type"]) == (
            "TEST123456780",
            "analog",
            "brake_pads",
        )


def test_order__a_field_changed_elsewhere_since_the_page_showed_it__told_not_overwritten(
    browser, workshop
):
    """The page's correction is made against what it showed: a field changed elsewhere since
    (staff in the admin, another device) is told with its value now and nothing is written;
    saving again replaces it knowingly. A field changed elsewhere that the page did not
    touch is kept."""
    for page in _page(browser, workshop.base):
        order = correcting(page, workshop)
        page.locator("#correct-vin").fill("TEST123456780")
        page.locator("#correct-part").fill("Brake discs")
        workshop.api("PATCH", f"/api/orders/{order}", {
            "vin": "TEST123456781", "part_type": "Pads $& discs", "original_or_analog": "analog",
        })  # fmt: skip

        page.get_by_role("button", name="Save the correction").click()
        expect(page.locator("#toast")).to_have_text(
            "VIN was changed meanwhile, it is now “TEST123456781”. Save again to replace it."
            " Part was changed meanwhile, it is now “Pads $& discs”. Save again to replace it."
        )
        told = workshop.api("GET", f"/api/orders/{order}")
        # The order's details drawn as they are now, the form as typed but for the field
        # changed elsewhere that the page did not touch, which shows its value now.
        expect(page.locator("#order-vin")).to_have_text("TEST123456781")
        expect(page.locator("#correct-vin")).to_have_value("TEST123456780")
        expect(page.locator("#correct-part")).to_have_value("Brake discs")
        expect(page.locator("#correct-origin")).to_have_value("analog")
        page.get_by_role("button", name="Save the correction").click()
        expect(page.locator("#order-vin")).to_have_text("TEST123456780")

        assert (told["vin"], told["part_type"]) == ("TEST123456781", "Pads $& discs")
        detail = workshop.api("GET", f"/api/orders/{order}")
        assert (detail["vin"], detail["part_type"], detail["original_or_analog"]) == (
            "TEST123456780", "Brake discs", "analog",
        )  # fmt: skip


def test_order__a_change_between_the_page_s_read_and_its_write__412_and_the_order_now(
    browser, workshop
):
    """The correction reads the order, then writes If-Match that read: a change that lands
    between the two (another device, within milliseconds) is not overwritten; the page says
    so and shows the order as it is now, the form as typed."""
    for page in _page(browser, workshop.base, refused=(412,)):
        order = correcting(page, workshop)
        page.locator("#correct-vin").fill("TEST123456780")

        url = f"/api/orders/{order}"

        def meanwhile(route: Route, request: Request) -> None:
            if request.method == "PATCH":  # after the page's read, before its write
                workshop.api("PATCH", urlsplit(request.url).path, {"vin": "TEST123456781"})
            route.continue_()

        page.route(f"**{url}", meanwhile)
        page.get_by_role("button", name="Save the correction").click()

        expect(page.locator("#toast")).to_have_text(
            "It changed while this was being sent: look at it again."
        )
        expect(page.locator("#order-vin")).to_have_text("TEST123456781")
        expect(page.locator("#correct-vin")).to_have_value("TEST123456780")
        assert workshop.api("GET", url)["vin"] == "TEST123456781"


def test_order__a_field_set_elsewhere_to_what_the_page_typed__not_told_as_changed(
    browser, workshop
):
    """Both sides made the same correction: nothing to tell, nothing to write twice; the
    page's other change is sent."""
    for page in _page(browser, workshop.base):
        order = correcting(page, workshop)
        page.locator("#correct-vin").fill("TEST123456780")
        page.locator("#correct-part").fill("Brake discs")
        workshop.api("PATCH", f"/api/orders/{order}", {"vin": "TEST123456780"})

        page.get_by_role("button", name="Save the correction").click()

        expect(page.locator("#correct-part")).to_have_value("Brake discs")
        expect(page.get_by_text("Brake discs", exact=True)).to_be_visible()  # the details
        expect(page.locator("#toast")).to_be_hidden()
        detail = workshop.api("GET", f"/api/orders/{order}")
        assert (detail["vin"], detail["part_type"]) == ("TEST123456780", "Brake discs")
        corrections = [
            event["payload"]["changes"]
            for event in workshop.api(
                "GET", "/v1/observer/events?event_type=order.updated&limit=1000"
            )["events"]
            if event["payload"]["order_id"] == order
        ]
        assert [sorted(changes) for changes in corrections] == [["vin"], ["part_type"]]


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(buffer, "PNG")
    return buffer.getvalue()


def test_order__parts_labour_and_a_photo_added_and_taken_off(browser, workshop):
    """What the API lets a mechanic add to their open order, the order's page does too: a
    part found later, from the catalog or named, the labour, a photo; and takes a line off."""
    workshop.manage("shell", "--no-imports", "-c", (
        "from django.contrib.auth.models import User;"
        "from orders.services.catalog import category_create, part_create;"
        "staff = User.objects.create(username='stella', is_staff=True);"
        "brakes = category_create(actor=staff, name_en='Brakes');"
        "part_create(actor=staff, category_id=brakes.pk, name_en='Brake disc',"
        " part_number='BD-9', price='80.00')"
    ))  # fmt: skip
    workshop.flag("ENABLE_PART_CATEGORIES", True)
    try:
        for page in _page(browser, workshop.base, refused=(400,)):
            order = workshop.order()
            sign_in(page)
            page.goto(f"/mechanic/orders/{order}")

            page.get_by_text("Add a part").click()
            part = page.locator("form[data-action=item]")
            part.get_by_label("Name").fill("Brake pads")
            part.get_by_label("Quantity").fill("2")
            part.get_by_role("button", name="Add the part").click()
            expect(page.locator("#toast")).to_have_text(
                "Unit price: A custom part needs its unit price."
            )
            part.get_by_label("Unit price").fill("12,50")  # a decimal comma, as many write it
            part.get_by_role("button", name="Add the part").click()
            expect(page.locator("#order-total")).to_have_text("25.00")
            expect(part.get_by_label("Name")).to_have_value("")  # emptied, left open
            page.get_by_label("From the catalog").select_option(label="Brake disc (BD-9) · 80.00")
            page.get_by_role("button", name="Add the part").click()
            expect(page.locator("#order-total")).to_have_text("105.00")

            page.get_by_text("Add labour").click()
            page.get_by_label("Labour", exact=True).fill("Fit the pads")
            page.get_by_label("Price", exact=True).fill("30")
            page.get_by_label("Estimated minutes").fill("45")
            page.get_by_role("button", name="Add the labour").click()
            expect(page.locator("#order-total")).to_have_text("135.00")

            page.get_by_text("Add a photo").click()
            page.locator("#order-photo").set_input_files(
                files=[{"name": "pads.png", "mimeType": "image/png", "buffer": _png()}]
            )
            page.get_by_role("button", name="Add the photo").click()
            expect(page.locator("[data-photo]")).to_have_count(1)

            page.once("dialog", lambda dialog: dialog.accept())
            page.get_by_role("button", name="Remove Fit the pads").click()
            expect(page.locator("#order-total")).to_have_text("105.00")

            detail = workshop.api("GET", f"/api/orders/{order}")
            assert [(i["name"], i["quantity"], i["part_id"] is None) for i in detail["items"]] == [
                ("Brake pads", 2, True),
                ("Brake disc", 1, False),
            ]
            assert (detail["works"], len(detail["photos"])) == ([], 1)
            for status in ("in_progress", "ready", "completed"):
                workshop.api("PATCH", f"/api/mechanic/orders/{order}/status", {"status": status})
            page.reload()  # a finished order takes nothing more
            expect(page.get_by_text("Add a part")).to_have_count(0)
            expect(page.get_by_role("button", name="Remove")).to_have_count(0)
    finally:
        workshop.flag("ENABLE_PART_CATEGORIES", False)


def test_halted__a_refused_change_raises_the_banner_with_the_reason(browser, tmp_path):
    # A world of its own: only the keepers' ceremony clears a halt.
    for workshop in _workshop(tmp_path, "conclave_ui_halt"):
        for page in _page(browser, workshop.base):
            order = workshop.order()
            sign_in(page)
            page.goto(f"/mechanic/orders/{order}")
            expect(page.locator("#halted-banner")).to_be_hidden()
            workshop.manage("halt", "raise", "--reason", "integrity check failed at 7")

            page.get_by_role("button", name="Start work").click()

            expect(page.locator("#halted-banner")).to_be_visible(timeout=10000)
            expect(page.locator("#halted-reason")).to_have_text("integrity check failed at 7")
            assert workshop.api("GET", f"/api/orders/{order}")["status"] == "new"
            status = json.loads(workshop.manage("halt", "status"))
            assert status["halted"] is True


def add_by_hand(page: Page, start: str, end: str) -> None:
    """Time added with the order page's form (datetime-local values, the browser's clock)."""
    page.get_by_text("Add time by hand").click()
    page.get_by_label("Start", exact=True).fill(start)
    page.get_by_label("End", exact=True).fill(end)
    page.get_by_label("Notes", exact=True).fill("gearbox")
    page.get_by_role("button", name="Add", exact=True).click()


def test_manual_time__the_workshops_clock_typed_and_shown__an_overlap_refused(browser, tmp_path):
    """A workshop in Jerusalem and a mechanic's phone set to New York: the time typed by hand
    is the workshop's, the time shown, the API holds it in UTC, and an entry over it is
    refused in words."""
    for workshop in _workshop(tmp_path, "conclave_ui_zone", TIME_ZONE="Asia/Jerusalem"):
        for page in _page(browser, workshop.base, timezone_id="America/New_York", refused=(409,)):
            order = workshop.order()
            sign_in(page)
            page.goto(f"/mechanic/orders/{order}")

            add_by_hand(page, "2026-01-05T10:00", "2026-01-05T11:30")
            expect(page.locator(".entries")).to_contain_text("2026-01-05 10:00 – 11:30")
            entries = workshop.api("GET", f"/api/orders/{order}/time")["entries"]
            assert [(e["started_at"], e["ended_at"]) for e in entries] == [
                ("2026-01-05T08:00:00Z", "2026-01-05T09:30:00Z")
            ]
            page.reload()
            add_by_hand(page, "2026-01-05T11:00", "2026-01-05T12:00")
            expect(page.locator("#toast")).to_contain_text(
                f"overlaps your entry on order {order}, from 2026-01-05 10:00 to 2026-01-05 11:30"
            )
            # The page shows the order as it is now, the refused form as typed.
            expect(page.get_by_label("Start", exact=True)).to_have_value("2026-01-05T11:00")
            expect(page.get_by_label("Notes", exact=True)).to_have_value("gearbox")
            assert len(workshop.api("GET", f"/api/orders/{order}/time")["entries"]) == 1


@pytest.mark.parametrize("refresh", [False, True])
def test_both_looks__complete_and_fit_a_360_px_phone(page, workshop, refresh):
    workshop.flag("ENABLE_UI_REFRESH", refresh)
    order = workshop.order()
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page)

    for path in ("/mechanic/", f"/mechanic/orders/{order}"):
        page.goto(path)
        theme = "theme-refresh" if refresh else "theme-classic"
        expect(page.locator("body")).to_have_class(theme)
        stylesheets = page.evaluate("() => [...document.styleSheets].map(s => s.href)")
        assert any(s.endswith("/refresh.css") for s in stylesheets) == refresh
        assert all(s.endswith(("/classic.css", "/refresh.css")) for s in stylesheets)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 360, path


def test_time_history__periods_and_totals(page, workshop):
    order = workshop.order()
    # Before the time the module's other tests timed today: a manual entry overlaps none.
    today = workshop.api("GET", "/api/mechanic/time?period=today")["days"]
    timed = [datetime.fromisoformat(e["started_at"]) for day in today for e in day["entries"]]
    started, ended = span_today(minutes=90, ending_by=min(timed, default=None))
    workshop.api(
        "POST",
        f"/api/orders/{order}/time",
        {"started_at": started.isoformat(), "ended_at": ended.isoformat(), "notes": "gearbox"},
    )
    sign_in(page)

    page.get_by_role("link", name="My time").click()
    expect(page.locator(".day").first).to_contain_text("gearbox")
    total_today = page.locator("#period-total").inner_text()
    page.locator("[data-period=yesterday]").click()

    expect(page).to_have_url(re.compile(r"period=yesterday"))
    expect(page.locator("#period-total")).to_have_text("0:00:00")
    # (other tests of the module may have timed a few seconds today on other orders)
    hours, minutes, seconds = map(int, total_today.split(":"))
    assert hours * 3600 + minutes * 60 + seconds >= (ended - started).total_seconds()


def test_profile__password_change_then_sign_in_with_it(page, workshop):
    new_password = "a-brand-new-password-4"
    sign_in(page)
    page.get_by_role("link", name="Profile").click()

    page.get_by_label("Current password").fill(MECHANIC_PASSWORD)
    page.get_by_label("New password").fill(new_password)
    page.get_by_role("button", name="Change the password").click()
    expect(page.locator("#saved")).to_have_text("Your password was changed.")
    page.get_by_role("button", name="Log out").click()
    sign_in(page, password=new_password)
    expect(page).to_have_url(re.compile(r"/mechanic/$"))

    # Back to the module's password, through the same form.
    page.goto("/mechanic/profile")
    page.get_by_label("Current password").fill(new_password)
    page.get_by_label("New password").fill(MECHANIC_PASSWORD)
    page.get_by_role("button", name="Change the password").click()
    expect(page.locator("#saved")).to_be_visible()
    # A password change revokes the user's API tokens: the scene-setting client signs in again.
    status, body = call("POST", f"{workshop.base}/api/mechanic/login",
                        body={"username": "mika", "password": MECHANIC_PASSWORD})  # fmt: skip
    assert status == 200
    workshop.token = body["token"]


def test_new_order__step_by_step_then_the_order_page(page, workshop):
    sign_in(page)
    page.get_by_role("link", name="New order").click()

    expect(page.locator("[data-step='2']")).to_be_hidden()  # one step at a time
    page.get_by_label("Part", exact=True).fill("Radiator hose")
    page.get_by_text("Custom parts with a price").click()
    page.locator("[name=custom_name_0]").fill("Clamp")
    page.locator("[name=custom_quantity_0]").fill("2")
    page.locator("[name=custom_price_0]").fill("3.40")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()  # an empty VIN is not accepted
    expect(page.locator("[data-step='2']")).to_be_visible()
    page.get_by_label("VIN").fill("RAD123456789")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Analog").check()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()  # no photo
    expect(page.locator("#review")).to_contain_text("RAD123456789")
    expect(page.locator("#review")).to_contain_text("Radiator hose")
    page.get_by_role("button", name="Send the order").click()

    expect(page).to_have_url(re.compile(r"/mechanic/orders/\d+$"))
    expect(page.locator("#order-vin")).to_have_text("RAD123456789")
    expect(page.locator("#order-total")).to_have_text("6.80")


def test_new_order__a_photo_over_the_limit_refused_as_it_is_chosen(page, workshop):
    sign_in(page)
    page.get_by_role("link", name="New order").click()
    page.get_by_label("Part", exact=True).fill("Mirror")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("VIN").fill("MIR123456789")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Original", exact=True).check()
    page.get_by_role("button", name="Next").click()
    big = {"name": "car.jpg", "mimeType": "image/jpeg", "buffer": b"\xff" * (8 * 1024 * 1024 + 1)}

    page.locator("#photo").set_input_files(big)
    page.get_by_role("button", name="Next").click()

    expect(page.locator("[data-step='4']")).to_be_visible()  # not on to the review
    message = page.locator("#photo").evaluate("field => field.validationMessage")
    assert message == "This photo is over 8 MiB: choose a smaller one."
    page.locator("#photo").set_input_files([])
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#review")).to_contain_text("MIR123456789")


def test_lists_refresh_on_focus_and_every_30_s_without_a_reload(page, workshop):
    page.clock.install()
    sign_in(page)
    page.evaluate("() => { window.notReloaded = true; }")

    by_focus = workshop.order(vin="FOCUS1234567")
    page.evaluate("() => window.dispatchEvent(new Event('focus'))")
    expect(page.locator(f'[data-order="{by_focus}"]')).to_be_visible()

    by_timer = workshop.order(vin="TIMER1234567")
    page.clock.run_for(29_000)
    expect(page.locator(f'[data-order="{by_timer}"]')).to_have_count(0)
    page.clock.run_for(2_000)
    expect(page.locator(f'[data-order="{by_timer}"]')).to_be_visible()
    assert page.evaluate("() => window.notReloaded") is True


def test_order_refresh__keeps_what_is_being_typed_and_the_open_forms(page, workshop):
    """The order page refreshes on focus and every 30 s (the status, the time, the comments):
    a comment half typed, or the hand-typed time opened, must outlive it (the mechanic
    switching to another app to copy something back gives the window its focus again)."""
    order = workshop.order()
    sign_in(page)
    page.goto(f"/mechanic/orders/{order}")
    page.get_by_label("New comment").fill("Half a sent")
    page.get_by_text("Add time by hand").click()
    page.get_by_label("Notes").fill("gearbox")

    workshop.api("PATCH", f"/api/mechanic/orders/{order}/status", {"status": "in_progress"})
    page.get_by_label("New comment").focus()
    page.evaluate("() => window.dispatchEvent(new Event('focus'))")

    expect(page.locator("#order-status")).to_have_text("In progress")  # refreshed
    expect(page.get_by_label("New comment")).to_have_value("Half a sent")
    expect(page.get_by_label("New comment")).to_be_focused()
    expect(page.get_by_label("Notes")).to_be_visible()
    expect(page.get_by_label("Notes")).to_have_value("gearbox")
    page.keyboard.type("ence")  # on where it was left
    expect(page.get_by_label("New comment")).to_have_value("Half a sentence")


def _switch(page: Page, language: str) -> None:
    page.locator(f".language-switcher [data-language={language}]").click()
    expect(page.locator("html")).to_have_attribute("lang", language)


def test_languages__hebrew_right_to_left_kept_after_reload_then_russian(page, workshop):
    workshop.flag("ENABLE_MECH_I18N", True)
    order = workshop.order()
    try:
        sign_in(page)
        _switch(page, "he")
        page.reload()

        html = page.locator("html")
        expect(html).to_have_attribute("dir", "rtl")
        expect(page.get_by_role("heading", level=1)).to_have_text("ההזמנות שלי")
        brand = page.locator(".brand").bounding_box()
        assert brand["x"] > page.viewport_size["width"] / 2  # the header is mirrored
        for path in ("/mechanic/", f"/mechanic/orders/{order}", "/mechanic/orders/new",
                     "/mechanic/time", "/mechanic/profile"):  # fmt: skip
            page.goto(path)
            expect(html).to_have_attribute("dir", "rtl")
            text = page.locator("body").inner_text()
            assert "undefined" not in text and "Dashboard" not in text, path

        _switch(page, "ru")
        expect(html).to_have_attribute("dir", "ltr")
        page.goto(f"/mechanic/orders/{order}")
        page.get_by_role("button", name="Начать работу").click()
        expect(page.locator("#order-status")).to_have_text("В работе")
        page.get_by_role("button", name="Остановить таймер").or_(
            page.get_by_role("button", name="Запустить таймер")
        ).first.click()
        page.get_by_role("button", name="Запустить таймер").or_(
            page.get_by_role("button", name="Остановить таймер")
        ).first.wait_for()

        workshop.flag("ENABLE_MECH_I18N", False)  # off: English, and no switcher
        page.reload()
        expect(html).to_have_attribute("lang", "en")
        expect(page.locator(".language-switcher")).to_have_count(0)
    finally:
        workshop.flag("ENABLE_MECH_I18N", True)
        page.goto("/mechanic/")
        _switch(page, "en")
        workshop.flag("ENABLE_MECH_I18N", False)


SCREENSHOTS = os.environ.get("SCREENSHOT_DIR", "")


def test_screenshots__dashboard_in_english_and_hebrew_classic_and_refreshed(
    page, workshop, tmp_path
):
    """The README's pictures (`make screenshots` writes them to docs/screenshots/); here they
    are also told apart: each look and each language renders differently."""
    from pathlib import Path

    target = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    shots = {}
    for flag in ("ENABLE_MECH_I18N", "ENABLE_CAR_NUMBER"):
        workshop.flag(flag, True)
    try:
        for vin, car, part, status in (
            ("SHOT12345678", "12-345-67", "Brake pads", None),
            ("SHOT22345678", "45-678-90", "Oil filter", "in_progress"),
            ("SHOT32345678", "78-901-23", "Timing belt", "in_progress"),
        ):
            order = workshop.order(vin=vin, car_number=car, part_type=part)
            if status:
                workshop.api("PATCH", f"/api/mechanic/orders/{order}/status", {"status": status})
        page.set_viewport_size({"width": 1000, "height": 640})
        sign_in(page)
        for look in ("classic", "refresh"):
            workshop.flag("ENABLE_UI_REFRESH", look == "refresh")
            for language in ("en", "he"):
                page.goto("/mechanic/")
                if page.locator("html").get_attribute("lang") != language:
                    _switch(page, language)
                path = target / f"dashboard-{language}-{look}.png"
                page.screenshot(path=str(path), full_page=False)
                shots[(language, look)] = path.read_bytes()
    finally:
        page.goto("/mechanic/")
        if page.locator("html").get_attribute("lang") != "en":
            _switch(page, "en")
        for flag in ("ENABLE_MECH_I18N", "ENABLE_CAR_NUMBER", "ENABLE_UI_REFRESH"):
            workshop.flag(flag, False)
    assert len(set(shots.values())) == 4
    assert all(shot.startswith(b"\x89PNG") and len(shot) > 10_000 for shot in shots.values())


# Every visible text's WCAG 2 contrast against the background it sits on (walking up to the
# first opaque ancestor), and every form control's accessible label.
AUDIT = """() => {
  const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const rgba = (value) => (value.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (element) => {
    for (let e = element; e; e = e.parentElement) {
      const [r, g, b, a = 1] = rgba(getComputedStyle(e).backgroundColor);
      if (a > 0.5) return [r, g, b];
    }
    return [255, 255, 255]; // the canvas
  };
  const low = [];
  for (const element of document.querySelectorAll("body *")) {
    const text = [...element.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent.trim()).join("");
    if (!text || !element.getClientRects().length || element.closest("[hidden]")) continue;
    const style = getComputedStyle(element);
    if (style.visibility === "hidden" || style.opacity === "0") continue;
    const [l1, l2] = [luminance(rgba(style.color)), luminance(background(element))].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) low.push(`${text.slice(0, 30)}: ${ratio.toFixed(2)}`);
  }
  const unlabelled = [...document.querySelectorAll("input, select, textarea")]
    .filter((f) => f.type !== "hidden" && !(f.labels && f.labels.length) && !f.getAttribute("aria-label"))
    .map((f) => f.name);
  return { low, unlabelled };
}"""


@pytest.mark.parametrize("refresh", [False, True])
def test_accessibility__labels_contrast_and_keyboard(page, workshop, refresh):
    workshop.flag("ENABLE_UI_REFRESH", refresh)
    workshop.flag("ENABLE_MECH_I18N", True)
    order = workshop.order()
    workshop.api("POST", f"/api/orders/{order}/items", {"name": "Clamp", "unit_price": "3.40"})
    try:
        sign_in(page)
        for path in ("/mechanic/", f"/mechanic/orders/{order}", "/mechanic/orders/new",
                     "/mechanic/time", "/mechanic/profile", "/mechanic/login"):  # fmt: skip
            page.goto(path)
            page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
            audit = page.evaluate(AUDIT)
            assert audit == {"low": [], "unlabelled": []}, path

        # Keyboard only: Tab reaches the order's buttons with a visible focus ring, Enter acts.
        page.goto(f"/mechanic/orders/{order}")
        start = page.get_by_role("button", name="Start work")
        for _ in range(40):
            page.keyboard.press("Tab")
            if start.evaluate("(e) => e === document.activeElement"):
                break
        outline = start.evaluate(
            "(e) => getComputedStyle(e).outlineStyle + ' ' + e.matches(':focus-visible')"
        )
        assert outline == "solid true"
        page.keyboard.press("Enter")
        expect(page.locator("#order-status")).to_have_text("In progress")
    finally:
        workshop.flag("ENABLE_MECH_I18N", False)
        workshop.flag("ENABLE_UI_REFRESH", False)
