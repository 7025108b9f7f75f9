"""Every write of the workshop. Each one appends its event in the same transaction."""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from conclave.exceptions import Conflict, NotFound, ValidationFailed
from events.services import event_append
from flags.selectors import flags_snapshot
from orders.models import (
    TRANSITIONS,
    Comment,
    Language,
    MechanicProfile,
    Order,
    PartOrigin,
    TimeEntry,
)
from orders.validators import normalise_car_number, normalise_vin


def _actor(user: User | AnonymousUser | None) -> str:
    if user is None or not user.is_authenticated:
        return "anonymous"
    return f"user:{user.get_username()}"


@transaction.atomic
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
) -> Order:
    """Creates an order; `car_number` is kept only while ENABLE_CAR_NUMBER is on. An order
    made by an authenticated mechanic is assigned to them."""
    flags = dict(flags if flags is not None else flags_snapshot())
    errors: dict[str, list[str]] = {}
    for field, value, limit in (
        ("mechanic_name", mechanic_name, 100),
        ("part_type", part_type, 100),
        ("category", category, 100),
    ):
        if not (value or "").strip() or len(value) > limit:
            errors[field] = [f"1 to {limit} characters."]
    if original_or_analog not in PartOrigin.values:
        errors["original_or_analog"] = [f"One of {', '.join(PartOrigin.values)}."]
    if errors:
        raise ValidationFailed(errors)
    normalised_vin = normalise_vin(vin)
    stored_car_number = normalise_car_number(car_number) if flags["ENABLE_CAR_NUMBER"] else ""
    user = created_by if created_by is not None and created_by.is_authenticated else None
    mechanic = MechanicProfile.objects.filter(user=user, is_active=True).first() if user else None
    order = Order.objects.create(
        mechanic_name=mechanic_name.strip(),
        vin=normalised_vin,
        car_number=stored_car_number,
        part_type=part_type.strip(),
        category=category.strip(),
        original_or_analog=original_or_analog,
        created_by=user,
        mechanic=mechanic,
    )
    event_append(
        event_type="order.created",
        payload={
            "order_id": order.pk,
            "vin": order.vin,
            "car_number": order.car_number or None,
            "part_type": order.part_type,
            "category": order.category,
            "original_or_analog": order.original_or_analog,
            "mechanic_id": mechanic.pk if mechanic else None,
            "actor": _actor(created_by),
        },
    )
    return order


@transaction.atomic
def order_status_change(*, order_id: int, status: str, mechanic: MechanicProfile) -> Order:
    """Moves the mechanic's own order to `status`; another mechanic's order does not exist
    for them (404). Illegal moves are 409 naming the allowed ones."""
    order = Order.objects.select_for_update().filter(pk=order_id, mechanic=mechanic).first()
    if order is None:
        raise NotFound(f"No order {order_id} of yours.")
    allowed = TRANSITIONS[order.status]
    if status not in allowed:
        raise Conflict(
            f"An order that is {order.status} cannot become {status}.",
            allowed=list(allowed),
        )
    old = order.status
    order.status = status
    order.updated_at = timezone.now()
    order.save(update_fields=["status", "updated_at"])
    event_append(
        event_type="order.status_changed",
        payload={
            "order_id": order.pk,
            "old": old,
            "new": status,
            "actor": f"mechanic:{mechanic.pk}",
        },
    )
    return order


@transaction.atomic
def mechanic_create(
    *,
    username: str,
    password: str,
    display_name: str = "",
    telegram_chat_id: int | None = None,
    language: str = Language.ENGLISH,
    actor: str = "system",
) -> MechanicProfile:
    user_model = get_user_model()
    if not username or len(username) > 150:
        raise ValidationFailed({"username": ["1 to 150 characters."]})
    if user_model.objects.filter(username=username).exists():
        raise Conflict(f"A user named {username} exists already.")
    if language not in Language.values:
        raise ValidationFailed({"language": [f"One of {', '.join(Language.values)}."]})
    user = user_model(username=username)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationFailed({"password": list(exc.messages)}) from exc
    user.set_password(password)
    user.save()
    profile = MechanicProfile.objects.create(
        user=user,
        display_name=(display_name or username)[:100],
        telegram_chat_id=telegram_chat_id,
        language=language,
    )
    payload: dict[str, Any] = {
        "mechanic_id": profile.pk,
        "username": username,
        "language": language,
        "actor": actor,
    }
    event_append(event_type="mechanic.created", payload=payload)
    return profile


