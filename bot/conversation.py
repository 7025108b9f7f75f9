"""The Telegram ordering bot: a mechanic, known by the chat id on their profile, picks a
language and makes an order in a short conversation (/order), or lists their orders (/orders).

Each update is handled in one transaction with the row that marks it taken
(`telegram_updates`): a replayed update finds that row and does nothing. The chat's row is
locked while it is handled, so two updates of one chat never interleave. Answers go out through
the notification outbox. The order itself is made by orders.services, exactly as through the
API: same validation, same events, refused while halted.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from html import escape
from typing import Any, TypeGuard

import structlog
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone, translation

from bot import texts
from bot.models import BotChat, BotStep, TelegramUpdate
from conclave.exceptions import DomainError, Halted, ValidationFailed
from conclave.serializers import whole_number
from conclave.text import prints
from flags.selectors import flags_snapshot
from notifications import telegram
from notifications.messages import STATUS_NAMES
from notifications.services import bot_reply_queue
from orders.models import Category, MechanicProfile, Order, Part, PartOrigin
from orders.services import order_place
from orders.validators import normalise_car_number, normalise_vin

logger = structlog.get_logger(__name__)

MAX_PART_BUTTONS = 40
NUL = "\x00"  # dropped from what Telegram sends: PostgreSQL's text and jsonb cannot hold it
RECENT_ORDERS = 10
Keyboard = list[list[tuple[str, str]]]  # rows of (label, callback data)


@dataclass(frozen=True)
class Incoming:
    """What the bot reads of a Telegram Update."""

    update_id: int
    chat_id: int | None = None
    private: bool = False
    text: str = ""
    photos: tuple[dict[str, Any], ...] = ()
    callback_id: str = ""
    callback_data: str = ""
    language_code: str = ""


def _object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed({name: ["A JSON object."]})
    return value


def _integer(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _sent(value: Any, limit: int) -> str:
    """A string Telegram sent, without NUL, at most `limit` characters."""
    return str(value or "").replace(NUL, "")[:limit]


def parse_update(data: Any) -> Incoming:
    """The parts of a Telegram `Update` the bot acts on (messages and button presses). Fields
    it does not use are ignored, as Telegram adds new ones; the ones it uses must be right."""
    if not isinstance(data, dict):
        raise ValidationFailed({"update": ["A Telegram Update object."]})
    update_id = data.get("update_id")
    if not _integer(update_id) or not 0 <= update_id < 2**63:
        raise ValidationFailed({"update_id": ["A non-negative integer under 2**63."]})
    callback = _object(data.get("callback_query"), "callback_query")
    message = _object(
        callback.get("message") if callback else data.get("message"),
        "callback_query.message" if callback else "message",
    )
    chat = _object(message.get("chat"), "message.chat")
    if not chat:
        return Incoming(update_id=update_id)  # an update kind the bot does not answer
    if not _integer(chat.get("id")) or not -(2**52) < chat["id"] < 2**52:
        # Telegram's chat ids have at most 52 significant bits.
        raise ValidationFailed({"message.chat.id": ["An integer of at most 52 bits."]})
    text = message.get("text") if not callback else ""
    photos = message.get("photo") if not callback else []
    if not isinstance(text, str | None) or not isinstance(photos, list | None):
        raise ValidationFailed({"message": ["`text` is a string and `photo` a list."]})
    sender = _object((callback or message).get("from"), "from")
    return Incoming(
        update_id=update_id,
        chat_id=chat["id"],
        private=chat.get("type") == "private",
        text=_sent(text, 4096).strip(),
        photos=tuple(
            p
            for p in photos or ()
            if isinstance(p, dict) and isinstance(p.get("file_id"), str) and NUL not in p["file_id"]
        ),
        callback_id=_sent(callback.get("id"), 64),
        callback_data=_sent(callback.get("data"), 64),
        language_code=_sent(sender.get("language_code"), 2),
    )


@dataclass
class Turn:
    """One update being answered: the chat, its mechanic and the replies to send."""

    incoming: Incoming
    chat: BotChat
    mechanic: MechanicProfile
    photo: bytes | None = None
    photo_error: str = ""
    replies: list[tuple[str, Keyboard | None]] = field(default_factory=list)
    callback_notice: str = ""

    @property
    def language(self) -> str:
        return self.chat.language or self.mechanic.language

    def say(self, key: str, keyboard: Keyboard | None = None, **values: Any) -> None:
        self.replies.append((texts.say(self.language, key, **values), keyboard))

    def word(self, key: str) -> str:
        return texts.say(self.language, key)


def _markup(keyboard: Keyboard | None) -> dict[str, Any] | None:
    if not keyboard:
        return None
    return {
        "inline_keyboard": [
            [{"text": label, "callback_data": data} for label, data in row] for row in keyboard
        ]
    }


def _pairs(buttons: list[tuple[str, str]], width: int = 2) -> Keyboard:
    return [buttons[i : i + width] for i in range(0, len(buttons), width)]


# --- Asking each step's question ---------------------------------------------------------------


def _catalog_on() -> bool:
    return flags_snapshot()["ENABLE_PART_CATEGORIES"]


def _back_row(turn: Turn) -> list[tuple[str, str]]:
    return [(turn.word("back"), "back")] if turn.chat.history else []


def _ask(turn: Turn) -> None:
    """Asks the question of the chat's current step."""
    step, draft = turn.chat.step, turn.chat.draft
    back = _back_row(turn)
    if step == BotStep.LANGUAGE:
        buttons = [(label, f"lang:{code}") for code, label in texts.LANGUAGE_BUTTONS]
        turn.say("choose_language", [buttons])
    elif step == BotStep.CATEGORY:
        categories = [
            (category.name(turn.language), f"cat:{category.pk}")
            for category in Category.objects.order_by("sort_order", "name_en")
        ]
        turn.say("ask_category", [*_pairs(categories), [(turn.word("type_part"), "manual")], back])
    elif step == BotStep.PARTS:
        chosen = set(draft.get("part_ids", []))
        parts = Part.objects.filter(category_id=draft.get("category_id")).order_by(
            "-is_common", "sort_order", "name_en"
        )[:MAX_PART_BUTTONS]
        buttons = [
            (f"{'✓ ' if part.pk in chosen else ''}{part.name(turn.language)}", f"part:{part.pk}")
            for part in parts
        ]
        controls = [(turn.word("type_part"), "manual"), (turn.word("done"), "done")]
        turn.say("ask_parts", [*_pairs(buttons), controls, back])
    elif step == BotStep.PART_MANUAL:
        turn.say("ask_part_manual", [back])
    elif step == BotStep.VIN:
        turn.say("ask_vin", [back])
    elif step == BotStep.CAR_NUMBER:
        turn.say("ask_car_number", [[(turn.word("skip"), "skip")], back])
    elif step == BotStep.ORIGIN:
        choices = [(turn.word(origin), f"origin:{origin}") for origin in PartOrigin.values]
        turn.say("ask_origin", [choices, back])
    elif step == BotStep.PHOTO:
        turn.say("ask_photo", [[(turn.word("skip"), "skip")], back])
    elif step == BotStep.CONFIRM:
        _summary(turn)


