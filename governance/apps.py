from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    """The halt, its clearing ceremony and pre-operational verification (SPEC 3.4, 3.5)."""

    name = "governance"
    default_auto_field = "django.db.models.BigAutoField"
