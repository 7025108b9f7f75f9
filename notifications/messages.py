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


# The order's own fields as staff's messages name them; the VIN and car number set as code.
FIELD_NAMES = {
    "vin": ("VIN", True),
    "car_number": ("Car number", True),
    "part_type": ("Part", False),
    "category": ("Category", False),
    "original_or_analog": ("Original or analog", False),
    "mechanic_name": ("Mechanic", False),
}


def order_corrected(order: Order, *, changes: dict[str, dict[str, str]], admin_url: str) -> str:
    """The staff's message about an order's fields put right: each change, old and new."""
    lines = [f"<b>Order #{order.pk} corrected</b>"]
    for field, change in changes.items():
        label, code = FIELD_NAMES[field]
        old, new = (escape(change[side]) for side in ("old", "new"))
        if code:
            old, new = f"<code>{old}</code>", f"<code>{new}</code>"
        lines.append(f"{label}: {old} → {new}")
    lines.append(_link(admin_url, "Open in the admin"))
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
