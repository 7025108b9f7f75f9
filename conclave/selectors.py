"""Reads of the governance core."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone

from conclave.halt import halt_status
from conclave.models import HALT_STATE_ID, HaltCeremony, HaltState, VerificationRun
from events import crypto
from events.models import AgentKey, Checkpoint, Event, EventQueueEntry, KeeperKey, KeyKind


def halt_state() -> HaltState:
    return HaltState.objects.get(id=HALT_STATE_ID)


def halt_ceremony_view(ceremony: HaltCeremony) -> dict[str, Any]:
    state = halt_state()
    return {
        "challenge": ceremony.challenge,
        "quorum": ceremony.quorum,
        "halt_number": ceremony.halt_number,
        "reason": state.reason,
        "approvals": [
            {
                "keeper_id": approval.keeper_id,
                "keeper_key_id": approval.keeper_key_id,
                "approved_at": approval.approved_at,
            }
            for approval in ceremony.approvals.order_by("id")
        ],
    }


def constitutional_health() -> dict[str, Any]:
    """What an operator checks first (SPEC 3.7): one small query each."""
    now = timezone.now()
    active = AgentKey.active_at_q(now)
    status = halt_status(fresh=True)
    state = halt_state()
    head = Event.objects.order_by("-sequence").values("sequence", "content_hash").first()
    queue = EventQueueEntry.objects.filter(processed_at__isnull=True).aggregate(
        pending=Count("id"), oldest=Min("enqueued_at")
    )
    run = VerificationRun.objects.order_by("-id").first()
    checkpoint = Checkpoint.objects.order_by("-tree_size").values("tree_size", "timestamp").first()
    witnesses = AgentKey.objects.filter(active, kind=KeyKind.WITNESS).count()
    keepers = KeeperKey.objects.filter(active).values("keeper_id").distinct().count()
    return {
        "status": "halted" if status.halted else "operational",
        "halted": status.halted,
        "halt": {
            "reason": status.reason,
            "halt_number": state.halt_number,
            "channel": state.channel or None,
            "halted_at": state.halted_at if status.halted else None,
            "database": status.database,
            "redis": status.redis,
        },
        "chain_head": head,
        "integration_queue": {
            "pending": queue["pending"],
            "oldest_seconds": (
                round((now - queue["oldest"]).total_seconds(), 3) if queue["oldest"] else None
            ),
        },
        "last_verification": (
            {
                "kind": run.kind,
                "ok": run.ok,
                "first_sequence": run.first_sequence,
                "last_sequence": run.last_sequence,
                "first_bad_sequence": run.first_bad_sequence,
                "finished_at": crypto.format_timestamp(run.finished_at),
            }
            if run
            else None
        ),
        "latest_checkpoint": (
            {
                "tree_size": checkpoint["tree_size"],
                "timestamp": crypto.format_timestamp(checkpoint["timestamp"]),
            }
            if checkpoint
            else None
        ),
        "witnesses": {"active": witnesses, "available": witnesses >= 1},
        "keepers": {
            "active": keepers,
            "quorum": settings.HALT_CLEAR_QUORUM,
            "available": keepers >= settings.HALT_CLEAR_QUORUM,
        },
    }


def admin_dashboard(user: Any) -> dict[str, Any]:
    """The admin's front page, each part only for those whose role may see it: today's orders
    by status, the outbox's success rate and backlog, the chain head and the last
    verification, the flags (the halt is in every admin page's header)."""
    from flags.selectors import flags_detail
    from notifications.models import Notification, NotificationStatus
    from orders.models import Order, OrderStatus
    from orders.selectors import workshop_today_bounds

    figures: dict[str, Any] = {}
    if user.has_perm("orders.view_order"):
        start, end = workshop_today_bounds()
        counts = dict(
            Order.objects.filter(created_at__gte=start, created_at__lt=end)
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        rows = [(status.label, counts.get(status.value, 0)) for status in OrderStatus]
        most = max([n for _, n in rows] + [1])
        figures["orders_today"] = [
            {"label": label, "count": n, "percent": round(100 * n / most)} for label, n in rows
        ]
        figures["orders_today_total"] = sum(n for _, n in rows)
    if user.has_perm("notifications.view_notification"):
        since = timezone.now() - timedelta(hours=24)
        by_status = dict(
            Notification.objects.filter(created_at__gte=since)
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        done = sum(by_status.get(s, 0) for s in ("sent", "failed", "dead"))
        figures["outbox"] = {
            "sent": by_status.get(NotificationStatus.SENT, 0),
            "failed": by_status.get(NotificationStatus.FAILED, 0)
            + by_status.get(NotificationStatus.DEAD, 0),
            "success_rate": (
                round(100 * by_status.get(NotificationStatus.SENT, 0) / done, 1) if done else None
            ),
            "backlog": Notification.objects.filter(
                status__in=(NotificationStatus.PENDING, NotificationStatus.SENDING)
            ).count(),
        }
    if user.has_perm("events.view_event"):
        figures["chain_head"] = (
            Event.objects.order_by("-sequence")
            .values("sequence", "content_hash", "authority_timestamp")
            .first()
        )
        figures["last_verification"] = VerificationRun.objects.order_by("-id").first()
    if user.has_perm("flags.view_featureflag"):
        figures["flags"] = flags_detail()
    return figures
