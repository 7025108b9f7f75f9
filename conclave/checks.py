from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Critical

from conclave.startup import startup_errors

ERROR_IDS = {
    "DevModeEnvironmentMismatchError": "conclave.E001",
    "HSMNotConfiguredError": "conclave.E002",
    "StartupFloorViolationError": "conclave.E003",
}


def startup_settings_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [
        Critical(
            f"{type(error).__name__}: {error}",
            hint="Fix the environment variables named above (see .env.example).",
            id=ERROR_IDS[type(error).__name__],
        )
        for error in startup_errors(settings)
    ]
