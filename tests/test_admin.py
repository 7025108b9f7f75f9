"""The staff admin, server side: roles, what each sees, every write through the services (an
event each, the halt and the pins respected), nothing deletable that must not be, and the
queries a changelist costs. In a browser: test_admin_browser.py."""

import csv
import io
import re
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.test import Client

from conclave.halt import forget_halt_status, halt_status
from conclave.models import VerificationRun
from conclave.roles import FLAG_MANAGERS, KEEPERS, ROLES, SECURITY_ADMINS, STAFF
from conclave.services import halt_raise
from events.models import AgentKey, ClockDriftWarning, Event, KeeperKey
from flags.models import FeatureFlag
from flags.selectors import flags_snapshot, forget_flags
from notifications.models import Notification, NotificationKind, NotificationStatus
from orders.models import Category, MechanicProfile, Order, Part
from orders.services import order_create, order_update, part_update
from tests.factories import UserFactory
from tests.test_halt import register_keeper
from tests.workshop import RUNBOOK_ORDER

pytestmark = pytest.mark.django_db


def member_of(*roles: str, username: str = "") -> Client:
    user = UserFactory(username=username or f"u-{'-'.join(r[:4] for r in roles)}", is_staff=True)
    user.groups.set(Group.objects.filter(name__in=roles))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff(system_keys) -> Client:
    return member_of(STAFF, username="stella")


@pytest.fixture
def flag_manager(system_keys) -> Client:
    return member_of(FLAG_MANAGERS, username="fiona")


@pytest.fixture
def keeper(system_keys) -> Client:
    return member_of(KEEPERS, username="kim")


@pytest.fixture
def security(system_keys) -> Client:
    return member_of(SECURITY_ADMINS, username="sam")


def last_event(event_type: str) -> Event:
    return Event.objects.filter(event_type=event_type).order_by("-sequence").first()


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- Roles ------------------------------------------------------------------------------------------


def test_roles__groups_with_their_permissions_and_no_deletes_of_the_log_or_keys(db):
    for role, names in ROLES.items():
        group = Group.objects.get(name=role)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert held == set(names), role
    every = {name for names in ROLES.values() for name in names}
    forbidden = {"events.delete_event", "events.delete_agentkey", "events.delete_keeperkey",
                 "events.delete_clockdriftwarning", "notifications.delete_notification",
                 "orders.delete_order"}  # fmt: skip
    assert every.isdisjoint(forbidden)


@pytest.mark.parametrize(
    ("role", "sees", "hidden"),
    [
        (STAFF, ["/admin/orders/order/", "/admin/notifications/notification/"],
         ["/admin/flags/featureflag/", "/admin/events/event/", "/admin/events/agentkey/"]),
        (FLAG_MANAGERS, ["/admin/flags/featureflag/"],
         ["/admin/orders/order/", "/admin/events/event/"]),
        (KEEPERS, [], ["/admin/orders/order/", "/admin/flags/featureflag/", "/admin/events/event/"]),
        (SECURITY_ADMINS, ["/admin/events/event/", "/admin/events/agentkey/",
                           "/admin/events/keeperkey/"],
         ["/admin/orders/order/", "/admin/flags/featureflag/"]),
    ],
)  # fmt: skip
def test_roles__each_sees_only_its_part(system_keys, role, sees, hidden):
    client = member_of(role)
    index = client.get("/admin/").content.decode()

    for url in sees:
        assert f'href="{url}"' in index, url
        assert client.get(url).status_code == 200, url
    for url in hidden:
        assert f'href="{url}"' not in index, url
        assert client.get(url).status_code == 403, url


def test_roles__halt_pages_for_keepers_and_security_admins_only(staff, keeper, security):
    assert staff.get("/admin/halt/").status_code == 403
    assert staff.get("/admin/halt/ceremony/").status_code == 403
    assert keeper.get("/admin/halt/").status_code == 200
    assert 'id="halt-raise"' not in keeper.get("/admin/halt/").content.decode()
    assert 'id="halt-raise"' in security.get("/admin/halt/").content.decode()
    assert keeper.post("/admin/halt/", {"reason": "x", "confirmed": "yes"}).status_code == 403
    assert not halt_status().halted


