from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.core import checks
from django.db.models.signals import post_migrate


class ConclaveConfig(AppConfig):
    name = "conclave"
    verbose_name = "Governance core"

    def ready(self) -> None:
        from conclave.checks import startup_settings_check
        from conclave.roles import sync_roles

        checks.register(startup_settings_check, checks.Tags.security)
        # After every app's permissions exist (this app comes after auth and the workshop's).
        post_migrate.connect(sync_roles, dispatch_uid="conclave.sync_roles")


class ConclaveAdminConfig(AdminConfig):
    """Django's admin with the product's site: the halt on every page, the dashboard, the halt
    and flag-rollout pages (conclave.admin_site)."""

    default_site = "conclave.admin_site.ConclaveAdminSite"
