"""Changing the flags (SPEC 5). Each change is an event (who, old, new, pinned or not) in the
same transaction; the shared version key is bumped on commit, so every process re-reads."""

import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from conclave.exceptions import Conflict, ValidationFailed
from events.services import event_append
from flags.constants import FLAG_NAMES
from flags.models import FeatureFlag
from flags.selectors import VERSION_KEY, forget_flags


def _published() -> None:
    cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)
    forget_flags()


def _validate_name(name: str) -> str:
    if name not in FLAG_NAMES:
        raise ValidationFailed({"name": [f"Unknown flag; one of {', '.join(FLAG_NAMES)}."]})
    return name


@transaction.atomic
def flag_set(*, name: str, enabled: bool, actor: str, via: str = "api") -> FeatureFlag:
    """Sets one flag. A flag pinned by its environment variable cannot be changed here."""
    _validate_name(name)
    if not isinstance(enabled, bool):
        raise ValidationFailed({"enabled": ["true or false."]})
    if name in settings.FEATURE_FLAG_PINS:
        raise Conflict(
            f"{name} is pinned to {str(settings.FEATURE_FLAG_PINS[name]).lower()} by its "
            "environment variable; unset it and restart to toggle it here."
        )
    flag = FeatureFlag.objects.select_for_update().get(name=name)
    if flag.enabled == enabled:
        return flag
    old = flag.enabled
    flag.enabled = enabled
    flag.updated_at = timezone.now()
    flag.updated_by = actor[:200]
    flag.save(update_fields=["enabled", "updated_at", "updated_by"])
    event_append(
        event_type="flag.changed",
        payload={"flag": name, "old": old, "new": enabled, "actor": actor, "via": via,
                 "pinned": False},
    )  # fmt: skip
    transaction.on_commit(_published)
    return flag


@transaction.atomic
def flags_kill_switch(*, actor: str) -> dict[str, list[str]]:
    """Every flag off in one transaction. Flags pinned by the environment are reported, not
    changed (their variable decides)."""
    pinned = sorted(name for name in FLAG_NAMES if name in settings.FEATURE_FLAG_PINS)
    switched = []
    for flag in FeatureFlag.objects.select_for_update().filter(enabled=True).order_by("name"):
        if flag.name in settings.FEATURE_FLAG_PINS:
            continue
        flag_set(name=flag.name, enabled=False, actor=actor, via="kill_switch")
        switched.append(flag.name)
    return {"switched_off": switched, "pinned": pinned}
