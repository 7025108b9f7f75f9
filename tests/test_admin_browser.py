"""The staff admin in a real browser (Debian's headless Chromium, Playwright) against gunicorn
on a database of the module's own: each role signs in and sees its part; a flag toggled in the
admin reaches `GET /api/config/feature-flags` within a second; the kill switch; a halt raised
and cleared by two keepers; deletes refused; a range of events verified."""

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Page, expect

from tests.http import call
from tests.test_mechanic_browser import CHROMIUM, Workshop, _page, _workshop, browser  # noqa: F401

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="chromium: make test installs it"
)
PASSWORD = "an-admin-password-long-1"
ROLES = {"stella": "Staff", "fiona": "Flag managers", "kim": "Keepers", "sam": "Security admins"}
SCREENSHOTS = os.environ.get("SCREENSHOT_DIR", "")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Workshop]:
    for workshop in _workshop(tmp_path_factory.mktemp("admin"), "conclave_admin_ui"):
        users = ";".join(
            f"u = User.objects.create_user({name!r}, password={PASSWORD!r}, is_staff=True);"
            f"u.groups.add(Group.objects.get(name={role!r}))"
            for name, role in ROLES.items()
        )
        workshop.manage("shell", "--no-imports", "-c",
                        f"from django.contrib.auth.models import Group, User;{users}")  # fmt: skip
        yield workshop


@pytest.fixture
def page(browser, site) -> Iterator[Page]:  # noqa: F811
    yield from _page(browser, site.base)


def sign_in(page: Page, username: str) -> None:
    page.context.clear_cookies()
    page.goto("/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_be_visible()


def shoot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def run_action(page: Page, action_label: str, *row_ids: str) -> None:
    for row_id in row_ids:
        page.locator(f'input.action-select[value="{row_id}"]').check()
    page.locator("select[name=action]").select_option(label=action_label)
    page.get_by_title("Run the selected action").first.click()


@pytest.mark.parametrize(
    ("username", "sees", "not_sees"),
    [
        ("stella", ["Orders", "Notifications"], ["Feature flags", "Events", "Agent keys"]),
        ("fiona", ["Feature flags"], ["Orders", "Events"]),
        ("sam", ["Events", "Agent keys", "Keeper keys"], ["Orders", "Feature flags"]),
    ],
)
def test_each_role_sees_its_part(page, username, sees, not_sees):
    sign_in(page, username)
    content = page.locator("#content-main")
    for name in sees:
        expect(content.get_by_role("link", name=name, exact=True).first).to_be_visible()
    for name in not_sees:
        expect(content.get_by_role("link", name=name, exact=True)).to_have_count(0)
    # A page outside the role is refused by the server, whatever the browser is shown.
    refused = page.request.get(
        "/admin/orders/order/" if username != "stella" else "/admin/events/event/"
    )
    assert refused.status == 403


def test_flag_toggled_reaches_the_api_within_a_second_then_the_kill_switch(page, site):
    sign_in(page, "fiona")
    page.goto("/admin/flags/featureflag/")
    run_action(page, "Turn the selected flags on…", "ENABLE_CAR_NUMBER", "ENABLE_UI_REFRESH")
    expect(page.locator("#confirm-flags")).to_contain_text("ENABLE_CAR_NUMBER")
    page.get_by_role("button", name="Yes, turn on").click()
    expect(page.locator(".messagelist")).to_contain_text("ENABLE_UI_REFRESH is on")
    assert seconds_until(site, lambda f: f["ENABLE_CAR_NUMBER"] and f["ENABLE_UI_REFRESH"]) < 1.0
    page.goto("/admin/flags/featureflag/")
    shoot(page, "admin-flags")

    page.locator("#kill-switch").click()
    page.get_by_role("button", name="Yes, turn every flag off").click()
    expect(page.locator(".messagelist")).to_contain_text("Kill switch")
    assert seconds_until(site, lambda flags: not any(flags.values())) < 1.0


def seconds_until(site: Workshop, wanted, limit: float = 1.0) -> float:
    """How long after the admin confirmed the change the public flags API shows it."""
    started = time.monotonic()
    while True:
        status, flags = call("GET", f"{site.base}/api/config/feature-flags")
        elapsed = time.monotonic() - started
        if status == 200 and wanted(flags):
            return elapsed
        assert elapsed < limit, flags
        time.sleep(0.05)


def test_halt_raised_then_cleared_by_two_keepers(page, site):
    keys = {name: Ed25519PrivateKey.generate() for name in ("alice", "bob")}
    sign_in(page, "sam")
    ids = {}
    for name, private in keys.items():
        page.goto("/admin/events/keeperkey/add/")
        page.get_by_label("Keeper").fill(f"KEEPER:{name}")
        page.get_by_label(re.compile("Ed25519 public key")).fill(
            private.public_key().public_bytes_raw().hex()
        )
        page.get_by_role("button", name="Save", exact=True).click()
        added = page.locator(".messagelist").inner_text()  # "… keeper-<id> (KEEPER:name) was added"
        ids[name] = re.search(r"keeper-[0-9a-f]{16}", added)[0]
    page.goto("/admin/halt/")
    page.get_by_label("Reason").fill("drill: two keepers")
    page.get_by_role("button", name="Raise the halt…").click()
    page.get_by_role("button", name="Yes, halt the system").click()
    page.wait_for_timeout(600)  # each process reads the halt afresh every half second
    page.reload()
    expect(page.locator("#halt-banner")).to_contain_text("drill: two keepers")

    sign_in(page, "kim")
    page.goto("/admin/halt/ceremony/")
    challenge = page.locator("#challenge").inner_text()
    for name, private in keys.items():
        page.get_by_label("Keeper key id").fill(ids[name])
        page.get_by_label(re.compile("Signature")).fill(private.sign(challenge.encode()).hex())
        page.get_by_role("button", name="Record the approval").click()
        expect(page.locator(".messagelist")).to_contain_text(f"KEEPER:{name}")
    expect(page.locator("#approvals")).to_contain_text("KEEPER:bob")
    shoot(page, "admin-ceremony")
    page.get_by_role("button", name="Verify and clear the halt").click()

    expect(page.locator(".messagelist")).to_contain_text("the halt is cleared", timeout=15000)
    page.wait_for_timeout(600)
    page.reload()
    expect(page.locator("#halt-banner")).to_have_count(0)
    status, _ = call("POST", f"{site.base}/api/orders", body={"vin": "x"})
    assert status != 503  # writes go through again (this one is refused as bad input)


def test_deletes_refused_and_a_range_of_events_verified(page, site):
    sign_in(page, "sam")
    page.goto("/admin/events/agentkey/")
    key_link = page.locator("#result_list tbody tr th a").first
    key_link.click()
    expect(page.locator(".deletelink")).to_have_count(0)
    refused = page.request.get(page.url.replace("/change/", "/delete/"))
    assert refused.status == 403
    for url in ("/admin/events/event/1/delete/", "/admin/events/clockdriftwarning/1/delete/"):
        assert page.request.get(url).status == 403, url

    page.goto("/admin/events/event/?sequence__gte=1&sequence__lte=5")
    expect(page.locator("#result_list tbody tr")).to_have_count(5)
    shoot(page, "admin-event-log")
    page.locator("#action-toggle").check()
    page.locator("select[name=action]").select_option(
        label="Verify the range of the selected events"
    )
    page.get_by_title("Run the selected action").first.click()
    expect(page.locator(".messagelist")).to_contain_text("Events 1 to 5 verified")
