"""The workshop's field rules, shared by the API, the bot and the admin (through services)."""

import re

from conclave.exceptions import ValidationFailed

VIN_PATTERN = re.compile(r"[A-Z0-9]{6,17}")
# ISO 3779: a full 17-character VIN never uses I, O or Q (they read as 1 and 0).
VIN_FORBIDDEN = frozenset("IOQ")
CAR_NUMBER_PATTERN = re.compile(r"[A-Za-z0-9-]{1,20}")


def normalise_vin(vin: str) -> str:
    value = (vin or "").strip().upper()
    if not VIN_PATTERN.fullmatch(value):
        raise ValidationFailed({"vin": ["6 to 17 letters and digits."]})
    if len(value) == 17 and VIN_FORBIDDEN & set(value):
        raise ValidationFailed({"vin": ["A 17-character VIN never contains I, O or Q (ISO 3779)."]})
    return value


def normalise_car_number(car_number: str) -> str:
    value = (car_number or "").strip().upper()
    if value and not CAR_NUMBER_PATTERN.fullmatch(value):
        raise ValidationFailed(
            {"car_number": ["Up to 20 characters: digits, letters and hyphens."]}
        )
    return value
