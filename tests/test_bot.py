"""The Telegram ordering bot through its webhook: Telegram's Update JSON in, the bot's answers
out through the outbox (and, where it matters, on to the fake Bot API)."""

import io
import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from PIL import Image
from rest_framework.test import APIClient

from bot.models import BotChat, TelegramUpdate
from bot.tasks import prune_telegram_updates
from conclave.halt import forget_halt_status
from conclave.services import halt_raise
from flags.services import flag_set
from notifications.delivery import deliver
from notifications.models import Notification, NotificationKind, NotificationStatus
from orders.models import Category, Order, OrderStatus, Part
from orders.services import mechanic_create, order_status_change
from tests.workshop import MECHANIC_PASSWORD, flag_on

pytestmark = pytest.mark.django_db
SECRET = "webhook-secret-for-tests_1"
CHAT = 5550001
_update_ids = itertools.count(1000)


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), "red").save(buffer, "JPEG")
    return buffer.getvalue()


class Chat:
    """A Telegram user talking to the bot: each call is one Update to the webhook."""

    def __init__(self, client: APIClient, chat_id: int = CHAT) -> None:
        self.client, self.chat_id = client, chat_id

    def post(self, update: dict[str, Any], secret: str = SECRET):
        return self.client.post(
            "/api/telegram/webhook",
            update,
            format="json",
            HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=secret,
        )

    def _message(self, **content: Any) -> dict[str, Any]:
        return {
            "message_id": 1,
            "date": 0,
            "chat": {"id": self.chat_id, "type": "private"},
            "from": {"id": self.chat_id, "is_bot": False, "first_name": "M"},
            **content,
        }

    def send(self, text: str) -> dict[str, Any]:
        update = {"update_id": next(_update_ids), "message": self._message(text=text)}
        assert self.post(update).status_code == 200
        return update

    def send_photo(self, file_id: str, size: int) -> None:
        photo = [
            {"file_id": f"{file_id}-small", "width": 9, "height": 9, "file_size": 100},
            {"file_id": file_id, "width": 90, "height": 90, "file_size": size},
        ]
        update = {"update_id": next(_update_ids), "message": self._message(photo=photo)}
        assert self.post(update).status_code == 200

    def press(self, data: str) -> dict[str, Any]:
        update = {
            "update_id": next(_update_ids),
            "callback_query": {
                "id": f"cb{next(_update_ids)}",
                "from": {"id": self.chat_id, "is_bot": False, "first_name": "M"},
                "message": self._message(text="(the bot's question)"),
                "data": data,
            },
        }
        response = self.post(update)
        assert response.status_code == 200
        return response.json()

    def replies(self) -> list[Notification]:
        return list(
            Notification.objects.filter(chat_id=self.chat_id, kind=NotificationKind.BOT_REPLY)
        )

    def last(self) -> Notification:
        return self.replies()[-1]

    def buttons(self) -> dict[str, str]:
        """The last answer's buttons: callback data -> label."""
        markup = self.last().reply_markup or {"inline_keyboard": []}
        return {b["callback_data"]: b["text"] for row in markup["inline_keyboard"] for b in row}

    def button(self, label: str) -> str:
        return next(data for data, text in self.buttons().items() if label in text)


@pytest.fixture
def bot(telegram, settings, system_keys, api_client):
    settings.TELEGRAM_WEBHOOK_SECRET = SECRET
    return Chat(api_client)


@pytest.fixture
def linked(bot):
    return mechanic_create(
        username="tala",
        password=MECHANIC_PASSWORD,
        display_name="Tal <Mechanic>",
        telegram_chat_id=CHAT,
        language="he",
    )