@transaction.atomic
def order_assign(*, order_id: int, mechanic_id: int, notes: str = "", actor: User) -> Order:
    """Staff assign (or reassign) an order to an active mechanic."""
    if len(notes) > 500:
        raise ValidationFailed({"notes": ["At most 500 characters."]})
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise NotFound(f"No order {order_id}.")
    mechanic = MechanicProfile.objects.filter(pk=mechanic_id).first()
    if mechanic is None:
        raise ValidationFailed({"mechanic_id": [f"No mechanic {mechanic_id}."]})
    if not mechanic.is_active:
        raise Conflict(f"Mechanic {mechanic.display_name} is inactive; orders cannot go to them.")
    previous = order.mechanic_id
    if previous == mechanic.pk:
        return order
    order.mechanic = mechanic
    order.updated_at = timezone.now()
    order.save(update_fields=["mechanic", "updated_at"])
    event_append(
        event_type="order.assigned",
        payload={
            "order_id": order.pk,
            "mechanic_id": mechanic.pk,
            "previous_mechanic_id": previous,
            "notes": notes,
            "actor": _actor(actor),
        },
    )
    return order


@transaction.atomic
def comment_add(*, order: Order, author: User, text: str) -> Comment:
    text = (text or "").strip()
    if not text or len(text) > 2000:
        raise ValidationFailed({"text": ["1 to 2000 characters, not only spaces."]})
    comment = Comment.objects.create(order=order, author=author, text=text)
    event_append(
        event_type="order.comment_added",
        payload={"order_id": order.pk, "comment_id": comment.pk, "actor": _actor(author)},
    )
    return comment


MAX_MANUAL_ENTRY = timedelta(hours=24)


def _own_order(order_id: int, mechanic: MechanicProfile) -> Order:
    order = Order.objects.filter(pk=order_id, mechanic=mechanic).first()
    if order is None:
        raise NotFound(f"No order {order_id} of yours.")
    return order


@transaction.atomic
def timer_start(*, order_id: int, mechanic: MechanicProfile) -> TimeEntry:
    """Starts the mechanic's timer on their order; one timer runs per mechanic at a time."""
    order = _own_order(order_id, mechanic)
    MechanicProfile.objects.select_for_update().get(pk=mechanic.pk)  # serialises their timers
    running = TimeEntry.objects.filter(mechanic=mechanic, ended_at__isnull=True).first()
    if running is not None:
        raise Conflict(
            f"A timer is already running on order {running.order_id}; stop it first.",
            running_order_id=running.order_id,
        )
    entry = TimeEntry.objects.create(order=order, mechanic=mechanic, started_at=timezone.now())
    event_append(
        event_type="time.started",
        payload={"order_id": order.pk, "entry_id": entry.pk, "actor": f"mechanic:{mechanic.pk}"},
    )
    return entry


@transaction.atomic
def timer_stop(*, mechanic: MechanicProfile) -> TimeEntry:
    entry = (
        TimeEntry.objects.select_for_update()
        .filter(mechanic=mechanic, ended_at__isnull=True)
        .first()
    )
    if entry is None:
        raise Conflict("No timer of yours is running.")
    entry.ended_at = max(timezone.now(), entry.started_at + timedelta(seconds=1))
    entry.save(update_fields=["ended_at"])
    event_append(
        event_type="time.stopped",
        payload={
            "order_id": entry.order_id,
            "entry_id": entry.pk,
            "seconds": entry.seconds,
            "actor": f"mechanic:{mechanic.pk}",
        },
    )
    return entry


@transaction.atomic
def time_entry_add(
    *,
    order_id: int,
    mechanic: MechanicProfile,
    started_at: datetime,
    ended_at: datetime,
    notes: str = "",
) -> TimeEntry:
    """A manual entry: it ends after it starts, not in the future, at most 24 hours long."""
    order = _own_order(order_id, mechanic)
    if ended_at <= started_at:
        raise ValidationFailed({"ended_at": ["Must be after started_at."]})
    if ended_at > timezone.now():
        raise ValidationFailed({"ended_at": ["Cannot be in the future."]})
    if ended_at - started_at > MAX_MANUAL_ENTRY:
        raise ValidationFailed({"ended_at": ["A manual entry covers at most 24 hours."]})
    if len(notes) > 500:
        raise ValidationFailed({"notes": ["At most 500 characters."]})
    entry = TimeEntry.objects.create(
        order=order,
        mechanic=mechanic,
        started_at=started_at,
        ended_at=ended_at,
        manual=True,
        notes=notes.strip(),
    )
    event_append(
        event_type="time.added",
        payload={
            "order_id": order.pk,
            "entry_id": entry.pk,
            "seconds": entry.seconds,
            "actor": f"mechanic:{mechanic.pk}",
        },
    )
    return entry
