"""The outbox and its delivery, in process against the fake Bot API (a real HTTP server on
loopback). Real Celery workers, brokers and gunicorn: test_notifications_processes.py."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from conclave.exceptions import Conflict, NotFound
from notifications.delivery import breaker, deliver
from notifications.models import Notification, NotificationStatus
from notifications.services import notification_retry
from orders.models import MechanicProfile
from orders.services import order_assign, order_create, order_status_change, order_update
from orders.services.login_links import LoginLinkInvalid, login_link_redeem
from tests.fake_telegram import TOKEN
from tests.workshop import RUNBOOK_ORDER, flag_on

pytestmark = pytest.mark.django_db
ADMINS = [111, 222]  # the `telegram` fixture's ADMIN_CHAT_IDS


@pytest.fixture
def notifying(telegram, system_keys, django_capture_on_commit_callbacks):
    for name in ("ENABLE_TG_ADMIN_NOTIFS", "ENABLE_TG_MECH_NOTIFS", "ENABLE_CAR_NUMBER"):
        flag_on(name, django_capture_on_commit_callbacks)
    return telegram


def make_due(row: Notification) -> None:
    Notification.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())


def deliver_until_settled(row: Notification, rounds: int = 20) -> Notification:
    for _ in range(rounds):
        make_due(row)
        deliver(row.pk)
        row.refresh_from_db()
        if row.status not in (NotificationStatus.PENDING, NotificationStatus.SENDING):
            break
    return row


# --- What is written ---------------------------------------------------------------------------------


def test_flags_off__nothing_queued(telegram, system_keys, mechanic):
    order_create(**RUNBOOK_ORDER)

    assert not Notification.objects.exists()


def test_new_order__one_row_per_admin_chat_with_vin_car_number_part(notifying):
    order = order_create(**RUNBOOK_ORDER)

    rows = list(Notification.objects.order_by("chat_id"))
    assert [r.chat_id for r in rows] == ADMINS
    text = rows[0].text
    assert all(part in text for part in ("TEST123456789", "12-345-67", "brake_pads", "brakes"))
    assert f"/admin/orders/order/{order.pk}/change/" in text
    assert {r.status for r in rows} == {NotificationStatus.PENDING}


def test_rolled_back_order__no_rows(notifying):
    with pytest.raises(RuntimeError), transaction.atomic():
        order_create(**RUNBOOK_ORDER)
        raise RuntimeError("the caller fails after the order")

    assert not Notification.objects.exists()


def test_user_text_is_escaped_for_html(notifying):
    order_create(**{**RUNBOOK_ORDER, "mechanic_name": "<b>Bob</b> & <i>co</i>"})

    text = Notification.objects.first().text
    assert "&lt;b&gt;Bob&lt;/b&gt; &amp; &lt;i&gt;co&lt;/i&gt;" in text


def test_correction__staff_chats_told_old_and_new(notifying, mechanic, staff_user):
    """Staff act on the new order's message: a VIN corrected afterwards reaches them too, or
    the part is ordered for the car the typo named."""
    order = order_create(**RUNBOOK_ORDER)
    Notification.objects.all().delete()

    order_update(order_id=order.pk, user=staff_user,
                 changes={"vin": "TEST123456780", "part_type": "Pads <front>"})  # fmt: skip
    order_update(order_id=order.pk, user=staff_user, changes={"vin": "test123456780"})

    rows = list(Notification.objects.order_by("chat_id"))
    assert [(r.chat_id, r.kind) for r in rows] == [(chat, "order_corrected") for chat in ADMINS]
    *lines, link = rows[0].text.split("\n")
    assert lines == [
        f"<b>Order #{order.pk} corrected</b>",
        "VIN: <code>TEST123456789</code> → <code>TEST123456780</code>",
        "Part: brake_pads → Pads &lt;front&gt;",
    ]
    assert f'/admin/orders/order/{order.pk}/change/">Open in the admin</a>' in link


def test_correction__by_staff__the_mechanic_told_in_their_language_not_of_their_own(
    notifying, mechanic, staff_user
):
    MechanicProfile.objects.filter(pk=mechanic.pk).update(telegram_chat_id=555, language="ru")
    mechanic.refresh_from_db()
    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)

    order_update(order_id=order.pk, user=staff_user,
                 changes={"vin": "TEST123456780", "original_or_analog": "analog"})  # fmt: skip
    order_update(order_id=order.pk, user=mechanic.user, changes={"part_type": "Pads"})

    (row,) = Notification.objects.filter(chat_id=555)
    assert row.kind == "order_corrected"
    assert row.text.split("\n") == [
        f"<b>Заказ #{order.pk} исправлен</b>",
        "VIN: <code>TEST123456789</code> → <code>TEST123456780</code>",
        "Оригинал или аналог: Оригинал → Аналог",
        f'<a href="{settings.SITE_URL}/mechanic/orders/{order.pk}">Открыть заказ</a>',
    ]


def test_correction__staff_notifications_off__nothing_queued(
    telegram, system_keys, mechanic, staff_user
):
    order = order_create(**RUNBOOK_ORDER)

    order_update(order_id=order.pk, user=staff_user, changes={"vin": "TEST123456780"})

    assert not Notification.objects.exists()


def test_status_change__mechanics_chat_in_their_language(notifying, mechanic):
    MechanicProfile.objects.filter(pk=mechanic.pk).update(telegram_chat_id=555, language="ru")
    mechanic.refresh_from_db()
    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)

    order_status_change(order_id=order.pk, status="in_progress", mechanic=mechanic)

    row = Notification.objects.get(chat_id=555)
    assert "Новый" in row.text and "В работе" in row.text
    assert f"/mechanic/orders/{order.pk}" in row.text


def test_assignment__one_time_login_link_that_opens_the_order(notifying, mechanic, staff_user):
    MechanicProfile.objects.filter(pk=mechanic.pk).update(telegram_chat_id=777)
    order = order_create(**RUNBOOK_ORDER)

    order_assign(order_id=order.pk, mechanic_id=mechanic.pk, actor=staff_user)

    text = Notification.objects.get(chat_id=777).text
    token = text.split("/mechanic/login/link/")[1].split('"')[0]
    link = login_link_redeem(token)
    assert (link.mechanic_id, link.order_id) == (mechanic.pk, order.pk)
    with pytest.raises(LoginLinkInvalid):
        login_link_redeem(token)  # once only
    with pytest.raises(LoginLinkInvalid):
        login_link_redeem(token[:-2] + "xx")


def test_identical_message_to_the_same_chat_within_the_window__written_once(notifying, mechanic):
    MechanicProfile.objects.filter(pk=mechanic.pk).update(telegram_chat_id=555)
    mechanic.refresh_from_db()
    first = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    # The same words again: possible only by replaying the same order; stand one in.
    from notifications.services import notify_status_changed

    order_status_change(order_id=first.pk, status="in_progress", mechanic=mechanic)
    first.refresh_from_db()
    event = type("E", (), {"queue_id": 10**9})()
    again = notify_status_changed(
        order=first,
        old="new",
        new="in_progress",
        event=event,
        flags={"ENABLE_TG_MECH_NOTIFS": True},
    )

    assert again == 0
    assert Notification.objects.filter(chat_id=555).count() == 1


# --- Delivery ---------------------------------------------------------------------------------------------


def test_deliver__sent_once_with_telegrams_message_id(notifying):
    order_create(**RUNBOOK_ORDER)
    row = Notification.objects.get(chat_id=111)

    deliver(row.pk)
    deliver(row.pk)  # a second task for the same row: nothing to do

    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT
    assert row.telegram_message_id is not None and row.sent_at is not None
    assert len(notifying.messages_to(111)) == 1
    assert notifying.accepted[0]["parse_mode"] == "HTML"


def test_deliver__500_three_times_then_429__arrives_once(notifying):
    order_create(**RUNBOOK_ORDER)
    row = Notification.objects.get(chat_id=111)
    notifying.fail_next((500, {}), (500, {}), (500, {}), (429, {"parameters": {"retry_after": 2}}))

    make_due(row)
    deliver(row.pk)
    row.refresh_from_db()
    assert (row.status, row.last_error) == (NotificationStatus.PENDING, "500 scripted")
    row = deliver_until_settled(row)

    assert row.status == NotificationStatus.SENT
    assert len(notifying.messages_to(111)) == 1
    assert row.attempts == 4  # three failures and the send; the 429 does not count


def test_deliver__429_waits_what_telegram_says(notifying):
    order_create(**RUNBOOK_ORDER)
    row = Notification.objects.get(chat_id=111)
    notifying.fail_next((429, {"parameters": {"retry_after": 7}}))

    retry_in = deliver(row.pk)

    row.refresh_from_db()
    assert retry_in == 7
    assert row.next_attempt_at - timezone.now() > timedelta(seconds=6)
    assert row.status == NotificationStatus.PENDING


def test_deliver__bad_chat_fails_that_row_only_with_the_reason(notifying):
    notifying.bad_chats.add(222)
    order_create(**RUNBOOK_ORDER)

    for row in Notification.objects.all():
        deliver(row.pk)

    bad, good = Notification.objects.get(chat_id=222), Notification.objects.get(chat_id=111)
    assert bad.status == NotificationStatus.FAILED
    assert bad.last_error == "400 Bad Request: chat not found"
    assert good.status == NotificationStatus.SENT
    assert deliver(bad.pk) is None and notifying.calls == 2  # never retried


def test_deliver__out_of_attempts__dead(notifying, settings):
    settings.NOTIFY_MAX_ATTEMPTS = 3
    order_create(**RUNBOOK_ORDER)
    row = Notification.objects.get(chat_id=111)
    notifying.fail_next(*[(502, {})] * 5)

    row = deliver_until_settled(row)

    assert row.status == NotificationStatus.DEAD
    assert "after 3 attempts" in row.last_error
    assert notifying.accepted == []


def test_retry_now__a_dead_row_is_sent_again_once(notifying, settings):
    settings.NOTIFY_MAX_ATTEMPTS = 1
    order_create(**RUNBOOK_ORDER)
    row = Notification.objects.get(chat_id=111)
    notifying.fail_next((502, {}))
    row = deliver_until_settled(row)
    assert row.status == NotificationStatus.DEAD

    notification_retry(notification_id=row.pk)
    row = deliver_until_settled(row)

    assert (row.status, row.attempts) == (NotificationStatus.SENT, 1)
    assert len(notifying.messages_to(111)) == 1


def test_retry_now__only_failed_or_dead_rows(notifying):
    order_create(**RUNBOOK_ORDER)
    row = Notification.objects.get(chat_id=111)

    with pytest.raises(Conflict, match="is pending"):
        notification_retry(notification_id=row.pk)
    with pytest.raises(NotFound):
        notification_retry(notification_id=row.pk + 1000)


def test_deliver__circuit_opens_after_failures_in_a_row_and_stops_calling(notifying, settings):
    settings.TELEGRAM_BREAKER_FAILURES = 2
    breaker.cache_clear()
    order_create(**RUNBOOK_ORDER)
    first, second = Notification.objects.order_by("chat_id")
    notifying.fail_next(*[(500, {})] * 10)

    for _ in range(2):
        make_due(first)
        deliver(first.pk)
    calls = notifying.calls
    make_due(second)
    retry_in = deliver(second.pk)

    second.refresh_from_db()
    assert notifying.calls == calls  # the open circuit did not call Telegram
    assert retry_in == settings.TELEGRAM_BREAKER_RESET_SECONDS
    assert (second.status, second.last_error, second.attempts) == (
        NotificationStatus.PENDING,
        "circuit open: Telegram is failing",
        0,
    )


def test_deliver__second_message_to_a_chat_within_a_second_waits(notifying, mechanic, settings):
    settings.TELEGRAM_RATE_PER_CHAT = "1/second"
    MechanicProfile.objects.filter(pk=mechanic.pk).update(telegram_chat_id=555)
    mechanic.refresh_from_db()
    order = order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    order_status_change(order_id=order.pk, status="in_progress", mechanic=mechanic)
    order_status_change(order_id=order.pk, status="ready", mechanic=mechanic)
    first, second = Notification.objects.filter(chat_id=555).order_by("id")

    deliver(first.pk)
    waited = deliver(second.pk)

    second.refresh_from_db()
    assert 0 < waited <= 1.0
    assert (second.status, second.last_error) == (NotificationStatus.PENDING, "rate_limit")
    assert len(notifying.messages_to(555)) == 1


def test_deliver__telegram_unreachable__transient_and_token_never_in_the_error(notifying, settings):
    from tests.conftest import free_port

    order_create(**RUNBOOK_ORDER)
    settings.TELEGRAM_API_BASE_URL = f"http://127.0.0.1:{free_port()}"
    row = Notification.objects.get(chat_id=111)

    deliver(row.pk)

    row.refresh_from_db()
    assert row.status == NotificationStatus.PENDING
    assert row.last_error.startswith("unreachable")
    assert TOKEN not in row.last_error and TOKEN.split(":")[1] not in row.last_error


def test_telegram_check_command__reports_the_bot(telegram, capsys):
    call_command("telegram", "check")

    assert "@fake_bot" in capsys.readouterr().out


def test_ready__reports_the_outbox_backlog_and_stays_ready(notifying, api_client):
    order_create(**RUNBOOK_ORDER)

    response = api_client.get("/v1/ready")

    assert response.status_code == 200
    assert response.json()["outbox"]["backlog"] == len(ADMINS)
    assert response.json()["outbox"]["oldest_age_seconds"] >= 0


@pytest.mark.parametrize(
    ("answer", "retry_in"),
    [((429, {"parameters": {"retry_after": "soon"}}), 1),
     ((429, {"parameters": [7]}), 1),
     ((429, {"parameters": {"retry_after": 1e300}}), 3600),
     ((429, {"parameters": {"retry_after": -5}}), 1),
     ((503, {"error_code": "busy"}), None)],
)  # fmt: skip
def test_deliver__telegrams_error_answer_malformed__still_retried_in_bounds(
    notifying, answer, retry_in
):
    order_create(**RUNBOOK_ORDER)
    row = Notification.objects.get(chat_id=111)
    notifying.fail_next(answer)

    waited = deliver(row.pk)

    row.refresh_from_db()
    assert row.status == NotificationStatus.PENDING
    assert waited == retry_in if retry_in else waited is not None
    assert deliver_until_settled(row).status == NotificationStatus.SENT
    assert len(notifying.messages_to(111)) == 1


def test_deliver__accepted_without_a_message_id__sent_once_not_retried(notifying):
    """Telegram said ok: the message is out, whatever else its answer lacks; sending it again
    would send it twice."""
    order_create(**RUNBOOK_ORDER)
    row = Notification.objects.get(chat_id=111)
    notifying.fail_next((200, {"ok": True, "result": True}))

    deliver(row.pk)
    deliver(row.pk)

    row.refresh_from_db()
    assert (row.status, row.telegram_message_id) == (NotificationStatus.SENT, None)
    assert notifying.calls == 1
