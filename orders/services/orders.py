"""Orders: creation, status, assignment and comments."""

from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any, cast

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone
from django.utils.http import parse_etags
from django.utils.translation import gettext

from conclave.exceptions import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from conclave.text import REFUSAL, prints
from events.services import event_append, event_append_inserting
from flags.selectors import flags_snapshot
from notifications.services import (
    notify_order_assigned,
    notify_order_corrected,
    notify_order_created,
    notify_status_changed,
    staff_chats_notified,
)
from orders.models import (
    TRANSITIONS,
    Comment,
    MechanicProfile,
    Order,
    OrderStatus,
    Part,
    PartOrigin,
)
from orders.selectors import handles_orders, order_etag
from orders.services.common import STATUS_IN_A_SENTENCE, actor_of, open_order_for_update
from orders.services.time import timers_stop_running
from orders.validators import (
    car_number_unread,
    normalise_car_number,
    normalise_vin,
    printable,
)

# (Django builds a choices enum's `values` list anew on every use.)
ORIGINS = tuple(PartOrigin.values)


def _text_field(field: str, limit: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        value = (value or "").strip()
        if not value or len(value) > limit:
            raise ValidationFailed(
                {field: [gettext("1 to %(limit)d characters.") % {"limit": limit}]}
            )
        if not prints(value):
            raise ValidationFailed({field: [gettext(REFUSAL)]})
        return cast(str, value)

    return check


def _origin(value: Any) -> str:
    if value not in ORIGINS:
        choices = ", ".join(ORIGINS)
        raise ValidationFailed(
            {"original_or_analog": [gettext("One of %(choices)s.") % {"choices": choices}]}
        )
    return cast(str, value)


# An order's own fields (what `order_update` corrects), each with its check and normal form.
ORDER_FIELDS: dict[str, Callable[[Any], str]] = {
    "mechanic_name": _text_field("mechanic_name", 100),
    "vin": normalise_vin,
    "car_number": normalise_car_number,
    "part_type": _text_field("part_type", 100),
    "category": _text_field("category", 100),
    "original_or_analog": _origin,
}


def order_field_check(field: str, value: Any, flags: Mapping[str, bool]) -> Any:
    """One of the order's own fields checked and normalised as `order_create` and
    `order_update` check it (ValidationFailed naming the field), for a serializer to tell it
    beside the problems of the request's shape, in one answer. While ENABLE_CAR_NUMBER is off
    `car_number` is ignored, only its length checked (the API's document gives it)."""
    if field == "car_number" and not flags["ENABLE_CAR_NUMBER"]:
        return car_number_unread(value)
    return ORDER_FIELDS[field](value)


def _order_fields(fields: Mapping[str, Any], flags: Mapping[str, bool]) -> dict[str, str]:
    """The order's fields given, checked and normalised, every problem told at once (not one
    round each). `car_number` is kept only while ENABLE_CAR_NUMBER is on: while it is off, a
    new order has none and a correction leaves the stored one as it is."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, str] = {}
    for field, value in fields.items():
        try:
            checked = order_field_check(field, value, flags)
        except ValidationFailed as exc:
            errors.update(cast(dict[str, list[str]], exc.detail))
            continue
        if field != "car_number" or flags["ENABLE_CAR_NUMBER"]:
            clean[field] = checked
    if errors:
        raise ValidationFailed(errors)
    return clean


def order_create(
    *,
    mechanic_name: str,
    vin: str,
    part_type: str,
    category: str,
    original_or_analog: str,
    car_number: str = "",
    created_by: User | AnonymousUser | None = None,
    flags: Mapping[str, bool] | None = None,
    part: Part | None = None,
    telegram_chat_id: int | None = None,
    telegram_language: str = "",
) -> Order:
    """Creates an order; `car_number` is kept only while ENABLE_CAR_NUMBER is on. An order
    made by an authenticated mechanic is assigned to them. Orders from the Telegram bot carry
    their chat and its language (told when the order is ready) and may name a catalog part."""
    flags = dict(flags if flags is not None else flags_snapshot())
    clean = _order_fields(
        {
            "mechanic_name": mechanic_name,
            "vin": vin,
            "car_number": car_number,
            "part_type": part_type,
            "category": category,
            "original_or_analog": original_or_analog,
        },
        flags,
    )
    user = created_by if created_by is not None and created_by.is_authenticated else None
    mechanic = MechanicProfile.objects.filter(user=user, is_active=True).first() if user else None
    order = Order(
        **clean,
        created_by=user,
        mechanic=mechanic,
        part=part,
        telegram_chat_id=telegram_chat_id,
        telegram_language=telegram_language,
    )
    payload = {
        "vin": order.vin,
        "car_number": order.car_number or None,
        "part_type": order.part_type,
        "category": order.category,
        "original_or_analog": order.original_or_analog,
        "mechanic_id": mechanic.pk if mechanic else None,
        "actor": actor_of(created_by),
    }
    if part is not None:
        payload["part_id"] = part.pk
    if telegram_chat_id is not None:
        payload["channel"] = "telegram"
    # The order and its event are one statement; staff's notification, when there is one,
    # joins them in a transaction.
    with transaction.atomic() if staff_chats_notified(flags) else nullcontext():
        event = event_append_inserting(
            order, event_type="order.created", payload=payload, id_key="order_id"
        )
        notify_order_created(order=order, event=event, flags=flags)
    return order


@transaction.atomic
def order_update(
    *,
    order_id: int,
    user: User,
    changes: Mapping[str, Any],
    flags: Mapping[str, bool] | None = None,
    seen: Mapping[str, Any] | None = None,
    if_match: str | None = None,
) -> Order:
    """Corrects an open order's own fields (a VIN typed wrong, the part named better): staff
    any order, a mechanic their own. What changes is recorded, old and new, in one
    `order.updated` event; a correction that changes nothing records nothing. `seen` holds
    the values the changes were made against (a form's page): a field someone else changed
    meanwhile is refused whole (409), naming it and its value now. `if_match` (an API
    client's `If-Match`) is the entity tag of the order it read: any change since is 412."""
    unknown = set(changes) - set(ORDER_FIELDS)
    if unknown:
        raise ValidationFailed({name: ["Not one of the order's own fields."] for name in unknown})
    flags = flags if flags is not None else flags_snapshot()
    clean = _order_fields(changes, flags)
    order = open_order_for_update(order_id, user)
    if if_match is not None:
        tags = parse_etags(if_match)
        if "*" not in tags and order_etag(order, flags) not in tags:
            raise PreconditionFailed(
                f"Order {order_id} has changed since it was read: read it again."
            )
    raced = [
        f'{field} was changed meanwhile (now "{getattr(order, field)}")'
        for field, value in clean.items()
        if seen and field in seen and getattr(order, field) not in (seen[field], value)
    ]
    if raced:
        raise Conflict("; ".join(raced) + ": look at the order again.")
    changed = {
        field: {"old": getattr(order, field), "new": value}
        for field, value in clean.items()
        if getattr(order, field) != value
    }
    if not changed:
        return order
    for field, change in changed.items():
        setattr(order, field, change["new"])
    order.updated_at = timezone.now()
    order.save(update_fields=[*changed, "updated_at"])
    event = event_append(
        event_type="order.updated",
        payload={"order_id": order.pk, "changes": changed, "actor": actor_of(user)},
    )
    notify_order_corrected(order=order, changes=changed, actor=user, event=event, flags=flags)
    return order


@transaction.atomic
def order_status_change(*, order_id: int, status: str, mechanic: MechanicProfile) -> Order:
    """Moves the mechanic's own order to `status`; another mechanic's order does not exist
    for them (404). Illegal moves are 409 naming the allowed ones."""
    order = Order.objects.select_for_update().filter(pk=order_id, mechanic=mechanic).first()
    if order is None:
        raise NotFound(f"No order {order_id} of yours.")
    order.mechanic = mechanic  # the same row: spares the notification a query
    return _move(order, status, actor=f"mechanic:{mechanic.pk}")


@transaction.atomic
def order_status_set(*, order_id: int, status: str, actor: User) -> Order:
    """Staff move any order (the admin), along the same transitions; the order's mechanic is
    told as when they move it themselves."""
    if not handles_orders(actor, change=True):
        raise Forbidden("Only staff change the status of any order.")
    order = (
        Order.objects.select_for_update(of=("self",))
        .select_related("mechanic")
        .filter(pk=order_id)
        .first()
    )
    if order is None:
        raise NotFound(f"No order {order_id}.")
    return _move(order, status, actor=actor_of(actor))


def _refuse_move(order: Order) -> Conflict:
    """The 409 of a move the order's status does not allow, in the caller's language (a
    mechanic's page sent from before staff moved the order shows it as it is)."""
    allowed = TRANSITIONS[order.status]
    words = {"order": order.pk, "current": STATUS_IN_A_SENTENCE[order.status]}
    if not allowed:
        text = gettext("Order %(order)d is %(current)s; its status can no longer change.")
        return Conflict(text % words, allowed=[])
    text = gettext("Order %(order)d is %(current)s. Its status can change to: %(allowed)s.")
    listed = ", ".join(str(STATUS_IN_A_SENTENCE[status]) for status in allowed)
    return Conflict(text % {**words, "allowed": listed}, allowed=list(allowed))


def _move(order: Order, status: str, *, actor: str) -> Order:
    if status not in TRANSITIONS[order.status]:
        raise _refuse_move(order)
    old = order.status
    order.status = status
    order.updated_at = timezone.now()
    if status == OrderStatus.COMPLETED:
        order.completed_at = order.updated_at
    order.save(update_fields=["status", "updated_at", "completed_at"])
    event = event_append(
        event_type="order.status_changed",
        payload={"order_id": order.pk, "old": old, "new": status, "actor": actor},
    )
    if not order.is_open:
        timers_stop_running(order.time_entries.all(), actor=actor, reason=f"order_{status}")
    notify_status_changed(order=order, old=old, new=status, event=event, flags=flags_snapshot())
    return order


@transaction.atomic
def order_assign(*, order_id: int, mechanic_id: int, notes: str = "", actor: User) -> Order:
    """Staff assign (or reassign) an open order to an active mechanic; a timer another
    mechanic runs on it stops."""
    if len(notes) > 500:
        raise ValidationFailed({"notes": [gettext("At most 500 characters.")]})
    printable(notes, "notes", lines=True)
    # The mechanic held until COMMIT, so a deactivation under way is waited for and then
    # seen; taken before the order, as the mechanic's own timers take them (no deadlock).
    mechanic = MechanicProfile.objects.select_for_update(no_key=True).filter(pk=mechanic_id).first()
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise NotFound(f"No order {order_id}.")
    if mechanic is None:
        raise ValidationFailed({"mechanic_id": [f"No mechanic {mechanic_id}."]})
    if not order.is_open:  # its work, time and figures are its mechanic's
        raise Conflict(f"Order {order_id} is {order.status}; it can no longer be assigned.")
    if not mechanic.is_active:
        raise Conflict(f"Mechanic {mechanic.display_name} is inactive; orders cannot go to them.")
    previous = order.mechanic_id
    if previous == mechanic.pk:
        return order
    order.mechanic = mechanic
    order.updated_at = timezone.now()
    order.save(update_fields=["mechanic", "updated_at"])
    event = event_append(
        event_type="order.assigned",
        payload={
            "order_id": order.pk,
            "mechanic_id": mechanic.pk,
            "previous_mechanic_id": previous,
            "notes": notes,
            "actor": actor_of(actor),
        },
    )
    timers_stop_running(
        order.time_entries.exclude(mechanic=mechanic),
        actor=actor_of(actor),
        reason="order_reassigned",
    )
    notify_order_assigned(order=order, event=event, flags=flags_snapshot())
    return order


@transaction.atomic
def comment_add(*, order: Order, author: User, text: str) -> Comment:
    text = (text or "").strip()
    if not text or len(text) > 2000:
        raise ValidationFailed({"text": [gettext("1 to 2000 characters, not only spaces.")]})
    printable(text, "text", lines=True)
    comment = Comment.objects.create(order=order, author=author, text=text)
    event_append(
        event_type="order.comment_added",
        payload={"order_id": order.pk, "comment_id": comment.pk, "actor": actor_of(author)},
    )
    return comment
