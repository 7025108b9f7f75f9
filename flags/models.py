"""The six runtime feature flags (SPEC 5): one row each, created by a migration, never added
to or removed at runtime. `ENABLE_<FLAG>` in the environment pins a flag over its row."""

from django.db import models
from django.db.models.functions import Now

from flags.constants import FLAG_NAMES


class FeatureFlag(models.Model):
    """A flag's stored state. Changed only by flags.services (each change is an event)."""

    name = models.CharField(
        max_length=50, primary_key=True, choices=[(name, name) for name in FLAG_NAMES]
    )
    enabled = models.BooleanField(default=False)
    updated_at = models.DateTimeField(db_default=Now())
    updated_by = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        db_table = "feature_flags"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}={'on' if self.enabled else 'off'}"
