"""Reads of the workshop."""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import (
    Count,
    DecimalField,
    DurationField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext

from conclave.exceptions import ValidationFailed
from orders.models import (
    TRANSITIONS,
    Category,
    Comment,
    MechanicProfile,
    Order,
    OrderItem,
    OrderPhoto,
    OrderStatus,
    OrderWork,
    Part,
    TimeEntry,
    order_total,
)


def mechanic_of(user: User | AnonymousUser) -> MechanicProfile | None:
    """The user's active mechanic profile, looked up once per user object: a request's
    permission check and its view share it."""
    if not user.is_authenticated:
        return None
    if not hasattr(user, "_active_mechanic"):
        profile = MechanicProfile.objects.filter(user=user, is_active=True).first()
        setattr(user, "_active_mechanic", profile)  # noqa: B010 - a memo on this user object
    mechanic: MechanicProfile | None = getattr(user, "_active_mechanic")  # noqa: B009
    return mechanic


def handles_orders(user: User | AnonymousUser, *, change: bool = False) -> bool:
    """The workshop's staff: staff holding the orders' view (or, to change any order, change)
    permission, as the Staff role does. A keeper or a flag manager is staff in the admin, but
    not in the workshop: they see no order."""
    permission = "orders.change_order" if change else "orders.view_order"
    return bool(user.is_authenticated and user.is_staff and user.has_perm(permission))


def orders_visible_to(user: User | AnonymousUser) -> QuerySet[Order]:
    """The workshop's staff see every order; a mechanic sees their own; anyone else none."""
    orders = Order.objects.select_related("mechanic").order_by("-id")
    if handles_orders(user):
        return orders
    mechanic = mechanic_of(user)
    return orders.filter(mechanic=mechanic) if mechanic else orders.none()


def mechanics_listed(*, active: bool | None = None) -> QuerySet[MechanicProfile]:
    """Mechanics as staff choose among them (an assignment): by name, each with their
    username and their orders not finished (Order.is_open), in one query."""
    open_statuses = [status for status, moves in TRANSITIONS.items() if moves]
    mechanics = (
        MechanicProfile.objects.select_related("user")
        .annotate(open_orders=Count("orders", filter=Q(orders__status__in=open_statuses)))
        .order_by("display_name", "user__username", "pk")
    )
    return mechanics if active is None else mechanics.filter(is_active=active)


def categories() -> QuerySet[Category]:
    return Category.objects.order_by("sort_order", "id")


def parts(*, category_id: int | None = None) -> QuerySet[Part]:
    found = Part.objects.order_by("sort_order", "id")
    return found.filter(category_id=category_id) if category_id is not None else found


@dataclass(frozen=True)
class OrderContents:
    items: list[OrderItem]
    works: list[OrderWork]
    photos: list[OrderPhoto]

    @property
    def total(self) -> Decimal:
        return order_total(self.items, self.works)


def order_contents(order: Order) -> OrderContents:
    """An order's parts, labour and photos: three queries whatever their number."""
    return OrderContents(
        items=list(order.items.order_by("id")),
        works=list(order.works.order_by("id")),
        photos=list(order.photos.order_by("id")),
    )


def order_comments_latest(order: Order, *, limit: int | None) -> tuple[list[Comment], int]:
    """An order's latest `limit` comments (every one with None), oldest first, with their
    authors, and how many earlier ones are left out (counted only when there are some, and
    only those before the oldest shown: one added meanwhile is newer than all of them)."""
    comments = order.comments.select_related("author")
    if limit is None:
        return list(comments.order_by("id")), 0
    latest = list(comments.order_by("-id")[: limit + 1])
    if len(latest) <= limit:
        return latest[::-1], 0
    shown = latest[:limit][::-1]
    return shown, order.comments.filter(id__lt=shown[0].id).count()


def with_totals(orders: QuerySet[Order]) -> QuerySet[Order]:
    """`orders` each with `total`: its parts (quantity x unit price) plus its labour, summed
    by the database (numeric on PostgreSQL), 0.00 for an order with neither."""
    money = DecimalField(max_digits=14, decimal_places=2)
    parts = (
        OrderItem.objects.filter(order=OuterRef("pk"))
        .values("order")
        .annotate(sum=Sum(F("quantity") * F("unit_price"), output_field=money))
        .values("sum")
    )
    labour = (
        OrderWork.objects.filter(order=OuterRef("pk"))
        .values("order")
        .annotate(sum=Sum("price", output_field=money))
        .values("sum")
    )
    zero = Value(Decimal("0.00"), output_field=money)
    return orders.annotate(
        total=ExpressionWrapper(
            Coalesce(Subquery(parts, output_field=money), zero)
            + Coalesce(Subquery(labour, output_field=money), zero),
            output_field=money,
        )
    )


PERIODS = ("today", "yesterday", "week", "month", "custom")
MAX_CUSTOM_DAYS = 366
# The days a caller may name: beyond them a day's bounds in a time zone overflow datetime.
EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2999, 12, 31)


