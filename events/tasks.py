from datetime import timedelta

import structlog
from celery import shared_task
from django.conf import settings

from conclave.tasks import HaltGuardedTask

logger = structlog.get_logger(__name__)


@shared_task(ignore_result=True)
def checkpoint() -> int | None:
    """Signs a checkpoint of the log if it has grown since the last one (Celery beat). While
    the system is halted none is signed (nothing is vouched for in doubt) and none is queued:
    beat asks again at the next interval."""
    from conclave.exceptions import Halted
    from events.services import checkpoint_create

    try:
        created = checkpoint_create(actor="celery:checkpoint")
    except Halted:
        logger.warning("checkpoint_skipped_while_halted")
        return None
    return created.tree_size if created else None


@shared_task(base=HaltGuardedTask, ignore_result=True)
def purge_event_queue() -> int:
    """Deletes integrated queue entries older than EVENT_QUEUE_RETENTION_SECONDS."""
    from events.integration import events_queue_purge

    return events_queue_purge(older_than=timedelta(seconds=settings.EVENT_QUEUE_RETENTION_SECONDS))