def test_anonymous__sent_to_the_login(db):
    response = Client().get("/admin/events/event/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_password_change__guesses_of_the_old_password_throttled_per_user(system_keys, monkeypatch):
    """A staff session left open is no way to find the password: the admin's password change
    counts its tries per user, at the login's rate, as the mechanics' profile page does."""
    from conclave.throttling import PasswordChangeThrottle

    monkeypatch.setattr(PasswordChangeThrottle, "THROTTLE_RATES", {"login": "3/min"})
    stella = UserFactory(username="stella", is_staff=True)
    client = Client()
    client.force_login(stella)

    def change(old: str):
        new = "a-new-long-password-7"
        data = {"old_password": old, "new_password1": new, "new_password2": new}
        return client.post("/admin/password_change/", data)

    guesses = [change(f"guess-{n}").status_code for n in range(3)]
    refused = change("correct horse battery")

    assert guesses == [200, 200, 200]
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many tries of the current password" in refused.content.decode()
    stella.refresh_from_db()
    assert stella.check_password("correct horse battery")


def test_login__attempts_throttled_by_address__a_success_clears_them(system_keys, monkeypatch):
    """Staff and keepers sign in here: as the mechanics' page, attempts from one address are
    limited (THROTTLE_RATE_LOGIN), with a page saying how long to wait."""
    from conclave.admin_site import AdminLoginThrottle

    monkeypatch.setattr(AdminLoginThrottle, "THROTTLE_RATES", {"login": "3/min"})
    UserFactory(username="stella", is_staff=True)
    client = Client()

    def sign_in(password: str) -> int:
        data = {"username": "stella", "password": password, "next": "/admin/"}
        return client.post("/admin/login/", data).status_code

    first = [sign_in("wrong"), sign_in("correct horse battery")]
    client.logout()
    later = [sign_in("wrong") for _ in range(3)]
    refused = client.post("/admin/login/", {"username": "stella", "password": "x"})
    right = sign_in("correct horse battery")

    assert first == [200, 302]  # the success cleared the failure before it
    assert later == [200, 200, 200]
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many sign-in attempts" in refused.content.decode()
    assert right == 429
    assert "_auth_user_id" not in client.session


# --- Flags ------------------------------------------------------------------------------------------


def test_flags__toggle_confirmed_first_then_an_event_with_the_user(flag_manager):
    data = {"action": "turn_on", "_selected_action": ["ENABLE_CAR_NUMBER", "ENABLE_UI_REFRESH"]}

    asked = flag_manager.post("/admin/flags/featureflag/", data)
    before = FeatureFlag.objects.get(name="ENABLE_CAR_NUMBER").enabled
    done = flag_manager.post("/admin/flags/featureflag/", {**data, "confirmed": "yes"})

    assert asked.status_code == 200 and 'id="confirm-flags"' in asked.content.decode()
    assert before is False
    assert done.status_code == 302
    assert FeatureFlag.objects.get(name="ENABLE_CAR_NUMBER").enabled is True
    event = last_event("flag.changed")
    assert event.payload["actor"] == "user:fiona" and event.payload["via"] == "admin"
    assert Client().get("/api/config/feature-flags").json()["ENABLE_UI_REFRESH"] is True


def test_flags__pinned_flag_refused_with_the_reason(flag_manager, settings):
    settings.FEATURE_FLAG_PINS = {"ENABLE_MECH_I18N": False}
    data = {"action": "turn_on", "_selected_action": ["ENABLE_MECH_I18N"], "confirmed": "yes"}

    done = flag_manager.post("/admin/flags/featureflag/", data, follow=True)

    assert any("pinned" in m for m in page_messages(done))
    assert FeatureFlag.objects.get(name="ENABLE_MECH_I18N").enabled is False
    listing = flag_manager.get("/admin/flags/featureflag/").content.decode()
    assert "ENABLE_MECH_I18N" in listing and 'alt="True"' in listing  # the pinned marker


def test_flags__kill_switch_confirmed_every_flag_off(
    flag_manager, django_capture_on_commit_callbacks
):
    from flags.services import flag_set

    with django_capture_on_commit_callbacks(execute=True):
        for name in ("ENABLE_CAR_NUMBER", "ENABLE_TG_MECH_NOTIFS"):
            flag_set(name=name, enabled=True, actor="test")

    asked = flag_manager.get("/admin/flags/featureflag/kill-switch/")
    done = flag_manager.post("/admin/flags/featureflag/kill-switch/", {"confirmed": "yes"})

    assert asked.status_code == 200
    assert done.status_code == 302
    assert not FeatureFlag.objects.filter(enabled=True).exists()
    assert last_event("flag.changed").payload["via"] == "kill_switch"


def test_flags__rollout_phases_shown_and_a_phase_turned_on(flag_manager, staff):
    page = flag_manager.get("/admin/flags/featureflag/rollout/").content.decode()
    phase = "Phase 2: mechanic UI"

    asked = flag_manager.post(
        "/admin/flags/featureflag/rollout/", {"phase": phase, "enabled": "on"}
    )
    on_before = FeatureFlag.objects.filter(enabled=True).count()
    done = flag_manager.post(
        "/admin/flags/featureflag/rollout/", {"phase": phase, "enabled": "on", "confirmed": "yes"}
    )

    assert page.index("ENABLE_CAR_NUMBER") < page.index("ENABLE_MECH_I18N")
    assert page.index("ENABLE_UI_REFRESH") < page.index("ENABLE_TG_ADMIN_NOTIFS")
    assert asked.status_code == 200 and on_before == 0
    assert done.status_code == 302
    assert set(FeatureFlag.objects.filter(enabled=True).values_list("name", flat=True)) == {
        "ENABLE_MECH_I18N", "ENABLE_UI_REFRESH"}  # fmt: skip
    assert staff.get("/admin/flags/featureflag/rollout/").status_code == 403


# --- Halt and ceremony ------------------------------------------------------------------------------


def test_halt__raised_after_confirmation_then_two_keepers_clear_it(security, keeper, settings):
    settings.HALT_CLEAR_QUORUM = 2
    alice, bob = register_keeper("alice"), register_keeper("bob")

    asked = security.post("/admin/halt/", {"reason": "drill: key ceremony"})
    assert asked.status_code == 200 and not halt_status().halted
    security.post("/admin/halt/", {"reason": "drill: key ceremony", "confirmed": "yes"})
    forget_halt_status()
    assert halt_status().halted
    assert last_event("halt.raised").payload["actor"] == "user:sam"
    banner = keeper.get("/admin/").content.decode()
    assert 'id="halt-banner"' in banner and "drill: key ceremony" in banner

    ceremony = keeper.get("/admin/halt/ceremony/").content.decode()
    challenge = re.search(r'id="challenge">([^<]+)<', ceremony)[1]
    refused = keeper.post("/admin/halt/ceremony/", {"action": "clear"}, follow=True)
    assert any("approvals" in m for m in page_messages(refused))
    for k in (alice, bob):
        keeper.post("/admin/halt/ceremony/", {"action": "approve", "keeper_key_id": k.key_id,
                                             "signature": k.sign(challenge)})  # fmt: skip
    progress = keeper.get("/admin/halt/ceremony/").content.decode()
    assert "KEEPER:alice" in progress and "KEEPER:bob" in progress
    cleared = keeper.post("/admin/halt/ceremony/", {"action": "clear"}, follow=True)

    forget_halt_status()
    assert not halt_status().halted
    assert any("cleared" in m for m in page_messages(cleared))
    assert last_event("halt.cleared").payload["actor"] == "user:kim"


def test_halt__a_bad_signature_is_told_not_recorded(security, keeper):
    alice = register_keeper("alice")
    halt_raise(reason="drill", actor="test", channel="command")
    forget_halt_status()
    keeper.get("/admin/halt/ceremony/")  # the page issues the challenge

    done = keeper.post(
        "/admin/halt/ceremony/",
        {"action": "approve", "keeper_key_id": alice.key_id, "signature": "ab" * 64},
        follow=True,
    )

    assert any("does not verify" in m.lower() for m in page_messages(done)), page_messages(done)
    assert "None yet." in keeper.get("/admin/halt/ceremony/").content.decode()


def test_halted__admin_writes_get_a_page_not_json(staff):
    category = Category.objects.create(name_en="Brakes", name_he="ב", name_ru="Т")
    halt_raise(reason="chain check failed", actor="test", channel="command")
    forget_halt_status()

    refused = staff.post(f"/admin/orders/category/{category.pk}/change/",
                         {"name_en": "Changed", "name_he": "ב", "name_ru": "Т", "sort_order": 0})  # fmt: skip

    assert refused.status_code == 503 and refused["Content-Type"].startswith("text/html")
    assert "chain check failed" in refused.content.decode()
    assert Category.objects.get(pk=category.pk).name_en == "Brakes"


# --- Keys and the log -------------------------------------------------------------------------------


def test_keys_and_log__no_delete_for_anyone_not_even_a_superuser(security, system_keys):
    root = Client()
    root.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    key = AgentKey.objects.first()
    event = Event.objects.first()
    ClockDriftWarning.objects.create(event_sequence=1, local_timestamp=event.local_timestamp,
                                     authority_timestamp=event.authority_timestamp,
                                     drift_seconds=9.0)  # fmt: skip
    warning = ClockDriftWarning.objects.first()
    urls = [f"/admin/events/agentkey/{key.pk}/delete/", f"/admin/events/event/{event.pk}/delete/",
            f"/admin/events/clockdriftwarning/{warning.pk}/delete/"]  # fmt: skip

    for client in (security, root):
        for url in urls:
            assert client.get(url).status_code == 403, url
            assert client.post(url, {"post": "yes"}).status_code == 403, url
        detail = client.get(f"/admin/events/agentkey/{key.pk}/change/").content.decode()
        assert "deletelink" not in detail
        assert 'value="delete_selected"' not in client.get("/admin/events/event/").content.decode()
    assert (
        AgentKey.objects.filter(pk=key.pk).exists() and Event.objects.filter(pk=event.pk).exists()
    )


def test_keys__register_and_rotate_through_the_services(security):
    added = security.post(
        "/admin/events/agentkey/add/", {"kind": "witness", "agent_id": "WITNESS:extra"}
    )
    key = AgentKey.objects.get(agent_id="WITNESS:extra")
    rotate = {"action": "rotate_selected", "_selected_action": [str(key.pk)]}
    asked = security.post("/admin/events/agentkey/", rotate)
    retired_before = AgentKey.objects.get(pk=key.pk).active_until
    security.post("/admin/events/agentkey/", {**rotate, "confirmed": "yes"})

    assert added.status_code == 302
    assert last_event("key.registered").payload["actor"] == "user:sam"
    assert asked.status_code == 200 and retired_before is None
    assert AgentKey.objects.get(pk=key.pk).active_until is not None
    assert AgentKey.objects.filter(agent_id="WITNESS:extra", active_until__isnull=True).count() == 1
    assert last_event("key.rotated").payload["retired_key_id"] == key.key_id


def test_keeper_keys__register_rotate_and_bad_keys_refused(security):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    bad = security.post(
        "/admin/events/keeperkey/add/", {"keeper_id": "KEEPER:dan", "public_key_hex": "zz"}
    )
    security.post(
        "/admin/events/keeperkey/add/", {"keeper_id": "KEEPER:dan", "public_key_hex": public}
    )
    key = KeeperKey.objects.get(keeper_id="KEEPER:dan")
    newer = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    rotated = security.post(
        f"/admin/events/keeperkey/{key.pk}/change/rotate/", {"public_key_hex": newer}
    )

    assert bad.status_code == 200 and "64 hexadecimal characters" in bad.content.decode()
    assert rotated.status_code == 302
    assert KeeperKey.objects.get(pk=key.pk).active_until is not None
    assert (
        KeeperKey.objects.get(keeper_id="KEEPER:dan", active_until__isnull=True).public_key.hex()
        == newer
    )
    assert last_event("keeper_key.rotated").payload["actor"] == "user:sam"


@pytest.mark.parametrize("owner", ["WITNESS:\u202eevil", "WITNESS:a\x01"])
def test_keys__an_owner_that_does_not_print__told_on_the_form(security, owner):
    keys = AgentKey.objects.count()

    refused = security.post("/admin/events/agentkey/add/", {"kind": "witness", "agent_id": owner})

    assert refused.status_code == 200
    assert "text direction overrides" in refused.content.decode()
    assert AgentKey.objects.count() == keys


def test_keeper_keys__a_public_key_registered_already__told_on_the_form(security):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    security.post(
        "/admin/events/keeperkey/add/", {"keeper_id": "KEEPER:dan", "public_key_hex": public}
    )
    keys = KeeperKey.objects.count()

    again = security.post(
        "/admin/events/keeperkey/add/", {"keeper_id": "KEEPER:eve", "public_key_hex": public}
    )

    assert again.status_code == 200
    assert "registered already" in again.content.decode()
    assert KeeperKey.objects.count() == keys


def test_event_log__read_only_detail_and_verify_a_range(security, mechanic):
    for _ in range(3):
        order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    first, last = Event.objects.order_by("sequence")[1], Event.objects.order_by("-sequence")[0]

    detail = security.get(f"/admin/events/event/{last.pk}/change/").content.decode()
    ranged = security.get(f"/admin/events/event/?sequence__gte={first.pk}&sequence__lte={last.pk}")
    verified = security.post(
        "/admin/events/event/",
        {"action": "verify_selected_range", "_selected_action": [str(first.pk), str(last.pk)],
         "index": 0},
        follow=True,
    )  # fmt: skip

    assert 'id="canonical-json"' in detail and last.content_hash in detail
    assert last.signature in detail and last.witness_signature in detail
    assert security.post(f"/admin/events/event/{last.pk}/change/", {}).status_code == 403
    assert (
        ranged.status_code == 200
        and len(ranged.context["cl"].result_list) == last.pk - first.pk + 1
    )
    assert any(f"Events {first.pk} to {last.pk} verified" in m for m in page_messages(verified))
    assert last_event("verification.range_checked").payload["actor"] == "user:sam"
    run = VerificationRun.objects.get(kind="range")
    assert run.ok and (run.first_sequence, run.last_sequence) == (first.pk, last.pk)


# --- Orders, mechanics, catalogue, outbox -------------------------------------------------------------


def test_orders__status_and_assignment_through_the_services(staff, mechanic, other_mechanic):
    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)

    page = staff.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    staff.post(f"/admin/orders/order/{order.pk}/status/", {"status": "in_progress"})
    illegal = staff.post(f"/admin/orders/order/{order.pk}/status/", {"status": "new"}, follow=True)
    staff.post(f"/admin/orders/order/{order.pk}/assign/", {"mechanic_id": other_mechanic.pk})

    assert 'data-status="in_progress"' in page and 'data-status="ready"' not in page
    order.refresh_from_db()
    assert order.status == "in_progress" and order.mechanic_id == other_mechanic.pk
    assert last_event("order.status_changed").payload["actor"] == "user:stella"
    assert last_event("order.assigned").payload["actor"] == "user:stella"
    assert any(
        f"Order {order.pk} is in progress. Its status can change to: ready, cancelled." in m
        for m in page_messages(illegal)
    )
    assert staff.get(f"/admin/orders/order/{order.pk}/delete/").status_code == 403