@pytest.fixture
def catalog(django_capture_on_commit_callbacks):
    flag_on("ENABLE_PART_CATEGORIES", django_capture_on_commit_callbacks)
    brakes = Category.objects.create(name_en="Brakes", name_he="בלמים", name_ru="Тормоза")
    Category.objects.create(name_en="Engine", name_he="מנוע", name_ru="Двигатель", sort_order=1)
    pads = Part.objects.create(
        category=brakes, name_en="Brake pads", name_he="רפידות", name_ru="Колодки",
        price=Decimal("120.50"), is_common=True,
    )  # fmt: skip
    disc = Part.objects.create(
        category=brakes, name_en="Brake disc", name_he="דיסק", name_ru="Диск",
        price=Decimal("300.00"),
    )  # fmt: skip
    return brakes, pads, disc


# --- The gate ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", "wrong", SECRET + "x"])
def test_wrong_or_missing_secret__403_and_nothing_done(bot, linked, secret):
    response = bot.post({"update_id": 1, "message": bot._message(text="/order")}, secret=secret)

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert not TelegramUpdate.objects.exists() and not Notification.objects.exists()


def test_no_secret_configured__every_request_refused(bot, linked, settings):
    settings.TELEGRAM_WEBHOOK_SECRET = ""

    response = bot.post({"update_id": 1, "message": bot._message(text="/start")}, secret="")

    assert response.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"update_id": "7"},
        {"update_id": -1},
        {"update_id": True},
        {"update_id": 7, "message": "hello"},
        {"update_id": 7, "message": {"chat": {"id": "x"}}},
        {"update_id": 7, "message": {"chat": {"id": 5, "type": "private"}, "text": 5}},
        # Past what Telegram's ids can be (and PostgreSQL's bigint can hold).
        {"update_id": 2**63, "message": {"chat": {"id": 5, "type": "private"}, "text": "hi"}},
        {"update_id": 7, "message": {"chat": {"id": 2**52, "type": "private"}, "text": "hi"}},
        {"update_id": 7, "message": {"chat": {"id": -(2**70), "type": "private"}, "text": "hi"}},
    ],
)
def test_malformed_update__400_and_nothing_done(bot, linked, body):
    response = bot.post(body)

    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert not TelegramUpdate.objects.exists()


def test_update_kinds_the_bot_does_not_answer__200_and_taken(bot, linked):
    response = bot.post({"update_id": 9, "edited_channel_post": {"text": "hi"}})

    assert response.status_code == 200
    assert TelegramUpdate.objects.filter(pk=9).exists()
    assert not Notification.objects.exists()


def test_group_chats__not_answered(bot, linked):
    update = {"update_id": 10, "message": {**bot._message(text="/order")}}
    update["message"]["chat"] = {"id": CHAT, "type": "group"}

    assert bot.post(update).status_code == 200
    assert not Notification.objects.exists()


def test_replayed_update__ignored(bot, linked):
    update = bot.send("/orders")
    bot.send("/start")  # something in between
    before = [(r.text, r.idempotency_key) for r in bot.replies()]

    response = bot.post(update)

    assert response.status_code == 200
    assert [(r.text, r.idempotency_key) for r in bot.replies()] == before


def test_halted__503_and_telegram_delivers_it_again_later(bot, linked):
    halt_raise(reason="integrity in doubt", actor="test", channel="command")
    forget_halt_status()

    response = bot.post({"update_id": 77, "message": bot._message(text="/start")})

    assert response.status_code == 503
    assert not TelegramUpdate.objects.filter(pk=77).exists()


# --- Strangers and languages ------------------------------------------------------------------------


def test_unknown_chat__told_how_to_get_linked_with_its_chat_id(bot):
    stranger = Chat(bot.client, chat_id=424242)

    stranger.send("/order")

    reply = stranger.last()
    assert "not linked" in reply.text and "<code>424242</code>" in reply.text
    assert not BotChat.objects.exists() and not Order.objects.exists()


def test_unknown_chat_repeating_itself__answered_once_within_the_window(bot):
    stranger = Chat(bot.client, chat_id=424242)

    stranger.send("/order")
    stranger.send("hello?")

    assert len(stranger.replies()) == 1