def _part_names(draft: dict[str, Any], language: str) -> list[str]:
    parts = {part.pk: part for part in Part.objects.filter(pk__in=draft.get("part_ids", []))}
    names = [parts[pk].name(language) for pk in draft.get("part_ids", []) if pk in parts]
    if draft.get("manual_part"):
        names.append(draft["manual_part"])
    return names


def _summary(turn: Turn) -> None:
    draft = turn.chat.draft
    category = Category.objects.filter(pk=draft.get("category_id")).first()
    car_number = draft.get("car_number", "")
    turn.say(
        "summary",
        [[(turn.word("confirm"), "confirm")], [*_back_row(turn), (turn.word("cancel"), "cancel")]],
        parts=escape(", ".join(_part_names(draft, turn.language))),
        category=escape(category.name(turn.language) if category else "-"),
        vin=escape(draft.get("vin", "")),
        car_number_line=(
            texts.say(turn.language, "car_number_line", car_number=escape(car_number))
            if car_number
            else ""
        ),
        origin=escape(turn.word(draft.get("origin", PartOrigin.ORIGINAL))),
        photo=turn.word("yes" if draft.get("photo") else "no"),
    )


# --- Moving between steps ----------------------------------------------------------------------


def _go(turn: Turn, step: str) -> None:
    chat = turn.chat
    if chat.step not in (BotStep.IDLE, BotStep.LANGUAGE):
        chat.history = [*chat.history, chat.step]
    chat.step = step
    _ask(turn)


def _back(turn: Turn) -> None:
    chat = turn.chat
    if not chat.history:
        turn.say("first_step")
        return
    *chat.history, chat.step = chat.history
    _ask(turn)