def test_orders__assignment_names_each_mechanic_with_their_username(staff, mechanic):
    from orders.services import mechanic_create

    twin = mechanic_create(username="mika2", password="a-long-enough-password-7",
                           display_name=mechanic.display_name)  # fmt: skip
    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)

    page = staff.get(f"/admin/orders/order/{order.pk}/change/").content.decode()

    assert f'<option value="{mechanic.pk}" selected>mika (mika)</option>' in page
    assert f'<option value="{twin.pk}">mika (mika2)</option>' in page
    listed = staff.get("/admin/orders/order/").content.decode()
    assert f'<a href="?mechanic__id__exact={twin.pk}">mika (mika2)</a>' in listed


def test_orders__cancelling_asks_for_a_confirmation_first(staff, mechanic):
    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    url = f"/admin/orders/order/{order.pk}/status/"

    asked = staff.post(url, {"status": "cancelled"})
    order.refresh_from_db()
    assert asked.status_code == 200 and order.status == "new"
    page = asked.content.decode()
    assert f"Cancel order {order.pk}?" in page and 'name="confirmed" value="yes"' in page

    staff.post(url, {"status": "cancelled", "confirmed": "yes"})
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert last_event("order.status_changed").payload["actor"] == "user:stella"


def test_orders__staff_comment_from_the_order_page__the_mechanic_reads_it(
    staff, flag_manager, mechanic
):
    from orders.models import Comment

    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    page = staff.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    url = f"/admin/orders/order/{order.pk}/comment/"

    added = staff.post(url, {"text": "  Pads arrive on Tuesday.  "}, follow=True)
    empty = staff.post(url, {"text": "   "}, follow=True)
    not_staff = flag_manager.post(url, {"text": "Hello"})
    by_get = staff.get(url)

    assert f'action="{url}"' in page
    assert any("Your comment is on the order." in m for m in page_messages(added))
    assert any("1 to 2000 characters" in m for m in page_messages(empty))
    assert (not_staff.status_code, by_get.status_code) == (403, 403)
    assert list(Comment.objects.values_list("text", "author__username")) == [
        ("Pads arrive on Tuesday.", "stella")
    ]
    assert last_event("order.comment_added").payload["actor"] == "user:stella"
    mechanic_page = Client()
    mechanic_page.force_login(mechanic.user)
    assert (
        "Pads arrive on Tuesday."
        in mechanic_page.get(f"/mechanic/orders/{order.pk}").content.decode()
    )


