"""Settings that must never reach a serving process, as named errors (SPEC 3.5).

Each check raises a `StartupError` subclass; the system check in `conclave.checks` turns them
into CRITICAL messages, so `manage.py check` (run before serving by `make run` and by the
container's web command) fails naming the error.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any


class StartupError(Exception):
    """A configuration the system refuses to start with."""


class DevModeEnvironmentMismatchError(StartupError):
    """DEV_MODE=true (software signing keys) in a production environment."""


class HSMNotConfiguredError(StartupError):
    """DEV_MODE=false but no usable PKCS#11 token is configured."""


class StartupFloorViolationError(StartupError):
    """A setting is below its safety floor."""


PRODUCTION_HALT_CLEAR_QUORUM_FLOOR = 2


def check_dev_mode_environment(settings: Any) -> None:
    if settings.DEV_MODE and settings.ENVIRONMENT == "production":
        raise DevModeEnvironmentMismatchError(
            "DEV_MODE=true is refused with ENVIRONMENT=production: production events must be "
            "signed by the PKCS#11 token, not by software keys"
        )


def check_hsm_configured(settings: Any) -> None:
    if settings.DEV_MODE:
        return
    missing = [
        name
        for name in ("PKCS11_MODULE", "PKCS11_TOKEN_LABEL", "PKCS11_PIN")
        if not getattr(settings, name)
    ]
    if missing:
        raise HSMNotConfiguredError(
            f"DEV_MODE=false needs a PKCS#11 token; set {', '.join(missing)}"
        )
    if not Path(settings.PKCS11_MODULE).is_file():
        raise HSMNotConfiguredError(
            f"PKCS11_MODULE={settings.PKCS11_MODULE} does not exist or is not a file"
        )


def check_safety_floors(settings: Any) -> None:
    production = settings.ENVIRONMENT == "production"
    floor = PRODUCTION_HALT_CLEAR_QUORUM_FLOOR if production else 1
    if settings.HALT_CLEAR_QUORUM < floor:
        raise StartupFloorViolationError(
            f"HALT_CLEAR_QUORUM={settings.HALT_CLEAR_QUORUM} is below its floor of {floor}"
            + (" in production" if production else "")
        )
    if production and settings.ALLOW_VERIFICATION_BYPASS:
        raise StartupFloorViolationError(
            "ALLOW_VERIFICATION_BYPASS=true is refused with ENVIRONMENT=production"
        )


STARTUP_CHECKS: tuple[Callable[[Any], None], ...] = (
    check_dev_mode_environment,
    check_hsm_configured,
    check_safety_floors,
)


def startup_errors(settings: Any) -> list[StartupError]:
    errors = []
    for check in STARTUP_CHECKS:
        try:
            check(settings)
        except StartupError as exc:
            errors.append(exc)
    return errors
