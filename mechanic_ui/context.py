"""What every mechanic page shows: the flags' look and language switches, and the halt."""

from typing import Any

from django.http import HttpRequest

from conclave.halt import halt_status
from flags.selectors import request_flags


def mechanic_ui(request: HttpRequest) -> dict[str, Any]:
    if not request.path.startswith("/mechanic/"):
        return {}
    flags = request_flags(request)
    status = halt_status()
    return {
        "ui_refresh": flags["ENABLE_UI_REFRESH"],
        "car_numbers": flags["ENABLE_CAR_NUMBER"],
        "halted": status.halted,
        "halt_reason": status.reason or "",
    }
