"""The workshop's field rules, shared by the API, the bot and the admin (through services)."""

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext, gettext_noop

from conclave.exceptions import ValidationFailed
from conclave.text import REFUSAL, prints

VIN_PATTERN = re.compile(r"[A-Z0-9]{6,17}")
# ISO 3779: a full 17-character VIN never uses I, O or Q (they read as 1 and 0).
VIN_FORBIDDEN = frozenset("IOQ")
CAR_NUMBER_MAX_LENGTH = 20
CAR_NUMBER_PATTERN = re.compile(rf"[A-Za-z0-9-]{{1,{CAR_NUMBER_MAX_LENGTH}}}")
CAR_NUMBER_RULE = gettext_noop("Up to 20 characters: digits, letters and hyphens.")


def printable(value: str, field: str, *, lines: bool = False) -> None:
    """ValidationFailed unless `value` passes conclave.text.prints: no control characters (line
    breaks and tabs allowed when `lines`) and no text direction overrides, which would reorder
    what staff read."""
    if not prints(value, lines=lines):
        raise ValidationFailed({field: [gettext(REFUSAL)]})


def normalise_vin(vin: str) -> str:
    value = (vin or "").strip()
    # Checked before upper-casing, which makes "ß" "SS" and a dotless "ı" "I".
    value = value.upper() if value.isascii() else value
    if not VIN_PATTERN.fullmatch(value):
        raise ValidationFailed({"vin": [gettext("6 to 17 letters and digits.")]})
    if len(value) == 17 and VIN_FORBIDDEN & set(value):
        raise ValidationFailed(
            {"vin": [gettext("A 17-character VIN never contains I, O or Q (ISO 3779).")]}
        )
    return value


def normalise_car_number(car_number: str) -> str:
    value = (car_number or "").strip().upper()
    if value and not CAR_NUMBER_PATTERN.fullmatch(value):
        raise ValidationFailed({"car_number": [gettext(CAR_NUMBER_RULE)]})
    return value


def car_number_unread(car_number: str) -> str:
    """A car number sent while ENABLE_CAR_NUMBER is off: not read, but of the shape the API's
    document gives it (at most CAR_NUMBER_MAX_LENGTH characters, the spaces around aside)."""
    if len((car_number or "").strip()) > CAR_NUMBER_MAX_LENGTH:
        raise ValidationFailed({"car_number": [gettext(CAR_NUMBER_RULE)]})
    return car_number


MAX_PRICE = Decimal("99999999.99")


def clean_text(value: Any, field: str, limit: int, *, required: bool, lines: bool = False) -> str:
    """Stripped text of at most `limit` characters that prints (of several lines when
    `lines`), without NUL (PostgreSQL's text cannot hold one); not empty when `required`."""
    text = (value or "").strip()
    if "\x00" in text:
        raise ValidationFailed({field: [gettext("Null characters are not allowed.")]})
    printable(text, field, lines=lines)
    if required and not text:
        raise ValidationFailed({field: [gettext("1 to %(limit)d characters.") % {"limit": limit}]})
    if len(text) > limit:
        raise ValidationFailed(
            {field: [gettext("At most %(limit)d characters.") % {"limit": limit}]}
        )
    return text


def money(value: Any, field: str) -> Decimal:
    """A price: a non-negative amount with at most two decimal places (never a float's guess)."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed({field: [gettext("An amount such as 12.50.")]}) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_PRICE:
        raise ValidationFailed(
            {field: [gettext("An amount from 0 to %(max)s.") % {"max": MAX_PRICE}]}
        )
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationFailed({field: [gettext("At most two decimal places.")]})
    return amount.quantize(Decimal("0.01"))
