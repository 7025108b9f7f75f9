"""Parts and labour on an order: catalog parts, custom parts and custom works, priced in
Decimal."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext

from conclave.exceptions import Conflict, FeatureDisabled, NotFound, ValidationFailed
from events.services import event_append
from flags.selectors import flags_snapshot
from orders.models import OrderItem, OrderWork, Part
from orders.services.catalog import held_for_reference
from orders.services.common import actor_of, contents_changed, open_order_for_update
from orders.validators import clean_text, money

MAX_QUANTITY = 999
# An order's part lines, and its labour lines, are at most this many each: its page and its
# detail answer stay a size a phone takes (its photos have ORDER_PHOTO_MAX_COUNT).
ORDER_LINES_MAX_COUNT = 100
MAX_ESTIMATED_MINUTES = 60 * 24 * 30


@transaction.atomic
def item_add(
    *,
    order_id: int,
    user: User,
    quantity: int = 1,
    part_id: int | None = None,
    name: str = "",
    part_number: str = "",
    unit_price: Decimal | str | None = None,
    flags: Mapping[str, bool] | None = None,
) -> OrderItem:
    """Adds a catalog part (`part_id`: its name, number and price are copied; the catalog must
    be on) or a custom part (`name` and `unit_price`) to an open order."""
    if not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise ValidationFailed(
            {"quantity": [gettext("A whole number from 1 to %(most)d.") % {"most": MAX_QUANTITY}]}
        )
    if part_id is not None:
        if name or unit_price is not None:
            raise ValidationFailed(
                {"part_id": ["Give either part_id (a catalog part) or name and unit_price."]}
            )
        flags = flags if flags is not None else flags_snapshot()
        if not flags["ENABLE_PART_CATEGORIES"]:
            raise FeatureDisabled(
                gettext("The parts catalog has been switched off: name the part instead.")
                + " (ENABLE_PART_CATEGORIES)"
            )
        part = next(iter(held_for_reference(Part, [part_id])), None)
        if part is None:
            raise ValidationFailed(
                {"part_id": [gettext("No catalog part %(id)d.") % {"id": part_id}]}
            )
        fields: dict[str, Any] = {
            "part": part,
            "name": part.name_en,
            "part_number": part.part_number,
            "unit_price": part.price,
        }
    else:
        if unit_price is None:
            raise ValidationFailed({"unit_price": [gettext("A custom part needs its unit price.")]})
        fields = {
            "name": clean_text(name, "name", 200, required=True),
            "part_number": clean_text(part_number, "part_number", 64, required=False),
            "unit_price": money(unit_price, "unit_price"),
        }
    order = open_order_for_update(order_id, user)
    if order.items.count() >= ORDER_LINES_MAX_COUNT:
        raise Conflict(
            gettext("Order %(order)d has %(count)d parts already: remove one first.")
            % {"order": order_id, "count": ORDER_LINES_MAX_COUNT}
        )
    item = OrderItem.objects.create(order=order, quantity=quantity, added_by=user, **fields)
    contents_changed(order)
    event_append(
        event_type="order.item_added",
        payload={
            "order_id": order.pk,
            "item_id": item.pk,
            "part_id": item.part_id,
            "name": item.name,
            "part_number": item.part_number,
            "quantity": item.quantity,
            "unit_price": str(item.unit_price),
            "actor": actor_of(user),
        },
    )
    return item


@transaction.atomic
def item_remove(*, order_id: int, item_id: int, user: User) -> None:
    order = open_order_for_update(order_id, user)
    item = order.items.filter(pk=item_id).first()
    if item is None:
        raise NotFound(f"No item {item_id} on order {order_id}.")
    item.delete()
    contents_changed(order)
    event_append(
        event_type="order.item_removed",
        payload={"order_id": order.pk, "item_id": item_id, "actor": actor_of(user)},
    )


@transaction.atomic
def work_add(
    *,
    order_id: int,
    user: User,
    name: str,
    price: Decimal | str,
    description: str = "",
    estimated_minutes: int | None = None,
) -> OrderWork:
    """Adds labour to an open order."""
    if estimated_minutes is not None and (
        not isinstance(estimated_minutes, int)
        or not 1 <= estimated_minutes <= MAX_ESTIMATED_MINUTES
    ):
        raise ValidationFailed(
            {
                "estimated_minutes": [
                    gettext("A whole number from 1 to %(most)d.") % {"most": MAX_ESTIMATED_MINUTES}
                ]
            }
        )
    fields = {
        "name": clean_text(name, "name", 200, required=True),
        "description": clean_text(description, "description", 2000, required=False, lines=True),
        "price": money(price, "price"),
    }
    order = open_order_for_update(order_id, user)
    if order.works.count() >= ORDER_LINES_MAX_COUNT:
        raise Conflict(
            gettext("Order %(order)d has %(count)d labour lines already: remove one first.")
            % {"order": order_id, "count": ORDER_LINES_MAX_COUNT}
        )
    work = OrderWork.objects.create(
        order=order, estimated_minutes=estimated_minutes, added_by=user, **fields
    )
    contents_changed(order)
    event_append(
        event_type="order.work_added",
        payload={
            "order_id": order.pk,
            "work_id": work.pk,
            "name": work.name,
            "price": str(work.price),
            "estimated_minutes": work.estimated_minutes,
            "actor": actor_of(user),
        },
    )
    return work


@transaction.atomic
def work_remove(*, order_id: int, work_id: int, user: User) -> None:
    order = open_order_for_update(order_id, user)
    work = order.works.filter(pk=work_id).first()
    if work is None:
        raise NotFound(f"No work {work_id} on order {order_id}.")
    work.delete()
    contents_changed(order)
    event_append(
        event_type="order.work_removed",
        payload={"order_id": order.pk, "work_id": work_id, "actor": actor_of(user)},
    )
