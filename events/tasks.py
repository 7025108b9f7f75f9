from datetime import timedelta

from celery import shared_task
from django.conf import settings

from conclave.tasks import HaltGuardedTask


@shared_task(base=HaltGuardedTask, ignore_result=True)
def purge_event_queue() -> int:
    """Deletes integrated queue entries older than EVENT_QUEUE_RETENTION_SECONDS."""
    from events.integration import events_queue_purge

    return events_queue_purge(older_than=timedelta(seconds=settings.EVENT_QUEUE_RETENTION_SECONDS))
