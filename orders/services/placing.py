"""A mechanic placing a whole order at once (the browser's order form, the Telegram bot): the
order, its catalog and custom parts and its photo, all or nothing."""

from collections.abc import Mapping, Sequence
from decimal import Decimal

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.translation import gettext

from conclave.exceptions import ValidationFailed
from orders.models import Category, MechanicProfile, Order, Part
from orders.services.catalog import held_for_reference
from orders.services.items import ORDER_LINES_MAX_COUNT, item_add
from orders.services.orders import order_create
from orders.services.photos import photo_add

# The category of an order whose part was typed rather than picked from the catalog.
NO_CATEGORY = "general"
PART_TYPE_LIMIT = 100


def _part_type(names: Sequence[str]) -> str:
    """The order's part: every part named, shortened to fit."""
    text = ", ".join(name for name in names if name)
    return text if len(text) <= PART_TYPE_LIMIT else text[: PART_TYPE_LIMIT - 1] + "…"


def _category(
    category_id: int | None, chosen: Sequence[Part], flags: Mapping[str, bool]
) -> Category | None:
    """The order's category: the one the mechanic chose, else the one their catalog parts
    share (picked under "Any category"), else none (NO_CATEGORY)."""
    if not flags["ENABLE_PART_CATEGORIES"]:
        return None
    if category_id is None:
        shared = {part.category_id for part in chosen}
        category_id = shared.pop() if len(shared) == 1 else None
        if category_id is None:
            return None
    category = Category.objects.filter(pk=category_id).first()
    if category is None:  # deleted since the form or the bot showed it
        raise ValidationFailed(
            {
                "category_id": [
                    gettext("Category %(id)s is no longer in the catalog.") % {"id": category_id}
                ]
            }
        )
    return category


@transaction.atomic
def order_place(
    *,
    mechanic: MechanicProfile,
    vin: str,
    original_or_analog: str,
    flags: Mapping[str, bool],
    car_number: str = "",
    category_id: int | None = None,
    part_ids: Sequence[int] = (),
    typed_part: str = "",
    custom_parts: Sequence[tuple[str, Decimal | str | None, int]] = (),
    photo: UploadedFile | None = None,
    telegram_chat_id: int | None = None,
    telegram_language: str = "",
) -> Order:
    """The mechanic's order with the catalog parts `part_ids` (in that order, each an item at
    its catalog price), the typed part, the custom parts (name, unit price, quantity) and the
    photo. Any refusal on the way rolls all of it back."""
    user = mechanic.user
    if not (part_ids or typed_part.strip() or custom_parts):
        raise ValidationFailed(
            {"part_type": [gettext("Name the part you need, or pick it from the catalog.")]}
        )
    if len(part_ids) + len(custom_parts) > ORDER_LINES_MAX_COUNT:
        raise ValidationFailed(
            {
                "part_ids": [
                    gettext("At most %(count)d parts on one order.")
                    % {"count": ORDER_LINES_MAX_COUNT}
                ]
            }
        )
    if part_ids and not flags["ENABLE_PART_CATEGORIES"]:  # switched off since they were shown
        raise ValidationFailed(
            {
                "part_ids": [
                    gettext("The parts catalog has been switched off: name the part instead.")
                ]
            }
        )
    found = {part.pk: part for part in held_for_reference(Part, part_ids)}
    gone = [pk for pk in part_ids if pk not in found]
    if gone:  # deleted since the form or the bot showed it: the mechanic chooses again
        raise ValidationFailed(
            {"part_ids": [gettext("Part %(id)s is no longer in the catalog.") % {"id": gone[0]}]}
        )
    chosen = [found[pk] for pk in part_ids]
    category = _category(category_id, chosen, flags)
    order = order_create(
        mechanic_name=mechanic.display_name,
        vin=vin,
        car_number=car_number,
        part_type=_part_type(
            [part.name_en for part in chosen] + [typed_part] + [name for name, _, _ in custom_parts]
        ),
        category=category.name_en if category else NO_CATEGORY,
        original_or_analog=original_or_analog,
        created_by=user,
        flags=flags,
        part=chosen[0] if chosen else None,
        telegram_chat_id=telegram_chat_id,
        telegram_language=telegram_language,
    )
    for part in chosen:
        item_add(order_id=order.pk, user=user, part_id=part.pk, flags=flags)
    for name, unit_price, quantity in custom_parts:
        item_add(order_id=order.pk, user=user, name=name, unit_price=unit_price, quantity=quantity)
    if photo is not None:
        photo_add(order_id=order.pk, user=user, upload=photo)
    return order