def test_inactive_mechanic__treated_as_unknown(bot, linked):
    linked.is_active = False
    linked.save()

    bot.send("/order")

    assert "<code>5550001</code>" in bot.last().text


def test_start__language_choice__then_everything_in_that_language(bot, linked):
    bot.send("/start")
    assert set(bot.buttons()) == {"lang:en", "lang:he", "lang:ru"}

    bot.press("lang:ru")

    assert "Здравствуйте, Tal &lt;Mechanic&gt;!" in bot.last().text
    bot.send("/order")
    assert bot.last().text == "Напишите, какая деталь нужна (до 100 символов):"


def test_without_a_choice__the_mechanics_profile_language(bot, linked):
    bot.send("/order")

    assert bot.last().text == "הקלד את החלק שאתה צריך (עד 100 תווים):"


# --- Making an order --------------------------------------------------------------------------------


def test_conversation__catalog_parts_car_number_photo__order_made_end_to_end(
    bot, linked, catalog, telegram, django_capture_on_commit_callbacks
):
    brakes, pads, disc = catalog
    flag_on("ENABLE_CAR_NUMBER", django_capture_on_commit_callbacks)
    telegram.files["photo-1"] = jpeg()
    bot.send("/start")
    bot.press("lang:en")

    bot.send("/order")
    assert bot.last().text == "Which category is the part in?"
    assert bot.buttons()[f"cat:{brakes.pk}"] == "Brakes"
    bot.press(f"cat:{brakes.pk}")
    assert list(bot.buttons())[:2] == [f"part:{pads.pk}", f"part:{disc.pk}"]  # common first
    bot.press(f"part:{pads.pk}")
    bot.press(f"part:{disc.pk}")
    assert bot.buttons()[f"part:{pads.pk}"] == "✓ Brake pads"
    bot.press("done")
    assert bot.last().text.startswith("Send the car's VIN")
    bot.send("not a vin!")
    assert bot.last().text.startswith("That is not a VIN")
    bot.send("test123456789")
    assert bot.last().text.startswith("Send the car number")
    bot.send("12-345-67")
    bot.press("origin:analog")
    assert bot.last().text.startswith("Send a photo")
    bot.send_photo("photo-1", size=len(telegram.files["photo-1"]))
    summary = bot.last().text
    assert "Brake pads, Brake disc" in summary and "TEST123456789" in summary
    assert "12-345-67" in summary and "Analog" in summary and "Photo: yes" in summary
    assert Order.objects.count() == 0

    answer = bot.press("confirm")

    assert answer["method"] == "answerCallbackQuery"
    order = Order.objects.get()
    assert (order.vin, order.car_number, order.original_or_analog) == (
        "TEST123456789",
        "12-345-67",
        "analog",
    )
    assert (order.part_type, order.category, order.part) == (
        "Brake pads, Brake disc",
        "Brakes",
        pads,
    )
    assert order.mechanic == linked and order.created_by == linked.user
    assert (order.telegram_chat_id, order.telegram_language) == (CHAT, "en")
    assert [(i.name, i.unit_price) for i in order.items.order_by("id")] == [
        ("Brake pads", Decimal("120.50")),
        ("Brake disc", Decimal("300.00")),
    ]
    assert order.photos.get().content_type == "image/jpeg"
    assert bot.last().text == f"Order #{order.pk} is in. You will hear here when it is ready."
    assert BotChat.objects.get().step == "idle"


def test_catalog_off__the_part_is_typed_and_no_car_number_asked(bot, linked):
    bot.send("/start")
    bot.press("lang:en")
    bot.send("/order")
    bot.send("Timing belt")
    bot.send("TESTADMIN123456")
    assert bot.last().text == "Original part or analog?"  # ENABLE_CAR_NUMBER off: not asked
    bot.press("origin:original")
    bot.press("skip")
    bot.press("confirm")

    order = Order.objects.get()
    assert (order.part_type, order.category, order.car_number) == ("Timing belt", "general", "")
    assert not order.items.exists() and not order.photos.exists()


