"""What every mechanic page shows: the flags' look and language switches, the halt, and the
API client's messages in the page's language."""

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext

from conclave.halt import halt_status
from flags.selectors import request_flags


def api_messages() -> dict[str, Any]:
    """api.js's MESSAGES and field labels, translated (the client keeps no text of its own
    besides its English defaults)."""
    return {
        "network": gettext("Network error. Please check your internet connection."),
        "401": gettext("Your session has expired. Please log in again."),
        "403": gettext("You do not have permission to do this."),
        "404": gettext("The requested item was not found."),
        "412": gettext("It changed while this was being sent: look at it again."),
        "429": gettext("Too many requests. Please wait a moment and try again."),
        "server": gettext("Server error. Please try again later."),
        "halted": gettext("The system is halted; changes are refused until it is cleared."),
        "other": gettext("An error occurred. Please try again."),
        # A correction's field changed elsewhere since the page showed it (app.js fills in).
        "raced": gettext(
            "%(field)s was changed meanwhile, it is now “%(value)s”. Save again to replace it."
        ),
        "fields": {
            "text": gettext("Comment"),
            "status": gettext("Status"),
            "started_at": gettext("Start"),
            "ended_at": gettext("End"),
            "notes": gettext("Notes"),
            "part_id": gettext("From the catalog"),
            "name": gettext("Name"),
            "part_number": gettext("Part number"),
            "quantity": gettext("Quantity"),
            "unit_price": gettext("Unit price"),
            "description": gettext("Description"),
            "price": gettext("Price"),
            "estimated_minutes": gettext("Estimated minutes"),
            "photo": gettext("Photo"),
            "vin": gettext("VIN"),
            "car_number": gettext("Car number"),
            "part_type": gettext("Part"),
            "original_or_analog": gettext("Original or analog"),
        },
    }


def mechanic_ui(request: HttpRequest) -> dict[str, Any]:
    if not request.path.startswith("/mechanic/"):
        return {}
    flags = request_flags(request)
    status = halt_status()
    return {
        "ui_refresh": flags["ENABLE_UI_REFRESH"],
        "car_numbers": flags["ENABLE_CAR_NUMBER"],
        "language_switcher": flags["ENABLE_MECH_I18N"],
        "halted": status.halted,
        "halt_reason": status.reason or "",
        "api_messages": api_messages,
    }
