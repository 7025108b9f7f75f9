from django.apps import AppConfig
from django.core import checks


class ConclaveConfig(AppConfig):
    name = "conclave"
    verbose_name = "Governance core"

    def ready(self) -> None:
        from conclave.checks import startup_settings_check

        checks.register(startup_settings_check, checks.Tags.security)
