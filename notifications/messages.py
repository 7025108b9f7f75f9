"""The words of every Telegram message, in English, Hebrew and Russian, escaped for Telegram's
HTML parse mode (every value from a user goes through `html.escape`)."""

from html import escape

from orders.models import Order

STATUS_NAMES = {
    "en": {
        "new": "New",
        "in_progress": "In progress",
        "ready": "Ready",
        "completed": "Completed",
        "cancelled": "Cancelled",
    },
    "he": {
        "new": "חדשה",
        "in_progress": "בטיפול",
        "ready": "מוכנה",
        "completed": "הושלמה",
        "cancelled": "בוטלה",
    },
    "ru": {
        "new": "Новый",
        "in_progress": "В работе",
        "ready": "Готов",
        "completed": "Завершён",
        "cancelled": "Отменён",
    },
}

PHRASES = {
    "en": {
        "status_changed": "Order #{id} ({vin}): {old} → <b>{new}</b>",
        "assigned": "Order #{id} is now yours: {part} for {vin}.",
        "ready": "Your order #{id} is ready: {part} for {vin}.",
        "open": "Open the order",
        "sign_in": "Sign in and open it (link valid for 24 hours, once)",
    },
    "he": {
        "status_changed": "הזמנה #{id} ({vin}): {old} ← <b>{new}</b>",
        "assigned": "הזמנה #{id} שלך עכשיו: {part} עבור {vin}.",
        "ready": "ההזמנה שלך #{id} מוכנה: {part} עבור {vin}.",
        "open": "פתח את ההזמנה",
        "sign_in": "התחבר ופתח אותה (הקישור תקף 24 שעות, פעם אחת)",
    },
    "ru": {
        "status_changed": "Заказ #{id} ({vin}): {old} → <b>{new}</b>",
        "assigned": "Заказ #{id} теперь ваш: {part} для {vin}.",
        "ready": "Ваш заказ #{id} готов: {part} для {vin}.",
        "open": "Открыть заказ",
        "sign_in": "Войти и открыть (ссылка действует 24 часа, один раз)",
    },
}


def _link(url: str, label: str) -> str:
    return f'<a href="{escape(url)}">{escape(label)}</a>'


def order_created(order: Order, *, car_number_on: bool, admin_url: str) -> str:
    """The staff's message about a new order (in English, the staff chats' language)."""
    lines = [
        f"<b>New order #{order.pk}</b>",
        f"VIN: <code>{escape(order.vin)}</code>",
    ]
    if car_number_on and order.car_number:
        lines.append(f"Car number: <code>{escape(order.car_number)}</code>")
    lines += [
        f"Part: {escape(order.part_type)}",
        f"Category: {escape(order.category)}",
        f"Original or analog: {escape(order.original_or_analog)}",
        f"Mechanic: {escape(order.mechanic_name)}",
        _link(admin_url, "Open in the admin"),
    ]
    return "\n".join(lines)


# An order's own fields and their origin's values, as a correction's message names them.
CORRECTION_WORDS = {
    "en": {
        "headline": "<b>Order #{id} corrected</b>",
        "vin": "VIN",
        "car_number": "Car number",
        "part_type": "Part",
        "category": "Category",
        "original_or_analog": "Original or analog",
        "mechanic_name": "Mechanic",
        "original": "Original",
        "analog": "Analog",
    },
    "he": {
        "headline": "<b>הזמנה #{id} תוקנה</b>",
        "vin": "VIN",
        "car_number": "מספר רכב",
        "part_type": "חלק",
        "category": "קטגוריה",
        "original_or_analog": "מקורי או תחליפי",
        "mechanic_name": "מכונאי",
        "original": "מקורי",
        "analog": "תחליפי",
    },
    "ru": {
        "headline": "<b>Заказ #{id} исправлен</b>",
        "vin": "VIN",
        "car_number": "Госномер",
        "part_type": "Деталь",
        "category": "Категория",
        "original_or_analog": "Оригинал или аналог",
        "mechanic_name": "Механик",
        "original": "Оригинал",
        "analog": "Аналог",
    },
}
CODE_FIELDS = ("vin", "car_number")  # set as code: copied letter by letter


def order_corrected(
    order: Order,
    *,
    changes: dict[str, dict[str, str]],
    language: str,
    url: str,
    link_label: str,
) -> str:
    """An order's fields put right: each change, old and new (staff's chats in English, the
    order's mechanic in their language)."""
    words = CORRECTION_WORDS[language]
    lines = [words["headline"].format(id=order.pk)]
    for field, change in changes.items():
        old, new = (escape(change[side]) for side in ("old", "new"))
        if field in CODE_FIELDS:
            old, new = f"<code>{old}</code>", f"<code>{new}</code>"
        elif field == "original_or_analog":
            old, new = words[old], words[new]
        lines.append(f"{words[field]}: {old} → {new}")
    lines.append(_link(url, link_label))
    return "\n".join(lines)


def status_changed(order: Order, *, old: str, new: str, language: str, url: str) -> str:
    words, names = PHRASES[language], STATUS_NAMES[language]
    headline = words["status_changed"].format(
        id=order.pk, vin=escape(order.vin), old=escape(names[old]), new=escape(names[new])
    )
    return f"{headline}\n{_link(url, words['open'])}"


def assigned(order: Order, *, language: str, login_url: str) -> str:
    words = PHRASES[language]
    headline = words["assigned"].format(
        id=order.pk, part=escape(order.part_type), vin=escape(order.vin)
    )
    return f"{headline}\n{_link(login_url, words['sign_in'])}"


def ready(order: Order, *, language: str) -> str:
    """To the bot chat that made the order."""
    return PHRASES[language]["ready"].format(
        id=order.pk, part=escape(order.part_type), vin=escape(order.vin)
    )