def test_orders__staff_add_parts_and_labour_and_take_a_line_off_from_the_order_page(
    staff, flag_manager, mechanic, django_capture_on_commit_callbacks
):
    """Staff price the order where they process it: a part (the catalog's, or named with its
    price), labour, and a line taken off; as the API's services do, each an event."""
    from orders.models import OrderItem, OrderWork
    from tests.workshop import flag_on

    flag_on("ENABLE_PART_CATEGORIES", django_capture_on_commit_callbacks)
    disc = Part.objects.create(
        category=Category.objects.create(name_en="Brakes"), name_en="Brake disc", price="80.00"
    )
    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    change = f"/admin/orders/order/{order.pk}/change/"
    item_url = f"/admin/orders/order/{order.pk}/item/"
    work_url = f"/admin/orders/order/{order.pk}/work/"
    remove_url = f"/admin/orders/order/{order.pk}/remove-line/"
    page = staff.get(change).content.decode()

    named = staff.post(
        item_url, {"name": "Clamp", "quantity": "2", "unit_price": "3.40"}, follow=True
    )
    no_price = staff.post(item_url, {"name": "Bolt", "quantity": "1"}, follow=True)
    bad_quantity = staff.post(item_url, {"name": "Bolt", "quantity": "0", "unit_price": "1"})
    catalog = staff.post(item_url, {"part_id": str(disc.pk), "quantity": "1"}, follow=True)
    labour = staff.post(
        work_url, {"name": "Fit the disc", "price": "45.00", "estimated_minutes": "30"}
    )
    no_labour_price = staff.post(work_url, {"name": "Bleed the brakes"}, follow=True)
    clamp = OrderItem.objects.get(name="Clamp")
    removed = staff.post(remove_url, {"line": f"item:{clamp.pk}"}, follow=True)
    unknown_line = staff.post(remove_url, {"line": "item:x"}, follow=True)
    not_staff = flag_manager.post(item_url, {"name": "Clamp", "unit_price": "1"})
    by_get = staff.get(item_url)
    after = staff.get(change).content.decode()

    assert all(f'action="{url}"' in page for url in (item_url, work_url))
    assert f'action="{remove_url}"' not in page and f'action="{remove_url}"' in after
    assert f'<option value="{disc.pk}">Brake disc' in page
    assert any("Clamp × 2 is on the order." in m for m in page_messages(named))
    assert any("A custom part needs its unit price." in m for m in page_messages(no_price))
    assert bad_quantity.status_code == 302
    assert any("Brake disc × 1 is on the order." in m for m in page_messages(catalog))
    assert labour.status_code == 302
    assert any("price" in m for m in page_messages(no_labour_price))
    assert any("Clamp is off the order." in m for m in page_messages(removed))
    assert any("Choose a line" in m for m in page_messages(unknown_line))
    assert (not_staff.status_code, by_get.status_code) == (403, 403)
    assert list(OrderItem.objects.values_list("name", "quantity", "unit_price")) == [
        ("Brake disc", 1, Decimal("80.00"))
    ]
    assert list(OrderWork.objects.values_list("name", "estimated_minutes")) == [
        ("Fit the disc", 30)
    ]
    assert f'value="work:{OrderWork.objects.get().pk}"' in after
    assert last_event("order.item_removed").payload["actor"] == "user:stella"
    assert last_event("order.work_added").payload["actor"] == "user:stella"


def test_orders__staff_correct_a_vin_typed_wrong_from_the_order_page(staff, flag_manager, mechanic):
    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    page = staff.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    url = f"/admin/orders/order/{order.pk}/correct/"
    fields = {"mechanic_name": "Test Mechanic", "vin": "TEST123456789", "part_type": "brake_pads",
              "category": "brakes", "original_or_analog": "original"}  # fmt: skip

    corrected = staff.post(url, {**fields, "vin": "test123456780"}, follow=True)
    unchanged = staff.post(url, {**fields, "vin": "TEST123456780"}, follow=True)
    refused = staff.post(url, {**fields, "vin": "IOQ", "part_type": ""}, follow=True)
    not_staff = flag_manager.post(url, fields)

    assert f'action="{url}"' in page and 'value="TEST123456789"' in page
    assert any(f"Order {order.pk} corrected: vin." in m for m in page_messages(corrected))
    assert any("Nothing to correct" in m for m in page_messages(unchanged))
    messages = " ".join(page_messages(refused))
    assert "vin:" in messages and "part_type:" in messages
    assert not_staff.status_code == 403
    order.refresh_from_db()
    assert (order.vin, order.part_type) == ("TEST123456780", "brake_pads")
    assert last_event("order.updated").payload["changes"] == {
        "vin": {"old": "TEST123456789", "new": "TEST123456780"}
    }


def test_orders__a_correction_sent_from_an_older_page__another_s_meanwhile_kept(staff, mechanic):
    """Two people correcting one order: the form sends what its page showed, so a field left
    as it was does not undo the other's correction made meanwhile; the same field changed by
    both is refused, naming it, with nothing changed."""
    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    page = staff.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    shown = dict(re.findall(r'name="(shown_\w+)" value="([^"]*)"', page))
    fields = {"mechanic_name": "Test Mechanic", "vin": "TEST123456789", "part_type": "brake_pads",
              "category": "brakes", "original_or_analog": "original"}  # fmt: skip
    url = f"/admin/orders/order/{order.pk}/correct/"
    order_update(order_id=order.pk, user=mechanic.user, changes={"part_type": "Pads, front"})

    other_field = staff.post(url, {**shown, **fields, "vin": "TEST123456780"}, follow=True)
    same_field = staff.post(url, {**shown, **fields, "part_type": "Brake pads"}, follow=True)

    assert sorted(shown) == [f"shown_{name}" for name in sorted(fields)]
    assert any(f"Order {order.pk} corrected: vin." in m for m in page_messages(other_field))
    assert any(
        'part_type was changed meanwhile (now "Pads, front")' in m
        for m in page_messages(same_field)
    ), page_messages(same_field)
    order.refresh_from_db()
    assert (order.vin, order.part_type) == ("TEST123456780", "Pads, front")
    assert Event.objects.filter(event_type="order.updated").count() == 2