def up_to_the_summary(bot: Chat, category: Category, part: Part) -> None:
    """From the order's first step to its summary: the part from the catalog, the runbook's
    VIN, an original part, no photo (ENABLE_CAR_NUMBER off: no car number asked)."""
    bot.press(f"cat:{category.pk}")
    bot.press(f"part:{part.pk}")
    bot.press("done")
    bot.send("TEST123456789")
    bot.press("origin:original")
    bot.press("skip")


def test_back__at_every_step_returns_to_the_one_before(bot, linked, catalog):
    brakes, pads, _disc = catalog
    bot.send("/start")
    bot.press("lang:en")
    bot.send("/order")
    assert "back" not in bot.buttons()  # the first step
    up_to_the_summary(bot, brakes, pads)
    assert "confirm" in bot.buttons()

    asked = []
    for _ in range(5):
        bot.press("back")
        asked.append(bot.last().text.split("\n")[0])

    assert asked == [
        "Send a photo of the part or the car if it helps, or Skip.",
        "Original part or analog?",
        "Send the car's VIN (6 to 17 letters and digits):",
        "Pick the parts you need (tap again to remove one), then Done.",
        "Which category is the part in?",
    ]
    assert bot.buttons()[f"cat:{brakes.pk}"]
    bot.press("back")
    assert bot.last().text == "This is the first step. /cancel drops the order."


def test_catalog_switched_off_before_confirm__its_parts_taken_out_the_part_typed_instead(
    bot, linked, catalog, django_capture_on_commit_callbacks
):
    brakes, pads, _disc = catalog
    bot.send("/start")
    bot.press("lang:en")
    bot.send("/order")
    up_to_the_summary(bot, brakes, pads)
    with django_capture_on_commit_callbacks(execute=True):
        flag_set(name="ENABLE_PART_CATEGORIES", enabled=False, actor="test")

    bot.press("confirm")

    told = [reply.text for reply in bot.replies()[-2:]]
    assert told == [
        "The parts catalog has been switched off: the parts picked from it were taken out of "
        "this order.",
        "Type the part you need (up to 100 characters):",
    ]
    assert not Order.objects.exists()
    bot.send("Brake pads, front")  # the other answers are kept: straight to the summary
    assert "TEST123456789" in bot.last().text and "confirm" in bot.buttons()
    bot.press("confirm")
    order = Order.objects.get()
    assert (order.part_type, order.category, order.vin) == (
        "Brake pads, front", "general", "TEST123456789",
    )  # fmt: skip
    assert not order.items.exists()


def test_cancel__drops_the_order_in_the_making(bot, linked):
    bot.send("/order")
    bot.send("Timing belt")

    bot.send("/cancel")

    assert BotChat.objects.get().step == "idle"
    bot.send("TEST123456789")  # no longer a VIN answer
    assert not Order.objects.exists()


def test_old_buttons__refused_with_a_notice(bot, linked):
    bot.send("/start")
    bot.press("lang:en")
    bot.send("/order")

    answer = bot.press("confirm")  # from an earlier summary, say

    assert answer["text"] == "That button belongs to an earlier step."
    assert not Order.objects.exists()


@pytest.mark.parametrize("data", ["cat:\u00b2", "cat:" + "1" * 60, "part:\u00b2"])
def test_forged_buttons__refused_with_a_notice(bot, linked, catalog, data):
    brakes, _pads, _disc = catalog
    bot.send("/start")
    bot.press("lang:en")
    bot.send("/order")
    bot.press(f"cat:{brakes.pk}")

    answer = bot.press(data)

    assert answer["text"] == "That button belongs to an earlier step."


