"""The parts catalog, managed by staff: categories and parts, named in three languages."""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Max, Q

from conclave.exceptions import Conflict, NotFound, ValidationFailed
from events.services import event_append
from orders.models import Category, Order, OrderItem, Part
from orders.services.common import actor_of
from orders.validators import clean_text, money

NAME_FIELDS = ("name_en", "name_he", "name_ru")
CatalogRow = TypeVar("CatalogRow", Category, Part)
# pg_advisory_xact_lock key serialising the catalog's name checks: "catnames", big-endian.
NAMES_LOCK_KEY = int.from_bytes(b"catnames", "big", signed=True)


def _names_held() -> None:
    """Until COMMIT, no other catalog write checks names: two staff giving the same new name
    at once would each find it free. Taken before any row of the catalog, so a writer
    holding it never waits for one that waits for it."""
    if connection.vendor == "postgresql":  # SQLite: one writer at a time
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [NAMES_LOCK_KEY])


def _same(a: str, b: str) -> bool:
    """Two names a reader takes for one: equal but for case (in any script)."""
    return a.casefold() == b.casefold()


def _refuse_category_name_taken(names: dict[str, str], category_id: int | None = None) -> None:
    """409 if another category has one of these names in the same language (an empty
    translation clashes with nothing): a mechanic could not tell the two apart."""
    given = {field: name for field, name in names.items() if name}
    if not given:
        return
    others = (
        Category.objects.all() if category_id is None else Category.objects.exclude(pk=category_id)
    )
    for row in others.values("pk", *given):
        for field, name in given.items():
            if _same(row[field], name):
                raise Conflict(
                    f"Category {row['pk']} is named {row[field]} already.", category_id=row["pk"]
                )


def _refuse_part_taken(part: Part) -> None:
    """409 if another part of `part`'s category has its English name and part number."""
    others = Part.objects.filter(category_id=part.category_id).exclude(pk=part.pk)
    for other in others.only("pk", "name_en", "part_number"):
        if _same(other.name_en, part.name_en) and _same(other.part_number, part.part_number):
            number = f"number {other.part_number}" if other.part_number else "without a part number"
            raise Conflict(
                f"Part {other.pk} of this category is {other.name_en}, {number}, already.",
                part_id=other.pk,
            )


def _names(fields: dict[str, Any], limit: int, *, partial: bool) -> dict[str, str]:
    """Names in English (required), Hebrew and Russian (English is served when empty)."""
    names: dict[str, str] = {}
    for field in NAME_FIELDS:
        if field not in fields:
            if field == "name_en" and not partial:
                raise ValidationFailed({field: [f"1 to {limit} characters."]})
            continue
        names[field] = clean_text(fields[field], field, limit, required=field == "name_en")
    return names


def _sort_order(value: Any) -> int:
    if not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise ValidationFailed({"sort_order": ["A whole number from 0 to 1000000."]})
    return value


def clean_category_fields(fields: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    _refuse_unknown(fields, {*NAME_FIELDS, "icon", "sort_order"})
    clean: dict[str, Any] = _names(fields, 100, partial=partial)
    if "icon" in fields:
        clean["icon"] = clean_text(fields["icon"], "icon", 32, required=False)
    if "sort_order" in fields:
        clean["sort_order"] = _sort_order(fields["sort_order"])
    return clean


def category_fields_check(fields: dict[str, Any], category_id: int | None) -> None:
    """What category_create (`category_id` None) or category_update refuses of `fields`, for
    a form to show before it saves (the service checks again, serialised)."""
    clean = clean_category_fields(fields, partial=category_id is not None)
    _refuse_category_name_taken({k: v for k, v in clean.items() if k in NAME_FIELDS}, category_id)


def _event(event_type: str, actor: User, **payload: Any) -> None:
    event_append(event_type=event_type, payload={**payload, "actor": actor_of(actor)})


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in fields.items()}