def test_orders__cancelled_order__no_assignment_nor_parts_offered_and_refused(
    staff, mechanic, other_mechanic
):
    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    staff.post(
        f"/admin/orders/order/{order.pk}/status/", {"status": "cancelled", "confirmed": "yes"}
    )

    page = staff.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    answer = staff.post(
        f"/admin/orders/order/{order.pk}/assign/", {"mechanic_id": other_mechanic.pk}, follow=True
    )

    assert "Cancelled: no further moves." in page
    assert 'id="id_assign_mechanic"' not in page
    assert 'id="id_item_name"' not in page and 'id="id_work_name"' not in page
    assert any("it can no longer be assigned" in m for m in page_messages(answer))
    order.refresh_from_db()
    assert order.mechanic_id == mechanic.pk


def test_orders__assign_to_an_id_not_digits__asked_to_choose(staff, mechanic):
    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)

    answer = staff.post(
        f"/admin/orders/order/{order.pk}/assign/", {"mechanic_id": "\u00b2"}, follow=True
    )

    assert any("Choose a mechanic." in m for m in page_messages(answer))
    order.refresh_from_db()
    assert order.mechanic_id == mechanic.pk


def test_orders__csv_of_the_filtered_list_with_formulas_defused(staff, mechanic):
    on = {**flags_snapshot(), "ENABLE_CAR_NUMBER": True}
    order_create(**{**RUNBOOK_ORDER, "part_type": "=HYPERLINK(1)", "car_number": "-A1"},
                 created_by=mechanic.user, flags=on)  # fmt: skip
    FeatureFlag.objects.filter(name="ENABLE_CAR_NUMBER").update(enabled=True)
    forget_flags()
    done = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    Order.objects.filter(pk=done.pk).update(status="completed")

    export = staff.get("/admin/orders/order/export.csv?status__exact=new")
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))

    assert export["Content-Type"].startswith("text/csv")
    assert rows[0][:3] == ["id", "created_at", "status"]
    assert [row[2] for row in rows[1:]] == ["new"]
    assert rows[1][5] == "'=HYPERLINK(1)"
    assert rows[1][4] == "'-A1"  # "-A1" is a formula to a spreadsheet too