def check_days(**days: date | None) -> None:
    """ValidationFailed naming each of `days` (field name: day) outside EARLIEST_DAY to
    LATEST_DAY."""
    message = gettext("A day from %(first)s to %(last)s.") % {
        "first": EARLIEST_DAY.isoformat(),
        "last": LATEST_DAY.isoformat(),
    }
    wrong = {
        name: [message]
        for name, day in days.items()
        if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY
    }
    if wrong:
        raise ValidationFailed(wrong)


def workshop_today() -> date:
    """Today in the workshop's time zone (TIME_ZONE), whatever zone the request runs in: the
    JSON APIs run in UTC (conclave.middleware.ApiInUtcMiddleware)."""
    return timezone.localdate(timezone=timezone.get_default_timezone())


def time_period(
    period: str, start: date | None, end: date | None, *, today: date | None = None
) -> tuple[date, date]:
    """The first and last day (both included, in the workshop's time zone) of a history
    period up to `today` (the workshop's); a week starts on WEEK_STARTS_ON; `custom` needs
    both dates, at most MAX_CUSTOM_DAYS apart."""
    today = today or workshop_today()
    if period == "today":
        return today, today
    if period == "yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if period == "week":
        first = settings.WEEKDAYS.index(settings.WEEK_STARTS_ON)
        return today - timedelta(days=(today.weekday() - first) % 7), today
    if period == "month":
        return today.replace(day=1), today
    if period != "custom":
        raise ValidationFailed({"period": [f"One of {', '.join(PERIODS)}."]})
    if start is None or end is None:
        raise ValidationFailed({"from": [gettext("A custom period needs both from and to.")]})
    check_days(**{"from": start, "to": end})
    if end < start:
        raise ValidationFailed({"to": [gettext("Must not be before from.")]})
    if (end - start).days >= MAX_CUSTOM_DAYS:
        raise ValidationFailed(
            {"to": [gettext("A period covers at most %(days)d days.") % {"days": MAX_CUSTOM_DAYS}]}
        )
    return start, end


def workshop_day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """From the start of `first` to the end of `last` in the workshop's time zone."""
    zone = timezone.get_default_timezone()
    return (
        datetime.combine(first, time.min, tzinfo=zone),
        datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone),
    )


def workshop_today_bounds() -> tuple[datetime, datetime]:
    """From the start to the end of the workshop's today, the day read once."""
    today = workshop_today()
    return workshop_day_bounds(today, today)


@dataclass(frozen=True)
class TimeDay:
    day: date
    entries: list[TimeEntry]

    @property
    def total_seconds(self) -> int:
        return sum(entry.seconds for entry in self.entries)


def order_etag(order: Order, flags: Mapping[str, bool]) -> str:
    """The order's entity tag (`ETag`, `If-Match`): its `updated_at` moves with every change
    of it (its fields, status, mechanic, parts, labour, photos), and what it shows of it
    depends on ENABLE_CAR_NUMBER."""
    version = f"{order.pk}:{order.updated_at.isoformat()}:{int(flags['ENABLE_CAR_NUMBER'])}"
    return '"' + hashlib.sha256(version.encode()).hexdigest()[:32] + '"'