def _reset(chat: BotChat) -> None:
    chat.step, chat.draft, chat.history, chat.expires_at = BotStep.IDLE, {}, [], None


def _start_order(turn: Turn) -> None:
    _reset(turn.chat)
    turn.chat.draft = {"part_ids": []}
    if _catalog_on() and Category.objects.exists():
        _go(turn, BotStep.CATEGORY)
    else:
        _go(turn, BotStep.PART_MANUAL)


def _after_parts(turn: Turn) -> None:
    # Back at the part with the rest answered (the catalog switched off before the order was
    # made, or the mechanic went back to change it): the summary again, not every question.
    _go(turn, BotStep.CONFIRM if turn.chat.draft.get("origin") else BotStep.VIN)


def _after_vin(turn: Turn) -> None:
    _go(turn, BotStep.CAR_NUMBER if flags_snapshot()["ENABLE_CAR_NUMBER"] else BotStep.ORIGIN)


# --- Commands ----------------------------------------------------------------------------------


def _recent_orders(turn: Turn) -> None:
    orders = Order.objects.filter(mechanic=turn.mechanic).order_by("-id")[:RECENT_ORDERS]
    if not orders:
        turn.say("no_orders")
        return
    names = STATUS_NAMES[turn.language]
    lines = "\n".join(
        f"#{order.pk} · {escape(order.part_type)} · <code>{escape(order.vin)}</code> · "
        f"{escape(names[order.status])}"
        for order in orders
    )
    turn.say("orders", lines=lines)


def _command(turn: Turn, command: str) -> None:
    chat = turn.chat
    if command in ("/start", "/language"):
        _reset(chat)
        chat.step = BotStep.LANGUAGE
        _ask(turn)
    elif command == "/order":
        _start_order(turn)
    elif command == "/orders":
        _recent_orders(turn)
    elif command == "/cancel":
        turn.say(
            "cancelled"
            if chat.step not in (BotStep.IDLE, BotStep.LANGUAGE)
            else "nothing_to_cancel"
        )
        _reset(chat)
    else:
        turn.say("help")


# --- Answers to each step ----------------------------------------------------------------------


def _text(turn: Turn, text: str) -> None:
    chat, draft = turn.chat, turn.chat.draft
    if chat.step == BotStep.PART_MANUAL:
        text = " ".join(text.split())  # a part's name is one line, however it was typed
        if not text or len(text) > 100 or not prints(text):
            problem = "bad_part" if prints(text) else "bad_part_characters"
            turn.say(problem, [_back_row(turn)])
            return
        draft["manual_part"] = text
        _after_parts(turn)
    elif chat.step == BotStep.VIN:
        try:
            draft["vin"] = normalise_vin(text)
        except ValidationFailed:
            turn.say("bad_vin", [_back_row(turn)])
            return
        _after_vin(turn)
    elif chat.step == BotStep.CAR_NUMBER:
        try:
            draft["car_number"] = normalise_car_number(text)
        except ValidationFailed:
            turn.say("bad_car_number", [[(turn.word("skip"), "skip")], _back_row(turn)])
            return
        _go(turn, BotStep.ORIGIN)
    elif chat.step == BotStep.IDLE:
        turn.say("help")
    else:
        _ask(turn)  # a button was expected: ask again