def test_orders__csv_has_each_orders_total_and_when_it_was_completed(staff, mechanic):
    """The export is what staff bill from: each order's parts and labour total (Decimal, as
    the order's page shows it) and its completion time."""
    from orders.services import item_add, order_status_change, work_add

    priced = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    item_add(order_id=priced.pk, user=mechanic.user, name="Pads", unit_price="12.35", quantity=3)
    item_add(order_id=priced.pk, user=mechanic.user, name="Clip", unit_price="0.10")
    work_add(order_id=priced.pk, user=mechanic.user, name="Fit", price="30.00")
    work_add(order_id=priced.pk, user=mechanic.user, name="Bleed", price="10.05")
    for status in ("in_progress", "ready", "completed"):
        order_status_change(order_id=priced.pk, status=status, mechanic=mechanic)
    empty = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)

    export = staff.get("/admin/orders/order/export.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))

    by_id = {int(row["id"]): row for row in rows}
    assert by_id[priced.pk]["total"] == "77.20"  # 37.05 + 0.10 + 30.00 + 10.05
    assert by_id[empty.pk]["total"] == "0.00"
    priced.refresh_from_db()
    assert by_id[priced.pk]["completed_at"] == priced.completed_at.isoformat()
    assert by_id[empty.pk]["completed_at"] == ""


def test_mechanics__create_deactivate_reset_password_link_chat(staff):
    from rest_framework.authtoken.models import Token

    staff.post("/admin/orders/mechanicprofile/add/", {
        "username": "milo", "password": "a-long-enough-password-9", "display_name": "Milo",
        "language": "he", "telegram_chat_id": "4242"})  # fmt: skip
    milo = MechanicProfile.objects.get(user__username="milo")
    Token.objects.create(user=milo.user)
    weak = staff.post(f"/admin/orders/mechanicprofile/{milo.pk}/password/", {"new_password": "123"})
    staff.post(f"/admin/orders/mechanicprofile/{milo.pk}/password/",
               {"new_password": "another-long-password-8"})  # fmt: skip
    staff.post(f"/admin/orders/mechanicprofile/{milo.pk}/telegram/", {"telegram_chat_id": "5151"})
    staff.post("/admin/orders/mechanicprofile/",
               {"action": "deactivate", "_selected_action": [str(milo.pk)], "index": 0})  # fmt: skip

    milo.refresh_from_db()
    milo.user.refresh_from_db()
    assert milo.language == "he" and milo.telegram_chat_id == 5151
    assert last_event("mechanic.created").payload["actor"] == "user:stella"
    assert weak.status_code == 200 and "errorlist" in weak.content.decode()
    assert milo.user.check_password("another-long-password-8")
    assert not Token.objects.filter(user=milo.user).exists()
    assert milo.is_active is False and milo.user.is_active is False
    assert last_event("mechanic.deactivated").payload["actor"] == "user:stella"
    assert staff.get(f"/admin/orders/mechanicprofile/{milo.pk}/delete/").status_code == 403


def test_catalogue__through_the_services_with_their_errors_on_the_form(staff, mechanic):
    bad = staff.post("/admin/orders/category/add/",
                     {"name_en": " ", "name_he": "", "name_ru": "", "sort_order": 0})  # fmt: skip
    staff.post("/admin/orders/category/add/",
               {"name_en": "Brakes", "name_he": "בלמים", "name_ru": "Тормоза", "icon": "🛑",
                "sort_order": 3})  # fmt: skip
    category = Category.objects.get(name_en="Brakes")
    staff.post("/admin/orders/part/add/", {"category": category.pk, "name_en": "Pads",
               "name_he": "רפידות", "name_ru": "Колодки", "price": "12.50", "sort_order": 0})  # fmt: skip
    part = Part.objects.get(name_en="Pads")
    order_create(**RUNBOOK_ORDER, part=part, created_by=mechanic.user)
    in_use = staff.post(f"/admin/orders/part/{part.pk}/delete/", {"post": "yes"}, follow=True)

    assert bad.status_code == 200 and Category.objects.count() == 1
    assert last_event("catalog.category_created").payload["actor"] == "user:stella"
    assert last_event("catalog.part_created").payload["price"] == "12.50"
    assert any("cannot be deleted" in m for m in page_messages(in_use))
    assert Part.objects.filter(pk=part.pk).exists()


def test_catalogue__a_name_taken__told_on_the_form_nothing_written(staff):
    brakes = Category.objects.create(name_en="Brakes", name_ru="Тормоза")
    engine = Category.objects.create(name_en="Engine")
    pads = Part.objects.create(category=brakes, name_en="Pads", part_number="P-1", price="9")
    filters = Part.objects.create(category=engine, name_en="Pads", part_number="P-1", price="9")
    events = Event.objects.count()

    pages = [
        staff.post("/admin/orders/category/add/", {"name_en": "BRAKES", "name_he": "א",
                   "name_ru": "А", "sort_order": 0}),
        staff.post(f"/admin/orders/category/{engine.pk}/change/",
                   {"name_en": "Engine", "name_he": "ב",
                   "name_ru": "тормоза", "sort_order": 0}),
        staff.post("/admin/orders/part/add/", {"category": brakes.pk, "name_en": "pads",
                   "name_he": "ג", "name_ru": "В", "part_number": "p-1", "price": "10",
                   "sort_order": 0}),
        staff.post(f"/admin/orders/part/{filters.pk}/change/", {"category": brakes.pk,
                   "name_en": "Pads", "name_he": "ד", "name_ru": "Г", "part_number": "P-1",
                   "price": "9", "sort_order": 0}),
    ]  # fmt: skip

    for page, taken in zip(pages, ["Brakes", "Тормоза", "Pads", "Pads"], strict=True):
        assert page.status_code == 200
        assert f" is named {taken} already" in page.content.decode() or (
            f"Part {pads.pk} of this category is {taken}" in page.content.decode()
        )
    assert Event.objects.count() == events
    assert Category.objects.count() == 2
    assert Part.objects.get(pk=filters.pk).category_id == engine.pk


def test_catalogue__saved_from_an_older_page__another_s_change_meanwhile_kept(staff):
    """The form says what its page showed (Django's hidden initial values): a field left as
    shown is not sent on, so a price set by someone else meanwhile is not put back."""
    brakes = Category.objects.create(name_en="Brakes")
    pads = Part.objects.create(category=brakes, name_en="Pads", name_he="רפידות",
                               name_ru="Колодки", part_number="P-1", price="9")  # fmt: skip
    url = f"/admin/orders/part/{pads.pk}/change/"
    shown = dict(
        re.findall(r'name="(initial-\w+)" value="([^"]*)"', staff.get(url).content.decode())
    )
    part_update(part_id=pads.pk, actor=User.objects.get(username="stella"), price=Decimal("11.00"))
    typed = {name.removeprefix("initial-"): value for name, value in shown.items()}

    answer = staff.post(url, {**shown, **typed, "is_common": "", "name_en": "Brake pads"})

    assert "initial-price" in shown and answer.status_code == 302
    pads.refresh_from_db()
    assert (pads.name_en, pads.price) == ("Brake pads", Decimal("11.00"))
    assert last_event("catalog.part_changed").payload == {
        "part_id": pads.pk,
        "name_en": "Brake pads",
        "actor": "user:stella",
    }


@pytest.mark.parametrize("object_id", ["\u00b2", "1" * 5000])
def test_catalogue__delete_of_an_id_not_digits__no_such_category(staff, object_id):
    Category.objects.create(name_en="Brakes")

    answer = staff.post(f"/admin/orders/category/{object_id}/delete/", {"post": "yes"}, follow=True)

    assert answer.status_code == 200
    assert any("doesn’t exist" in m for m in page_messages(answer))
    assert Category.objects.count() == 1


def test_outbox__read_only_and_retry_now_for_failed_rows(staff, mechanic):
    failed = Notification.objects.create(kind=NotificationKind.ORDER_CREATED, chat_id=1, text="x",
                                         status=NotificationStatus.DEAD, idempotency_key="a",
                                         dedupe_key="a")  # fmt: skip
    sent = Notification.objects.create(kind=NotificationKind.ORDER_CREATED, chat_id=1, text="y",
                                       status=NotificationStatus.SENT, idempotency_key="b",
                                       dedupe_key="b")  # fmt: skip

    staff.post("/admin/notifications/notification/",
               {"action": "retry_now", "_selected_action": [str(failed.pk), str(sent.pk)],
                "index": 0})  # fmt: skip

    assert Notification.objects.get(pk=failed.pk).status == NotificationStatus.PENDING
    assert Notification.objects.get(pk=sent.pk).status == NotificationStatus.SENT
    assert last_event("notification.retried").payload["actor"] == "user:stella"
    assert staff.get("/admin/notifications/notification/add/").status_code == 403
    assert staff.get(f"/admin/notifications/notification/{sent.pk}/delete/").status_code == 403


# --- The dashboard and the cost of each page ----------------------------------------------------------


def test_dashboard__each_part_for_its_role(staff, security, mechanic):
    order_create(**RUNBOOK_ORDER, created_by=mechanic.user)

    for_staff = staff.get("/admin/").content.decode()
    for_security = security.get("/admin/").content.decode()

    assert 'id="dashboard-orders"' in for_staff and "Orders today (1)" in for_staff
    assert 'id="dashboard-outbox"' in for_staff and 'id="dashboard-chain"' not in for_staff
    assert 'id="dashboard-chain"' in for_security and 'id="dashboard-orders"' not in for_security


# url: (role, queries): session, user, permissions, the page's own reads; the same for 2 rows
# or 14 (pinned: a new N+1 or an extra read fails here).
CHANGELISTS = {
    "/admin/orders/order/": (STAFF, 8),
    "/admin/orders/mechanicprofile/": (STAFF, 7),
    "/admin/orders/category/": (STAFF, 7),
    "/admin/orders/part/": (STAFF, 8),
    "/admin/notifications/notification/": (STAFF, 6),
    "/admin/flags/featureflag/": (FLAG_MANAGERS, 7),
    "/admin/events/event/": (SECURITY_ADMINS, 8),
    "/admin/events/agentkey/": (SECURITY_ADMINS, 7),
    "/admin/events/keeperkey/": (SECURITY_ADMINS, 7),
    "/admin/events/clockdriftwarning/": (SECURITY_ADMINS, 7),
    "/admin/conclave/verificationrun/": (SECURITY_ADMINS, 7),
}


def _fill(mechanic, count: int) -> None:
    """`count` more rows of every listed model (the six flags are six whatever happens)."""
    from django.utils import timezone

    from events.services import key_register
    from orders.services import mechanic_create

    now = timezone.now()
    for n in range(count):
        category = Category.objects.create(name_en=f"C{count}-{n}", name_he="ק", name_ru="К")
        Part.objects.create(category=category, name_en=f"P{count}-{n}", name_he="ח",
                            name_ru="Д", price="1.00")  # fmt: skip
        order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
        Notification.objects.create(kind=NotificationKind.ORDER_CREATED, chat_id=n, text="x",
                                    idempotency_key=f"{count}-{n}", dedupe_key=f"{count}-{n}")  # fmt: skip
        register_keeper(f"k{count}-{n}")
        key_register(kind="witness", owner=f"WITNESS:{count}-{n}")
        mechanic_create(username=f"m{count}-{n}", password="a-long-enough-password-1")
        ClockDriftWarning.objects.create(event_sequence=n + 1, local_timestamp=now,
                                         authority_timestamp=now, drift_seconds=6.0)  # fmt: skip
        VerificationRun.objects.create(kind="full", first_sequence=1, last_sequence=1, ok=True,
                                       started_at=now)  # fmt: skip


def fresh_process_caches() -> None:
    """Reads the halt and the flags just before a counted request, as a busy process has them:
    each lives about a second in the process, and a slow machine can outlast that."""
    halt_status(fresh=True)
    forget_flags()
    flags_snapshot()


@pytest.mark.parametrize("url", list(CHANGELISTS))
def test_changelists__queries_pinned_whatever_the_rows(url, mechanic, django_assert_num_queries):
    role, queries = CHANGELISTS[url]
    client = member_of(role)
    _fill(mechanic, 2)
    client.get(url)  # warm: content types
    fresh_process_caches()
    with django_assert_num_queries(queries):
        few = client.get(url)
    _fill(mechanic, 12)  # may take longer than the caches below live
    fresh_process_caches()
    with django_assert_num_queries(queries):
        many = client.get(url)
    rows = len(few.context["cl"].result_list), len(many.context["cl"].result_list)
    assert rows == (6, 6) if "featureflag" in url else rows[1] >= rows[0] + 12


# --- What a changelist's URL may ask ----------------------------------------------------------


def superuser_client() -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def registered_changelists() -> list[tuple[str, admin.ModelAdmin]]:
    return [
        (f"/admin/{model._meta.app_label}/{model._meta.model_name}/", model_admin)
        for model, model_admin in admin.site._registry.items()
    ]


@pytest.mark.parametrize(
    "url",
    [
        "/admin/orders/order/?created_at__year=99999",
        "/admin/orders/order/?vin__regex=(",
        "/admin/orders/order/export.csv?vin__regex=(",
        "/admin/events/event/?sequence__range=1",
        "/admin/notifications/notification/?next_attempt_at__iso_year=0",
        "/admin/auth/user/?date_joined__year=99999",
        "/admin/orders/order/?status__exact=new&mechanic_name__startswith=a",
    ],
)
def test_changelists__a_lookup_the_page_does_not_offer__400(system_keys, mechanic, url):
    order_create(**RUNBOOK_ORDER, created_by=mechanic.user)

    assert superuser_client().get(url).status_code == 400


def test_refused_url_or_form__an_admin_page_saying_what_with_a_way_back(system_keys, mechanic):
    client = superuser_client()

    lookup = client.get("/admin/orders/order/?vin__regex=(")
    selected = client.post("/admin/orders/mechanicprofile/",
                           {"action": "deactivate", "_selected_action": ["abc"]})  # fmt: skip
    nul = client.post("/admin/orders/category/add/", {"name_en": "Bra\x00kes"})

    assert lookup.status_code == selected.status_code == nul.status_code == 400
    page = lookup.content.decode()
    assert "Filtering by vin__regex not allowed" in page and "Refused" in page
    assert '<a href="/admin/orders/order/">Back</a>' in page
    assert "Nothing was changed." not in page
    assert "A selected item&#x27;s id is not one." in selected.content.decode()
    assert "Null characters are not allowed." in nul.content.decode()
    assert "Nothing was changed." in nul.content.decode()


@pytest.mark.parametrize(
    ("url", "rows"),
    [
        ("/admin/orders/order/?status__exact=new", 1),
        ("/admin/orders/order/?status__exact=completed", 0),
        ("/admin/orders/order/?q=TEST123456789", 1),
        ("/admin/events/event/?sequence__gte=1&sequence__lte=1", 1),
        ("/admin/events/event/?event_type=order.created", 1),
    ],
)
def test_changelists__the_filters_the_page_offers_still_filter(system_keys, mechanic, url, rows):
    order_create(**RUNBOOK_ORDER, created_by=mechanic.user)

    response = superuser_client().get(url)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == rows


def test_date_filter__its_own_links_filter_and_bounds_that_do_not_read_are_refused(
    system_keys, mechanic
):
    order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    client = superuser_client()
    page = client.get("/admin/orders/order/")
    date_filter = next(spec for spec in page.context["cl"].filter_specs
                       if spec.field_path == "created_at")  # fmt: skip
    links = {choice["display"]: choice["query_string"] for choice in date_filter.choices(page.context["cl"])}  # fmt: skip

    today = client.get(f"/admin/orders/order/{links['Today']}")
    refused = [
        client.get("/admin/orders/order/", {"created_at__gte": bound})
        for bound in ("0001-01-01", "0001-01-01 00:00:00+14:00", "9999-12-31", "abc", "")
    ]
    exported = client.get("/admin/orders/order/export.csv", {"created_at__gte": "0001-01-01"})

    assert len(today.context["cl"].result_list) == 1
    assert [r.status_code for r in refused] == [302] * 5
    assert {r["Location"] for r in refused} == {"/admin/orders/order/?e=1"}
    assert exported.status_code == 400


def test_changelists__no_lookup_or_filter_value_in_the_url_is_a_server_error(system_keys, mechanic):
    """Every changelist the site registers: lookups on each of its fields, and each parameter
    its filters read, with values that do not fit."""
    order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    client = superuser_client()
    lookups = {"year": "99999", "regex": "(", "range": "1", "in": "99999999999999999999,1"}
    values = ("99999999999999999999", "abc", "0001-01-01", "9999-12-31 23:59:59", "", "²")
    errors = []
    for url, model_admin in registered_changelists():
        cl = client.get(url).context["cl"]
        offered = {p for spec in cl.filter_specs for p in spec.expected_parameters()}
        asks = [{f"{field.name}__{lookup}": value} for field in model_admin.model._meta.concrete_fields
                for lookup, value in lookups.items()]  # fmt: skip
        asks += [{param: value} for param in offered | set(getattr(model_admin, "url_lookups", ())) for value in values]  # fmt: skip
        for ask in asks:
            with transaction.atomic():
                if client.get(url, ask).status_code >= 500:
                    errors.append((url, ask))
                transaction.set_rollback(True)
    assert errors == []


@pytest.mark.parametrize(
    ("url", "action", "selected"),
    [
        ("/admin/auth/user/", "delete_selected", ["abc"]),
        ("/admin/auth/user/", "delete_selected", ["99999999999999999999"]),
        ("/admin/events/event/", "verify_selected_range", ["1", "abc"]),
        ("/admin/notifications/notification/", "retry_now", ["²"]),
        ("/admin/orders/mechanicprofile/", "deactivate", ["1e3"]),
    ],
)
def test_actions__a_selected_id_that_is_not_one__400_nothing_done(
    system_keys, mechanic, url, action, selected
):
    events = Event.objects.count()
    users = sorted(UserFactory._meta.model.objects.values_list("pk", "is_active"))

    response = superuser_client().post(url, {"action": action, "_selected_action": selected})

    assert response.status_code == 400
    assert Event.objects.count() == events
    assert sorted(UserFactory._meta.model.objects.exclude(username="root").values_list("pk", "is_active")) == users  # fmt: skip


def test_mechanics__create_with_a_display_name_that_turns_text__told_on_the_form(staff):
    refused = staff.post("/admin/orders/mechanicprofile/add/", {
        "username": "nina", "password": "a-long-enough-password-8",
        "display_name": "Nina \u202eadmin", "language": "en"})  # fmt: skip

    assert refused.status_code == 200
    assert "text direction overrides are not allowed" in refused.content.decode()
    assert not MechanicProfile.objects.exists()


@pytest.mark.parametrize(
    ("username", "chat_id", "problem"),
    [("milo", "", "exists already"), ("MILO", "", "exists already"),
     ("nina", str(2**60), "positive id"), ("nina", "777", "linked to another mechanic"),
     ("nina\u202e", "", "letters, numbers")],
)  # fmt: skip
def test_mechanics__create_refused_by_the_service__told_on_the_form(
    staff, mechanic, username, chat_id, problem
):
    staff.post("/admin/orders/mechanicprofile/add/", {
        "username": "milo", "password": "a-long-enough-password-9", "display_name": "Milo",
        "language": "en", "telegram_chat_id": "777"})  # fmt: skip
    mechanics = MechanicProfile.objects.count()

    refused = staff.post("/admin/orders/mechanicprofile/add/", {
        "username": username, "password": "a-long-enough-password-8", "display_name": "N",
        "language": "en", "telegram_chat_id": chat_id})  # fmt: skip

    assert refused.status_code == 200
    assert problem in refused.content.decode()
    assert MechanicProfile.objects.count() == mechanics


@pytest.mark.parametrize("page", ["add", "change"])
def test_users__a_name_taken_in_another_case__told_on_the_form_nothing_written(system_keys, page):
    """ "IVAN" beside "ivan" is one name (the database's index on UPPER(username)): Django's
    own user form tells it on creation, and a rename to it is told the same way, not a 500."""
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    UserFactory(username="ivan")
    bob = UserFactory(username="bob")
    client = Client()
    client.force_login(root)

    if page == "add":
        form = {"username": "IVAN", "usable_password": "false"}
        answer = client.post("/admin/auth/user/add/", form)
    else:
        form = {"username": "IVAN", "is_active": "on", "date_joined_0": "2026-12-01",
                "date_joined_1": "10:00:00", "initial-date_joined_0": "2026-12-01",
                "initial-date_joined_1": "10:00:00"}  # fmt: skip
        answer = client.post(f"/admin/auth/user/{bob.pk}/change/", form)

    assert answer.status_code == 200
    assert "A user with that username already exists." in answer.content.decode()
    assert sorted(User.objects.values_list("username", flat=True)) == ["bob", "ivan", "root"]


def test_users__renamed_to_a_name_another_took_since_the_form_was_checked__409_the_reason(
    system_keys,
):
    """Between the rename form's check and its save, another user takes the name ("ivan"
    for "IVAN"): the index refuses the save, and the admin says why (409), not a 500."""
    from django.test import RequestFactory

    from conclave.exceptions import Conflict

    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    bob = UserFactory(username="bob")
    user_admin = admin.site._registry[User]
    request = RequestFactory().post(f"/admin/auth/user/{bob.pk}/change/")
    request.user = root
    data = {"username": "IVAN", "is_active": "on", "date_joined_0": "2026-12-01",
            "date_joined_1": "10:00:00"}  # fmt: skip
    form = user_admin.get_form(request, bob, change=True)(data, instance=bob)
    assert form.is_valid(), form.errors
    UserFactory(username="ivan")  # another's, after the check

    with pytest.raises(Conflict, match="A user named ivan exists already."):
        user_admin.save_model(request, user_admin.save_form(request, form, True), form, True)

    assert sorted(User.objects.values_list("username", flat=True)) == ["bob", "ivan", "root"]


def _user_form(user: User, **changes) -> dict:
    """The admin's change form of `user` as its page fills it, with `changes`."""
    form = {
        "username": user.username, "first_name": user.first_name, "last_name": user.last_name,
        "email": user.email, "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "groups": [str(pk) for pk in user.groups.values_list("pk", flat=True)],
        **({"is_active": "on"} if user.is_active else {}),
        **({"is_staff": "on"} if user.is_staff else {}),
        **({"is_superuser": "on"} if user.is_superuser else {}),
    }  # fmt: skip
    form.update(changes)
    return {name: value for name, value in form.items() if value is not None}


def test_users__a_grant_or_a_change_in_the_admin__one_event_naming_who_and_what(system_keys):
    """Who made whom a keeper or a superuser is the log's to tell: each save of a user's page
    that changes something is one `user.changed` event (the roles' and flags' old and new
    values; a name or address only as changed, its value kept out of the public log); a save
    that changes nothing records nothing. A user added, and a password set, are events too,
    with no password in them."""
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    kim = UserFactory(username="kim", email="kim@example.com")
    client = Client()
    client.force_login(root)
    keepers = Group.objects.get(name=KEEPERS)
    before = Event.objects.count()

    unchanged = client.post(f"/admin/auth/user/{kim.pk}/change/", _user_form(kim))
    granted = client.post(f"/admin/auth/user/{kim.pk}/change/", _user_form(
        kim, is_staff="on", groups=[str(keepers.pk)], email="kim@workshop.example"))  # fmt: skip
    changed = Event.objects.filter(event_type="user.changed").order_by("sequence")
    added = client.post("/admin/auth/user/add/", {"username": "lea", "usable_password": "false"})
    lea = User.objects.get(username="lea")
    password = client.post(f"/admin/auth/user/{kim.pk}/password/", {
        "password1": "a-long-enough-password-9", "password2": "a-long-enough-password-9",
        "usable_password": "true"})  # fmt: skip

    assert unchanged.status_code == granted.status_code == added.status_code == 302
    assert password.status_code == 302
    assert [event.payload for event in changed] == [{
        "user_id": kim.pk, "username": "kim", "actor": "user:root",
        "changes": {"is_staff": {"old": False, "new": True},
                    "groups": {"added": [KEEPERS], "removed": []}},
        "personal_fields": ["email"],
    }]  # fmt: skip
    assert last_event("user.created").payload == {
        "user_id": lea.pk, "username": "lea", "actor": "user:root", "password": "unusable",
        "is_staff": False, "is_superuser": False,
    }  # fmt: skip
    assert last_event("user.password_set").payload == {
        "user_id": kim.pk, "username": "kim", "actor": "user:root", "password": "set",
    }  # fmt: skip
    assert Event.objects.count() == before + 3


def test_users__deleted_in_the_admin_one_by_one_or_selected__an_event_each(system_keys):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    lea, max_, ida = (UserFactory(username=name) for name in ("lea", "max", "ida"))
    client = Client()
    client.force_login(root)

    one = client.post(f"/admin/auth/user/{lea.pk}/delete/", {"post": "yes"})
    selected = client.post("/admin/auth/user/", {
        "action": "delete_selected", "_selected_action": [str(max_.pk), str(ida.pk)],
        "post": "yes"})  # fmt: skip

    assert one.status_code == selected.status_code == 302
    assert sorted(User.objects.values_list("username", flat=True)) == ["root"]
    deleted = Event.objects.filter(event_type="user.deleted").order_by("sequence")
    assert sorted((e.payload["username"], e.payload["actor"]) for e in deleted) == [
        ("ida", "user:root"), ("lea", "user:root"), ("max", "user:root"),
    ]  # fmt: skip
