"""Is the system halted? Two channels, read cheaply and failing closed (SPEC 3.4).

The database row `halt_state` and the Redis keys `<HALT_REDIS_PREFIX>:halt:active` /
`:halt:reason`: either one set means halted. Each process reads both at most every
HALT_CHECK_INTERVAL seconds (so every process sees a halt within a second, and a request
pays a dictionary lookup, not a round trip). What one channel says is carried to the other:
a halt set only in Redis (an operator's `redis-cli SET archon72:halt:active "true"`) is
raised in `halt_state`, where only the ceremony can clear it; a halt in the database is
written back to Redis if the keys went missing. Deleting the Redis keys never clears a halt.
Redis unreachable: the database decides. Neither readable: halted.
"""

import threading
import time
from dataclasses import dataclass

import redis
import structlog
from django.conf import settings
from django.db import DatabaseError

from conclave.exceptions import Halted
from conclave.metrics import HALTED
from conclave.models import HALT_STATE_ID, HaltChannel, HaltState
from conclave.serializers import whole_number

logger = structlog.get_logger(__name__)

HALT_CHECK_INTERVAL = 0.5
# After a failed Redis read, the database alone decides for this long before Redis is tried
# again, so an outage costs requests nothing.
REDIS_RETRY_AFTER = 2.0
REDIS_TIMEOUT = 0.25
UNREADABLE_REASON = "halt state unreadable: neither the database nor Redis answered"
# Appends of these events go on while halted: the halt and its ceremony are logged too.
HALT_EVENT_PREFIX = "halt."
NOT_HALTED_VALUES = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True)
class HaltStatus:
    halted: bool
    reason: str | None
    database: bool | None  # None: unreadable
    redis: bool | None  # None: unreadable or not configured


@dataclass(frozen=True)
class ChannelReading:
    halted: bool
    reason: str | None
    # The halt it belongs to: always in the database; in Redis only when this system wrote
    # the keys (an operator's `SET ...:halt:active` has none, and is a new halt).
    halt_number: int | None


def active_key() -> str:
    return f"{settings.HALT_REDIS_PREFIX}:halt:active"


def reason_key() -> str:
    return f"{settings.HALT_REDIS_PREFIX}:halt:reason"


def number_key() -> str:
    return f"{settings.HALT_REDIS_PREFIX}:halt:number"


class _RedisChannel:
    def __init__(self) -> None:
        self._client: redis.Redis | None = None
        self._down_until = 0.0

    def client(self) -> redis.Redis | None:
        if not settings.REDIS_URL:
            return None
        if self._client is None:
            self._client = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
            )
        return self._client

    def read(self) -> ChannelReading | None:
        client = self.client()
        if client is None or time.monotonic() < self._down_until:
            return None
        try:
            with client.pipeline(transaction=False) as pipe:  # one round trip
                pipe.mget([active_key(), reason_key(), number_key()])
                pipe.exists(active_key())
                (active, reason, number), present = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self._down_until = time.monotonic() + REDIS_RETRY_AFTER
            logger.warning("halt_redis_unreadable", error=str(exc))
            return None
        # Anyone may write these keys: read them as bytes, whatever they hold.
        active, reason, number = (
            value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
            for value in (active, reason, number)
        )
        if active is None and present:
            # Set, but not as a string (LPUSH for SET): MGET reads it as missing. Fail closed.
            active, reason = "true", reason or "the halt key holds a value that is not a string"
        halted = active is not None and active.strip().lower() not in NOT_HALTED_VALUES
        halt_number = whole_number(number.strip()) if number else None
        return ChannelReading(halted, reason, halt_number)

    def write(self, *, halted: bool, reason: str | None = None, halt_number: int = 0) -> None:
        """Sets or deletes the keys; raises redis errors (the caller decides what they mean)."""
        client = self.client()
        if client is None:
            return
        if halted:
            client.mset(
                {active_key(): "true", reason_key(): reason or "", number_key(): str(halt_number)}
            )
        else:
            client.delete(active_key(), reason_key(), number_key())


redis_channel = _RedisChannel()


def _read_database() -> ChannelReading | None:
    try:
        row = (
            HaltState.objects.values_list("is_halted", "reason", "halt_number")
            .filter(id=HALT_STATE_ID)
            .first()
        )
    except DatabaseError as exc:
        logger.warning("halt_database_unreadable", error=str(exc))
        return None
    return ChannelReading(*row) if row else None


_lock = threading.RLock()
_cached: tuple[float, HaltStatus] | None = None


def _reconcile(database: ChannelReading, from_redis: ChannelReading) -> ChannelReading:
    """Carries a halt from one channel to the other (see the module docstring); returns what
    Redis says once reconciled."""
    from conclave.services import halt_raise

    if from_redis.halted and not database.halted:
        if from_redis.halt_number is not None and from_redis.halt_number <= (
            database.halt_number or 0
        ):
            # Keys this system wrote for a halt the ceremony has cleared since.
            try:
                redis_channel.write(halted=False)
            except (redis.RedisError, OSError) as exc:
                logger.warning("halt_stale_redis_keys_not_deleted", error=str(exc))
            return ChannelReading(False, None, None)
        try:
            halt_raise(
                reason=from_redis.reason or "halted through Redis",
                actor="redis",
                channel=HaltChannel.REDIS,
            )
        except (DatabaseError, Halted) as exc:
            logger.error("halt_carry_from_redis_failed", error=str(exc))
    elif database.halted and not from_redis.halted:
        try:
            redis_channel.write(
                halted=True, reason=database.reason, halt_number=database.halt_number or 0
            )
        except (redis.RedisError, OSError) as exc:
            logger.warning("halt_mirror_to_redis_failed", error=str(exc))
    return from_redis


def halt_status(*, fresh: bool = False) -> HaltStatus:
    """The halt as this process last read it (at most HALT_CHECK_INTERVAL old)."""
    global _cached
    cached = _cached
    if not fresh and cached is not None and time.monotonic() - cached[0] < HALT_CHECK_INTERVAL:
        return cached[1]
    with _lock:
        database = _read_database()
        from_redis = redis_channel.read()
        if database is not None and from_redis is not None:
            from_redis = _reconcile(database, from_redis)
            if from_redis.halted and not database.halted:
                database = _read_database()
        status = _combine(database, from_redis)
        _cached = (time.monotonic(), status)
    HALTED.set(1 if status.halted else 0)
    if status.halted:
        logger.debug("halted", reason=status.reason)
    return status


def _combine(database: ChannelReading | None, from_redis: ChannelReading | None) -> HaltStatus:
    if database is None and from_redis is None:
        return HaltStatus(True, UNREADABLE_REASON, None, None)
    db_halted = database.halted if database else None
    redis_halted = from_redis.halted if from_redis else None
    if database is not None and database.halted:
        return HaltStatus(True, database.reason, db_halted, redis_halted)
    if from_redis is not None and from_redis.halted:
        return HaltStatus(True, from_redis.reason, db_halted, redis_halted)
    return HaltStatus(False, None, db_halted, redis_halted)


def forget_halt_status() -> None:
    """The next check reads both channels again (after a raise or a clear in this process)."""
    global _cached
    _cached = None


def ensure_not_halted(*, event_types: tuple[str, ...] = ()) -> None:
    """Raises Halted while halted, unless every event type given is a halt event."""
    if event_types and all(t.startswith(HALT_EVENT_PREFIX) for t in event_types):
        return
    status = halt_status()
    if status.halted:
        raise Halted(status.reason or "halted")
