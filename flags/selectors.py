"""Reading the flags: a per-process snapshot, so a check costs no query on the hot path.

Each process keeps the six values and re-reads them when the shared version key changes
(`flags:version` in the cache, i.e. Redis when REDIS_URL is set), looking at that key at most
every LOCAL_TTL seconds: a change reaches every web and Celery process within a second. With
no shared cache (the quick start's local-memory cache is per process) the rows themselves are
re-read every LOCAL_TTL instead. Environment pins (`ENABLE_<FLAG>`) win over the rows.

A request reads the flags once (`request_flags`), so it never sees half of a change.
"""

import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from flags.constants import FLAG_NAMES
from flags.models import FeatureFlag

LOCAL_TTL = 0.5
VERSION_KEY = "flags:version"


@dataclass(frozen=True)
class _Snapshot:
    read_at: float
    version: Any
    values: Mapping[str, bool]


_lock = threading.Lock()
_snapshot: _Snapshot | None = None


def _shared_cache() -> bool:
    return bool(settings.REDIS_URL)


def _shared_version() -> Any:
    """The shared version key, created when missing (a fresh or restarted Redis), so an
    unchanged key rather than the clock decides when the rows are read again."""
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, uuid.uuid4().hex, timeout=None)
        version = cache.get(VERSION_KEY)
    return version


def _read_rows() -> dict[str, bool]:
    stored = dict(FeatureFlag.objects.values_list("name", "enabled"))
    values = {name: bool(stored.get(name, False)) for name in FLAG_NAMES}
    values.update(settings.FEATURE_FLAG_PINS)
    return values


def flags_snapshot() -> Mapping[str, bool]:
    """The six flags, as this process last read them (at most about LOCAL_TTL old)."""
    global _snapshot
    snapshot = _snapshot
    now = time.monotonic()
    if snapshot is not None and now - snapshot.read_at < LOCAL_TTL:
        return snapshot.values
    with _lock:
        version = _shared_version() if _shared_cache() else None
        if (
            snapshot is not None
            and _shared_cache()
            and version is not None
            and version == snapshot.version
        ):
            _snapshot = _Snapshot(now, version, snapshot.values)
        else:
            _snapshot = _Snapshot(now, version, MappingProxyType(_read_rows()))
        return _snapshot.values


def forget_flags() -> None:
    global _snapshot
    _snapshot = None


def flag_enabled(name: str, flags: Mapping[str, bool] | None = None) -> bool:
    return (flags if flags is not None else flags_snapshot())[name]


def request_flags(request: HttpRequest) -> Mapping[str, bool]:
    """The flags for the whole of this request, read on first use."""
    flags = getattr(request, "_conclave_flags", None)
    if flags is None:
        flags = flags_snapshot()
        request._conclave_flags = flags  # type: ignore[attr-defined]
    return flags


def flags_detail() -> list[dict[str, Any]]:
    """Every flag with its stored value, whether the environment pins it, and its last change."""
    pins = settings.FEATURE_FLAG_PINS
    rows = {flag.name: flag for flag in FeatureFlag.objects.all()}
    detail = []
    for name in FLAG_NAMES:
        row = rows.get(name)
        stored = bool(row and row.enabled)
        detail.append(
            {
                "name": name,
                "enabled": pins.get(name, stored),
                "stored": stored,
                "pinned": name in pins,
                "updated_at": row.updated_at if row else None,
                "updated_by": (row.updated_by or None) if row else None,
            }
        )
    return detail