@transaction.atomic
def category_create(*, actor: User, **fields: Any) -> Category:
    """A new category; without a `sort_order` it goes last."""
    clean = clean_category_fields(fields, partial=False)
    _names_held()
    _refuse_category_name_taken({k: v for k, v in clean.items() if k in NAME_FIELDS})
    if "sort_order" not in clean:
        last = Category.objects.aggregate(last=Max("sort_order"))["last"]
        clean["sort_order"] = 0 if last is None else last + 1
    category = Category.objects.create(**clean)
    _event("catalog.category_created", actor, category_id=category.pk, **clean)
    return category


@transaction.atomic
def category_update(*, category_id: int, actor: User, **fields: Any) -> Category:
    clean = clean_category_fields(fields, partial=True)
    _names_held()
    category = Category.objects.select_for_update().filter(pk=category_id).first()
    if category is None:
        raise NotFound(f"No category {category_id}.")
    changed = {k: v for k, v in clean.items() if getattr(category, k) != v}
    _refuse_category_name_taken({k: v for k, v in changed.items() if k in NAME_FIELDS}, category.pk)
    if changed:
        for field, value in changed.items():
            setattr(category, field, value)
        category.save(update_fields=list(changed))
        _event("catalog.category_changed", actor, category_id=category.pk, **changed)
    return category


def _orders_using(parts: Q) -> int:
    """How many orders name one of these parts, as their part or as an item."""
    part_ids = Part.objects.filter(parts).values("pk")
    return (
        Order.objects.filter(
            Q(part__in=part_ids)
            | Q(pk__in=OrderItem.objects.filter(part__in=part_ids).values("order_id"))
        )
        .distinct()
        .count()
    )


@transaction.atomic
def category_delete(*, category_id: int, actor: User) -> None:
    """Deletes a category and its parts, unless an order uses one of them (409: orders keep
    what they were made with)."""
    category = Category.objects.select_for_update().filter(pk=category_id).first()
    if category is None:
        raise NotFound(f"No category {category_id}.")
    # Its parts locked before counting: an item taking one meanwhile holds it
    # (held_for_reference), so this waits for that order and counts it.
    list(Part.objects.select_for_update().filter(category=category).order_by("pk"))
    used_by = _orders_using(Q(category=category))
    if used_by:
        raise Conflict(
            f"Category {category.name_en} is used by {used_by} order(s); it cannot be deleted.",
            orders=used_by,
        )
    part_ids = sorted(category.parts.values_list("pk", flat=True))
    category.parts.all().delete()
    category.delete()
    _event("catalog.category_deleted", actor, category_id=category_id, part_ids=part_ids)


@transaction.atomic
def categories_reorder(*, ids: list[int], actor: User) -> list[Category]:
    """Puts the categories in the order given; `ids` names every category once."""
    existing = list(Category.objects.select_for_update().order_by("pk"))
    if sorted(ids) != [c.pk for c in existing]:
        raise ValidationFailed({"ids": ["Every category's id, each once."]})
    by_id = {c.pk: c for c in existing}
    ordered = [by_id[pk] for pk in ids]
    for position, category in enumerate(ordered):
        category.sort_order = position
    Category.objects.bulk_update(ordered, ["sort_order"])
    _event("catalog.categories_reordered", actor, ids=ids)
    return ordered


def held_for_reference(model: type[CatalogRow], ids: Iterable[int]) -> list[CatalogRow]:
    """The rows of `model` with these ids, locked FOR KEY SHARE until COMMIT, for a write
    about to point at them. PostgreSQL's own foreign key check takes that lock, but only at
    COMMIT (Django's constraints are deferred): a catalog entry deleted meanwhile would fail
    the write there, a 500. Held now, a delete that came first leaves nothing to find (the
    writer refuses: no such part) and one that comes later waits, then sees what points at
    the row (category_delete, part_delete: 409). Writers taking the same part do not wait
    for each other, nor for a change of its price."""
    ids = sorted(set(ids))
    if connection.vendor != "postgresql":  # SQLite: one writer at a time
        return list(model.objects.filter(pk__in=ids).order_by("pk"))
    table = connection.ops.quote_name(model._meta.db_table)
    query = f"SELECT * FROM {table} WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE"  # noqa: S608 - a model's table
    return list(model.objects.raw(query, [ids]))