def test_nul_in_a_message__dropped_the_rest_read(bot, linked):
    bot.send("/start")
    bot.press("lang:en")
    bot.send("/order")

    bot.send("Mir\x00ror")

    assert BotChat.objects.get().draft["manual_part"] == "Mirror"


def test_typed_part__lines_joined__control_or_direction_characters_asked_again(bot, linked):
    bot.send("/start")
    bot.press("lang:en")
    bot.send("/order")

    bot.send("Mirror \u202eleft")
    refused = bot.last().text
    bot.send("Mirror\n  left")

    assert refused == "A part name cannot hold control characters or text direction overrides."
    assert BotChat.objects.get().draft["manual_part"] == "Mirror left"


def test_done_without_a_part__asked_to_pick_one(bot, linked, catalog):
    brakes, _pads, _disc = catalog
    bot.send("/order")
    bot.press(f"cat:{brakes.pk}")

    answer = bot.press("done")

    assert answer["text"] == "בחר לפחות חלק אחד, או הקלד אחד."


def test_conversation_expires__told_and_started_over(bot, linked, settings):
    bot.send("/order")
    BotChat.objects.update(expires_at=BotChat.objects.get().expires_at - timedelta(hours=1))

    bot.send("Timing belt")

    assert bot.last().text.startswith("ההזמנה נשארה לא גמורה")
    assert BotChat.objects.get().step == "idle"


@pytest.mark.parametrize(("limit", "taken"), [(1000, "huge-small"), (50, None)])
def test_photo__the_largest_size_within_the_limit_or_refused(bot, linked, settings, limit, taken):
    settings.ORDER_PHOTO_MAX_BYTES = limit
    bot.send("/start")
    bot.press("lang:en")
    bot.send("/order")
    bot.send("Mirror")
    bot.send("TEST123456789")
    bot.press("origin:original")

    bot.send_photo("huge", size=5000)  # Telegram's sizes: 100 bytes and 5000 bytes

    assert BotChat.objects.get().draft.get("photo") == taken
    if taken is None:
        assert (
            bot.last().text == "That photo is too big (at most 0 MiB). Send a smaller one, or Skip."
        )


def test_photo_that_cannot_be_fetched__asked_again_and_no_order(bot, linked, telegram):
    bot.send("/start")
    bot.press("lang:en")
    bot.send("/order")
    bot.send("Mirror")
    bot.send("TEST123456789")
    bot.press("origin:original")
    bot.send_photo("missing", size=10)

    bot.press("confirm")

    assert bot.last().text.startswith("The photo could not be attached")
    assert BotChat.objects.get().step == "photo"
    assert not Order.objects.exists()
    bot.press("skip")
    bot.press("confirm")
    assert Order.objects.count() == 1


def test_photo_that_is_not_an_image__no_order_and_the_reason_told(bot, linked, telegram):
    telegram.files["text"] = b"not an image at all"
    bot.send("/start")
    bot.press("lang:en")
    bot.send("/order")
    bot.send("Mirror")
    bot.send("TEST123456789")
    bot.press("origin:original")
    bot.send_photo("text", size=19)

    bot.press("confirm")

    assert bot.last().text == (
        "The order could not be made: Not a readable JPEG, PNG or WebP image."
    )
    assert not Order.objects.exists()


def test_part_deleted_before_the_confirmation__no_order_told_why_in_the_chats_language(
    bot, linked, catalog
):
    brakes, pads, _disc = catalog
    bot.send("/order")  # the mechanic's language: Hebrew
    up_to_the_summary(bot, brakes, pads)
    gone = pads.pk
    pads.delete()  # by staff, while the mechanic read the summary

    bot.press("confirm")

    assert bot.last().text == f"לא ניתן היה ליצור את ההזמנה: חלק {gone} כבר אינו בקטלוג."
    assert not Order.objects.exists()


