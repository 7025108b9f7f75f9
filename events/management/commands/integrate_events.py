import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from conclave.heap import settle_heap
from events.integration import events_integrate, run_integrator

logger = structlog.get_logger(__name__)


HEARTBEAT_EVERY_SECONDS = 5.0


def _heartbeat(path: Path) -> Callable[[int], None]:
    last = 0.0

    def beat(settled: int) -> None:
        nonlocal last
        if time.monotonic() - last >= HEARTBEAT_EVERY_SECONDS:
            path.touch()
            last = time.monotonic()

    return beat


class Command(BaseCommand):
    help = (
        "Run the event log's integrator: chain, sign, witness and insert queued events in "
        "batches until SIGTERM or SIGINT (the batch in flight finishes first). Several may run; "
        "they take turns. --once integrates what is queued now and exits."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Drain the queue, then exit.")
        parser.add_argument(
            "--heartbeat-file",
            type=Path,
            default=None,
            help="Touched at least every few seconds while the loop runs (liveness probes).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=settings.EVENT_INTEGRATOR_BATCH_SIZE,
            help="Events per transaction (default: EVENT_INTEGRATOR_BATCH_SIZE).",
        )
        parser.add_argument(
            "--poll-seconds",
            type=float,
            default=settings.EVENT_INTEGRATOR_POLL_SECONDS,
            help="Pause between looks at an empty queue (default: EVENT_INTEGRATOR_POLL_SECONDS).",
        )

    def handle(
        self,
        *args: Any,
        once: bool,
        heartbeat_file: Path | None,
        batch_size: int,
        poll_seconds: float,
        **options: Any,
    ) -> None:
        if batch_size < 1 or poll_seconds <= 0:
            raise CommandError("--batch-size must be 1 or more and --poll-seconds above 0")
        if once:
            total = 0
            while settled := events_integrate(limit=batch_size):
                total += settled
            self.stdout.write(f"integrated {total} queued events")
            return

        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        # (A batch held up by a full collection of the heap holds up every writer's event.)
        settled = settle_heap()
        logger.info(
            "integrator_started",
            batch_size=batch_size,
            poll_seconds=poll_seconds,
            settled_objects=settled,
        )
        self.stdout.write(f"integrating queued events in batches of {batch_size}; SIGTERM stops")
        self.stdout.flush()
        run_integrator(
            stop=stop,
            batch_size=batch_size,
            poll_interval=poll_seconds,
            on_batch=_heartbeat(heartbeat_file) if heartbeat_file else None,
        )
        logger.info("integrator_stopped")
