"""Celery tasks of the governance core, and the guard for every task that writes."""

from typing import Any

import structlog
from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from conclave.exceptions import Halted
from conclave.halt import halt_status

logger = structlog.get_logger(__name__)


class HaltGuardedTask(Task):
    """Base of every task that writes: while the system is halted the task does not run; it
    is retried (its message kept) until the halt is cleared, so nothing is lost."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        status = halt_status(fresh=True)
        if status.halted:
            logger.warning("task_deferred_while_halted", task=self.name, reason=status.reason)
            raise self.retry(
                exc=Halted(status.reason or "halted"),
                countdown=settings.HALT_TASK_RETRY_SECONDS,
                max_retries=None,
            )
        return super().__call__(*args, **kwargs)


@shared_task(ignore_result=True)
def verify_recent_events() -> dict[str, Any]:
    """Verifies the events appended since the last verified point (CT-13: a failure halts)."""
    from conclave.models import VerificationKind
    from conclave.services import last_verified_sequence, verification_record
    from events.verification import verify_chain

    started = timezone.now()
    result = verify_chain(from_sequence=last_verified_sequence() + 1, workers=1)
    verification_record(kind=VerificationKind.PERIODIC, result=result, started_at=started)
    return {"ok": result.ok, "checked": result.checked, "last_sequence": result.last_sequence}


@shared_task(base=HaltGuardedTask, ignore_result=True)
def purge_idempotency_keys() -> int:
    """Forgets the answers kept for `Idempotency-Key` retries once they are KEPT old."""
    from conclave.idempotency import KEPT
    from conclave.models import IdempotentRequest

    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=timezone.now() - KEPT).delete()
    return deleted