def _photo(turn: Turn) -> None:
    if turn.chat.step != BotStep.PHOTO:
        turn.say("type_text")
        return
    limit = settings.ORDER_PHOTO_MAX_BYTES
    fitting = [p for p in turn.incoming.photos if int(p.get("file_size") or 0) <= limit]
    if not fitting:
        turn.say("photo_too_big", [[(turn.word("skip"), "skip")]], mib=limit // (1024 * 1024))
        return
    largest = max(fitting, key=lambda p: int(p.get("width") or 0) * int(p.get("height") or 0))
    turn.chat.draft["photo"] = str(largest["file_id"])[:200]
    _go(turn, BotStep.CONFIRM)


def _choose_language(turn: Turn, value: str) -> None:
    if value not in texts.PHRASES:
        turn.callback_notice = turn.word("stale_button")
        return
    turn.chat.language = value
    _reset(turn.chat)
    turn.say("welcome", name=escape(turn.mechanic.display_name))


def _choose_category(turn: Turn, value: str) -> None:
    category_id = whole_number(value)
    if category_id is None or not Category.objects.filter(pk=category_id).exists():
        turn.callback_notice = turn.word("stale_button")
        return
    turn.chat.draft["category_id"], turn.chat.draft["part_ids"] = category_id, []
    _go(turn, BotStep.PARTS)


def _toggle_part(turn: Turn, value: str) -> None:
    draft = turn.chat.draft
    part = (
        Part.objects.filter(pk=part_id, category_id=draft.get("category_id")).first()
        if (part_id := whole_number(value)) is not None
        else None
    )
    if part is None:
        turn.callback_notice = turn.word("stale_button")
        return
    chosen = draft.get("part_ids", [])
    draft["part_ids"] = (
        [pk for pk in chosen if pk != part.pk] if part.pk in chosen else [*chosen, part.pk]
    )
    _ask(turn)


def _parts_done(turn: Turn, value: str) -> None:
    if not turn.chat.draft.get("part_ids") and not turn.chat.draft.get("manual_part"):
        turn.callback_notice = turn.word("pick_a_part")
        return
    _after_parts(turn)


def _skip(turn: Turn, value: str) -> None:
    if turn.chat.step == BotStep.CAR_NUMBER:
        turn.chat.draft["car_number"] = ""
        _go(turn, BotStep.ORIGIN)
    else:
        turn.chat.draft.pop("photo", None)
        _go(turn, BotStep.CONFIRM)


def _choose_origin(turn: Turn, value: str) -> None:
    if value not in PartOrigin.values:
        turn.callback_notice = turn.word("stale_button")
        return
    turn.chat.draft["origin"] = value
    _go(turn, BotStep.PHOTO)


def _cancel(turn: Turn, value: str) -> None:
    _reset(turn.chat)
    turn.say("cancelled")


# The buttons each step offers (a press of any other is an old message's button), and what
# each does with the value after its colon.
BUTTONS: dict[str, tuple[str, ...]] = {
    BotStep.LANGUAGE: ("lang",),
    BotStep.CATEGORY: ("cat", "manual"),
    BotStep.PARTS: ("part", "manual", "done"),
    BotStep.CAR_NUMBER: ("skip",),
    BotStep.ORIGIN: ("origin",),
    BotStep.PHOTO: ("skip",),
    BotStep.CONFIRM: ("confirm", "cancel"),
}
BUTTON_ACTIONS: dict[str, Any] = {
    "lang": _choose_language,
    "cat": _choose_category,
    "manual": lambda turn, value: _go(turn, BotStep.PART_MANUAL),
    "part": _toggle_part,
    "done": _parts_done,
    "skip": _skip,
    "origin": _choose_origin,
    "confirm": lambda turn, value: _confirm(turn),
    "cancel": _cancel,
}


def _button(turn: Turn, data: str) -> None:
    if data == "back" and turn.chat.step not in (BotStep.IDLE, BotStep.LANGUAGE):
        _back(turn)
        return
    kind, _, value = data.partition(":")
    if kind not in BUTTONS.get(str(turn.chat.step), ()):
        turn.callback_notice = turn.word("stale_button")
        return
    BUTTON_ACTIONS[kind](turn, value)


def _confirm(turn: Turn) -> None:
    """Makes the order, its catalog parts and its photo (order_place: all or nothing)."""
    chat, draft, mechanic = turn.chat, turn.chat.draft, turn.mechanic
    if draft.get("part_ids") and not _catalog_on():  # switched off since they were picked
        draft["part_ids"] = []
        draft.pop("category_id", None)
        turn.say("catalog_off")
        chat.history, chat.step = [], BotStep.PART_MANUAL
        _ask(turn)
        return
    if draft.get("photo") and turn.photo is None:
        turn.say("photo_failed", [[(turn.word("skip"), "skip")]], reason=escape(turn.photo_error))
        chat.history, chat.step = chat.history[:-1], BotStep.PHOTO
        return
    photo = (
        SimpleUploadedFile("photo.jpg", turn.photo, content_type="image/jpeg")
        if turn.photo is not None
        else None
    )
    try:
        with translation.override(turn.language):  # a refusal's words in the chat's language
            order = order_place(
                mechanic=mechanic,
                vin=draft.get("vin", ""),
                car_number=draft.get("car_number", ""),
                original_or_analog=draft.get("origin", ""),
                flags=flags_snapshot(),
                category_id=draft.get("category_id"),
                part_ids=draft.get("part_ids", []),
                typed_part=draft.get("manual_part", ""),
                photo=photo,
                telegram_chat_id=chat.chat_id,
                telegram_language=turn.language,
            )
    except Halted:
        raise  # the whole update is refused (503) and Telegram delivers it again later
    except DomainError as exc:
        logger.info("bot_order_refused", chat_id=chat.chat_id, error=exc.body())
        turn.say("failed", reason=escape(exc.text(fields=False)))  # no field names
        return
    logger.info("bot_order_created", chat_id=chat.chat_id, order_id=order.pk)
    _reset(chat)
    turn.say("created", id=order.pk)


# --- The update --------------------------------------------------------------------------------


def _photo_for_confirm(incoming: Incoming) -> tuple[bytes | None, str]:
    """A confirmed order's photo, fetched from Telegram before any transaction opens (a slow
    Telegram must not hold locks)."""
    if incoming.callback_data != "confirm" or incoming.chat_id is None:
        return None, ""
    chat = BotChat.objects.filter(chat_id=incoming.chat_id).first()
    if chat is None or chat.step != BotStep.CONFIRM or not chat.draft.get("photo"):
        return None, ""
    try:
        return (
            telegram.download_file(chat.draft["photo"], max_bytes=settings.ORDER_PHOTO_MAX_BYTES),
            "",
        )
    except telegram.TelegramError as exc:
        logger.warning("bot_photo_download_failed", chat_id=chat.chat_id, error=str(exc))
        return None, str(exc)[:200]


def _command_of(text: str) -> str:
    """`/order@workshop_bot extra` → `/order`."""
    return text.split()[0].split("@")[0].lower() if text.startswith("/") else ""


def update_handle(data: Any) -> dict[str, Any]:
    """Acts on one Telegram Update; returns the webhook's answer (for a button press,
    `answerCallbackQuery`, which Telegram runs from the answer itself)."""
    incoming = parse_update(data)
    answer: dict[str, Any] = {}
    if incoming.callback_id:
        answer = {"method": "answerCallbackQuery", "callback_query_id": incoming.callback_id}
    if TelegramUpdate.objects.filter(pk=incoming.update_id).exists():
        return {}  # a replay: it was answered the first time
    photo, photo_error = _photo_for_confirm(incoming)
    with transaction.atomic():
        try:
            with transaction.atomic():
                TelegramUpdate.objects.create(
                    update_id=incoming.update_id, chat_id=incoming.chat_id
                )
        except IntegrityError:
            return {}  # taken meanwhile by another worker
        if incoming.chat_id is None or not incoming.private:
            return answer
        turn = _turn(incoming, incoming.chat_id, photo, photo_error)
        if turn is None:
            return answer
        for index, (text, keyboard) in enumerate(turn.replies):
            bot_reply_queue(
                chat_id=incoming.chat_id,
                text=text,
                reply_markup=_markup(keyboard),
                update_id=incoming.update_id,
                index=index,
            )
        if turn.callback_notice and answer:
            answer["text"] = turn.callback_notice
    return answer


def _turn(incoming: Incoming, chat_id: int, photo: bytes | None, photo_error: str) -> Turn | None:
    mechanic = (
        MechanicProfile.objects.filter(telegram_chat_id=chat_id, is_active=True)
        .select_related("user")
        .first()
    )
    if mechanic is None:
        language = incoming.language_code if incoming.language_code in texts.PHRASES else "en"
        bot_reply_queue(
            chat_id=chat_id,
            text=texts.say(language, "not_linked", chat_id=chat_id),
            update_id=incoming.update_id,
            index=0,
            dedupe=True,  # a stranger repeating themselves is answered once a minute at most
        )
        return None
    chat, _ = BotChat.objects.select_for_update().get_or_create(chat_id=chat_id)
    turn = Turn(
        incoming=incoming, chat=chat, mechanic=mechanic, photo=photo, photo_error=photo_error
    )
    now = timezone.now()
    command = _command_of(incoming.text)
    if chat.step != BotStep.IDLE and chat.expires_at is not None and chat.expires_at < now:
        _reset(chat)
        if not command:
            turn.say("expired")
            chat.save()
            return turn
    if command:
        _command(turn, command)
    elif incoming.callback_data:
        _button(turn, incoming.callback_data)
    elif incoming.photos:
        _photo(turn)
    elif incoming.text:
        _text(turn, incoming.text)
    else:
        turn.say("type_text")
    if chat.step != BotStep.IDLE:
        chat.expires_at = now + timedelta(seconds=settings.BOT_CONVERSATION_SECONDS)
    chat.save()
    return turn