def time_history(mechanic: MechanicProfile, first: date, last: date) -> list[TimeDay]:
    """The mechanic's time entries started from `first` to `last`, grouped by day (newest
    first), one query."""
    start, end = workshop_day_bounds(first, last)
    entries = TimeEntry.objects.filter(
        mechanic=mechanic, started_at__gte=start, started_at__lt=end
    ).order_by("-started_at", "-id")
    zone = timezone.get_default_timezone()
    days: dict[date, list[TimeEntry]] = {}
    for entry in entries:
        day = timezone.localdate(entry.started_at, zone)
        days.setdefault(day, []).append(entry)
    return [TimeDay(day=day, entries=list(reversed(found))) for day, found in days.items()]


def _by_status(orders: QuerySet[Order]) -> dict[str, int]:
    counts = dict(orders.order_by().values_list("status").annotate(n=Count("id")))
    return {status: counts.get(status, 0) for status in OrderStatus.values}


def _finished_seconds(entries: QuerySet[TimeEntry]) -> int:
    total = entries.filter(ended_at__isnull=False).aggregate(
        total=Sum(ExpressionWrapper(F("ended_at") - F("started_at"), output_field=DurationField()))
    )["total"]
    running = sum(entry.seconds for entry in entries.filter(ended_at__isnull=True))
    return int(total.total_seconds() if total else 0) + running


def order_stats() -> dict[str, Any]:
    """Staff's figures: orders by status, created and completed today."""
    start, end = workshop_today_bounds()
    orders = Order.objects.all()
    by_status = _by_status(orders)
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "created_today": orders.filter(created_at__gte=start, created_at__lt=end).count(),
        "completed_today": orders.filter(completed_at__gte=start, completed_at__lt=end).count(),
    }


def mechanic_stats(mechanic: MechanicProfile) -> dict[str, Any]:
    """A mechanic's figures: active orders, completed today, time today, and all time."""
    start, end = workshop_today_bounds()
    orders = Order.objects.filter(mechanic=mechanic)
    by_status = _by_status(orders)
    entries = TimeEntry.objects.filter(mechanic=mechanic)
    return {
        # Not finished (Order.is_open): a ready order still waits to be completed.
        "active_orders": sum(n for status, n in by_status.items() if TRANSITIONS[status]),
        "by_status": by_status,
        "completed_today": orders.filter(completed_at__gte=start, completed_at__lt=end).count(),
        "time_today_seconds": _finished_seconds(
            entries.filter(started_at__gte=start, started_at__lt=end)
        ),
        "all_time": {
            "orders": sum(by_status.values()),
            "completed": by_status[OrderStatus.COMPLETED],
            "time_seconds": _finished_seconds(entries),
        },
    }


def orders_filtered(
    orders: QuerySet[Order],
    *,
    flags: Mapping[str, bool],
    status: str | None = None,
    mechanic_id: int | None = None,
    assigned: bool | None = None,
    created_from: date | None = None,
    created_to: date | None = None,
    search: str | None = None,
) -> QuerySet[Order]:
    """Narrows a list of orders: by status, mechanic (or whether there is one), days of
    creation (both included, in the workshop's time zone) and part of a VIN or, while
    ENABLE_CAR_NUMBER is on, car number."""
    if status:
        orders = orders.filter(status=status)
    if mechanic_id:
        orders = orders.filter(mechanic_id=mechanic_id)
    if assigned is not None:
        orders = orders.filter(mechanic__isnull=not assigned)
    if created_from:
        orders = orders.filter(created_at__gte=workshop_day_bounds(created_from, created_from)[0])
    if created_to:
        orders = orders.filter(created_at__lt=workshop_day_bounds(created_to, created_to)[1])
    if search and search.strip():
        term = search.strip().upper()
        matches = Q(vin__contains=term)
        if flags["ENABLE_CAR_NUMBER"]:
            matches |= Q(car_number__contains=term)
        orders = orders.filter(matches)
    return orders