def _refuse_unknown(fields: dict[str, Any], known: set[str]) -> None:
    unknown = set(fields) - known
    if unknown:
        raise ValidationFailed({name: ["Unknown field."] for name in sorted(unknown)})


def _category_id(value: Any) -> int:
    if not isinstance(value, int) or not Category.objects.filter(pk=value).exists():
        raise ValidationFailed({"category_id": [f"No category {value}."]})
    return value


def clean_part_fields(fields: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    _refuse_unknown(
        fields, {*NAME_FIELDS, "category_id", "part_number", "price", "is_common", "sort_order"}
    )
    missing = [name for name in ("category_id", "price") if name not in fields]
    if missing and not partial:
        raise ValidationFailed({name: ["Required."] for name in missing})
    clean: dict[str, Any] = _names(fields, 200, partial=partial)
    if "category_id" in fields:
        clean["category_id"] = _category_id(fields["category_id"])
    if "price" in fields:
        clean["price"] = money(fields["price"], "price")
    if "part_number" in fields:
        clean["part_number"] = clean_text(fields["part_number"], "part_number", 64, required=False)
    if "is_common" in fields:
        if not isinstance(fields["is_common"], bool):
            raise ValidationFailed({"is_common": ["true or false."]})
        clean["is_common"] = fields["is_common"]
    if "sort_order" in fields:
        clean["sort_order"] = _sort_order(fields["sort_order"])
    return clean


def part_fields_check(fields: dict[str, Any], part_id: int | None) -> None:
    """What part_create (`part_id` None) or part_update refuses of `fields`, for a form to
    show before it saves (the service checks again, serialised)."""
    clean = clean_part_fields(fields, partial=part_id is not None)
    part = (Part.objects.filter(pk=part_id).first() if part_id is not None else None) or Part()
    for field, value in clean.items():
        setattr(part, field, value)
    if part_id is None or clean.keys() & {"category_id", "name_en", "part_number"}:
        _refuse_part_taken(part)


def _hold_category(clean: dict[str, Any]) -> None:
    """The part's new category, held until COMMIT (held_for_reference)."""
    if "category_id" in clean and not held_for_reference(Category, [clean["category_id"]]):
        raise ValidationFailed({"category_id": [f"No category {clean['category_id']}."]})


@transaction.atomic
def part_create(*, actor: User, **fields: Any) -> Part:
    clean = clean_part_fields(fields, partial=False)
    _names_held()
    _hold_category(clean)
    part = Part(**clean)
    _refuse_part_taken(part)
    part.save(force_insert=True)
    _event("catalog.part_created", actor, part_id=part.pk, **_jsonable(clean))
    return part


@transaction.atomic
def part_update(*, part_id: int, actor: User, **fields: Any) -> Part:
    """Changes a part; orders already made keep the name and price they were made with."""
    clean = clean_part_fields(fields, partial=True)
    _names_held()
    _hold_category(clean)  # before the part: category_delete locks them in that order too
    part = Part.objects.select_for_update().filter(pk=part_id).first()
    if part is None:
        raise NotFound(f"No part {part_id}.")
    changed = {k: v for k, v in clean.items() if getattr(part, k) != v}
    if changed:
        for field, value in changed.items():
            setattr(part, field, value)
        if changed.keys() & {"category_id", "name_en", "part_number"}:
            _refuse_part_taken(part)
        part.save(update_fields=list(changed))
        _event("catalog.part_changed", actor, part_id=part.pk, **_jsonable(changed))
    return part


@transaction.atomic
def part_delete(*, part_id: int, actor: User) -> None:
    part = Part.objects.select_for_update().filter(pk=part_id).first()
    if part is None:
        raise NotFound(f"No part {part_id}.")
    used_by = _orders_using(Q(pk=part_id))
    if used_by:
        raise Conflict(
            f"Part {part.name_en} is used by {used_by} order(s); it cannot be deleted.",
            orders=used_by,
        )
    part.delete()
    _event("catalog.part_deleted", actor, part_id=part_id)
