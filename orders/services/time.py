"""Time tracking: a mechanic's timer and manual entries."""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from conclave.exceptions import Conflict, ValidationFailed
from events.services import event_append
from orders.models import MechanicProfile, TimeEntry
from orders.selectors import check_days
from orders.services.common import own_order
from orders.validators import printable

MAX_MANUAL_ENTRY = timedelta(hours=24)


@transaction.atomic
def timer_start(*, order_id: int, mechanic: MechanicProfile) -> TimeEntry:
    """Starts the mechanic's timer on their order while it is open (completed and cancelled
    orders are done with); one timer runs per mechanic at a time."""
    MechanicProfile.objects.select_for_update().get(pk=mechanic.pk)  # serialises their timers
    order = own_order(order_id, mechanic, lock=True)  # neither closed nor reassigned meanwhile
    if not order.is_open:
        raise Conflict(
            gettext("Order %(order)d is completed or cancelled; its timer cannot start.")
            % {"order": order.pk},
            status=order.status,
        )
    running = TimeEntry.objects.filter(mechanic=mechanic, ended_at__isnull=True).first()
    if running is not None:
        raise Conflict(
            gettext("A timer is already running on order %(order)d; stop it first.")
            % {"order": running.order_id},
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
        raise Conflict(gettext("No timer of yours is running."))
    return _stop(entry, actor=f"mechanic:{mechanic.pk}")


def timers_stop_running(entries: QuerySet[TimeEntry], *, actor: str, reason: str) -> None:
    """Stops now the timers running among `entries`, in the caller's transaction, each with a
    `time.stopped` event that says why: their order was completed or cancelled, their
    mechanic deactivated. Time is not counted on for work that is over."""
    for entry in entries.select_for_update().filter(ended_at__isnull=True).order_by("pk"):
        _stop(entry, actor=actor, reason=reason)


def _stop(entry: TimeEntry, *, actor: str, reason: str = "") -> TimeEntry:
    entry.ended_at = max(timezone.now(), entry.started_at + timedelta(seconds=1))
    entry.save(update_fields=["ended_at"])
    payload = {
        "order_id": entry.order_id,
        "entry_id": entry.pk,
        "seconds": entry.seconds,
        "actor": actor,
    }
    event_append(
        event_type="time.stopped", payload=payload | ({"reason": reason} if reason else {})
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
    """A manual entry: it ends after it starts, not in the future, at most 24 hours long, and
    overlaps none of the mechanic's own time (their running timer included), on any order:
    a mechanic's hours are one timeline, billed once."""
    order = own_order(order_id, mechanic)
    check_days(started_at=started_at.date())
    if ended_at <= started_at:
        raise ValidationFailed({"ended_at": [gettext("Must be after the start.")]})
    if ended_at > timezone.now():
        raise ValidationFailed({"ended_at": [gettext("Cannot be in the future.")]})
    if ended_at - started_at > MAX_MANUAL_ENTRY:
        raise ValidationFailed({"ended_at": [gettext("A manual entry covers at most 24 hours.")]})
    if len(notes) > 500:
        raise ValidationFailed({"notes": [gettext("At most 500 characters.")]})
    printable(notes, "notes", lines=True)
    MechanicProfile.objects.select_for_update().get(pk=mechanic.pk)  # serialises their time
    _refuse_overlap(mechanic, started_at, ended_at)
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


def _refuse_overlap(mechanic: MechanicProfile, started_at: datetime, ended_at: datetime) -> None:
    """Conflict naming the mechanic's first entry that shares a moment with [start, end)."""
    overlapping = (
        TimeEntry.objects.filter(mechanic=mechanic, started_at__lt=ended_at)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=started_at))
        .order_by("started_at", "id")
        .first()
    )
    if overlapping is None:
        return
    ends = (
        _workshop_time(overlapping.ended_at)
        if overlapping.ended_at
        else gettext("now (the timer runs)")
    )
    raise Conflict(
        gettext("This time overlaps your entry on order %(order)d, from %(start)s to %(end)s.")
        % {
            "order": overlapping.order_id,
            "start": _workshop_time(overlapping.started_at),
            "end": ends,
        },
        overlapping_entry_id=overlapping.pk,
        overlapping_order_id=overlapping.order_id,
    )


def _workshop_time(moment: datetime) -> str:
    """A moment as the mechanic reads it: the workshop's time (TIME_ZONE), to the minute."""
    return timezone.localtime(moment, timezone.get_default_timezone()).strftime("%Y-%m-%d %H:%M")