def test_orders__recent_orders_with_status_in_the_chats_language(bot, linked):
    bot.send("/order")
    bot.send("Timing belt")
    bot.send("TEST123456789")
    bot.press("origin:original")
    bot.press("skip")
    bot.press("confirm")

    bot.send("/orders")

    order = Order.objects.get()
    assert f"#{order.pk} · Timing belt · <code>TEST123456789</code> · חדשה" in bot.last().text


# --- What goes out ----------------------------------------------------------------------------------


def test_answers_reach_telegram_with_their_buttons(bot, linked, telegram):
    bot.send("/start")

    deliver(bot.last().pk)

    sent = telegram.last_to(CHAT)
    assert sent["text"] == "בחר שפה:"  # the profile's language until the chat chooses
    assert sent["reply_markup"]["inline_keyboard"][0][1] == {
        "text": "עברית",
        "callback_data": "lang:he",
    }
    assert Notification.objects.get().status == NotificationStatus.SENT


def test_order_ready__the_chat_that_made_it_is_told_in_its_language(
    bot, linked, telegram, django_capture_on_commit_callbacks
):
    flag_on("ENABLE_TG_MECH_NOTIFS", django_capture_on_commit_callbacks)
    bot.send("/start")
    bot.press("lang:ru")
    bot.send("/order")
    bot.send("Timing belt")
    bot.send("TEST123456789")
    bot.press("origin:original")
    bot.press("skip")
    bot.press("confirm")
    order = Order.objects.get()
    order_status_change(order_id=order.pk, status=OrderStatus.IN_PROGRESS, mechanic=linked)

    order_status_change(order_id=order.pk, status=OrderStatus.READY, mechanic=linked)

    ready = Notification.objects.filter(kind=NotificationKind.ORDER_READY)
    assert [(r.chat_id, r.text) for r in ready] == [
        (CHAT, f"Ваш заказ #{order.pk} готов: Timing belt для TEST123456789.")
    ]
    # The mechanic's own chat made it: one message for the move to ready, not two (the move
    # to in progress went to the mechanic in their profile's Hebrew).
    status_changes = Notification.objects.filter(kind=NotificationKind.STATUS_CHANGED)
    assert [r.text.split("\n")[0].split(": ")[1] for r in status_changes] == [
        "חדשה ← <b>בטיפול</b>"
    ]


def test_prune__forgets_only_old_update_ids(bot, linked):
    bot.send("/orders")
    TelegramUpdate.objects.create(update_id=1)
    TelegramUpdate.objects.filter(update_id=1).update(
        received_at=TelegramUpdate.objects.get(update_id=1).received_at - timedelta(days=8)
    )

    assert prune_telegram_updates() == 1
    assert TelegramUpdate.objects.count() == 1


# --- Setting the webhook ----------------------------------------------------------------------------


def test_set_webhook__registers_the_url_with_the_secret(bot, telegram):
    call_command("telegram", "set_webhook", "https://hub.example/api/telegram/webhook")

    assert telegram.webhook == {
        "url": "https://hub.example/api/telegram/webhook",
        "allowed_updates": ["message", "callback_query"],
        "secret_token": SECRET,
    }


@pytest.mark.parametrize(
    ("secret", "message"),
    [("", "Set TELEGRAM_WEBHOOK_SECRET first"), ("has spaces", "1 to 256 of A-Z")],
)
def test_set_webhook__refused_without_a_usable_secret(bot, telegram, settings, secret, message):
    settings.TELEGRAM_WEBHOOK_SECRET = secret

    with pytest.raises(CommandError, match=message):
        call_command("telegram", "set_webhook", "https://hub.example/api/telegram/webhook")

    assert telegram.webhook == {}


def test_set_webhook__plain_http_refused_outside_debug(bot, telegram):
    with pytest.raises(CommandError, match="https://"):
        call_command("telegram", "set_webhook", "http://hub.example/api/telegram/webhook")
