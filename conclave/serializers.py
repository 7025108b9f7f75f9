"""Reading input: serializer bases and fields shared by the apps, and the ids that forms and
buttons carry as text."""

import copy
import re
from collections.abc import Mapping
from typing import Any, cast

from django.http import QueryDict
from django.utils.translation import gettext, gettext_noop
from rest_framework import serializers
from rest_framework.utils.formatting import lazy_format

AMOUNT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
# The largest id a BigAutoField holds. A larger one names no row, but SQLite cannot even
# compare it (OverflowError) where PostgreSQL finds nothing.
MAX_ID = 2**63 - 1
# Fields that hold other fields.
NESTING = (serializers.BaseSerializer, serializers.ListField, serializers.DictField)


# DRF's words for the limits that the mechanic pages' forms can meet (a price typed as -5 or
# 12.505, a name of spaces), in the product's catalogues too: DRF's own holds no Hebrew (and
# the Russian is then the pages' own voice). Listed here for `make messages` to find.
DRF_FORM_MESSAGES = (
    gettext_noop("This field is required."),
    gettext_noop("This field may not be blank."),
    gettext_noop("Ensure this value is less than or equal to {max_value}."),
    gettext_noop("Ensure this value is greater than or equal to {min_value}."),
    gettext_noop("Ensure that there are no more than {max_digits} digits in total."),
    gettext_noop("Ensure that there are no more than {max_decimal_places} decimal places."),
    gettext_noop(
        "Ensure that there are no more than {max_whole_digits} digits before the decimal point."
    ),
)


def _json_type_error(field: serializers.Field, value: Any) -> str | None:
    """Why a JSON value cannot fill the field, where DRF would coerce it."""
    if isinstance(field, serializers.BooleanField) and not isinstance(value, bool):
        return "Not true or false."
    if isinstance(field, serializers.IntegerField) and (
        isinstance(value, bool) or not isinstance(value, int)
    ):
        return "Not a whole number."
    if isinstance(field, serializers.CharField) and not isinstance(value, str):
        return "Not a string."
    if isinstance(field, serializers.DecimalField) and not (
        isinstance(value, str) and AMOUNT.fullmatch(value)
    ):
        return gettext('An amount is a string of digits, such as "12.50".')
    return None


def _empty_text_error(field: serializers.Field, value: Any) -> str | None:
    """`?status=`: DRF would read it as no parameter at all; it is more likely a mistake."""
    if value == "" and not getattr(field, "allow_blank", False):
        return "Empty: give a value, or leave the parameter out."
    return None


def _repeated_error(field: serializers.Field, data: QueryDict, name: str) -> str | None:
    """`?status=new&status=completed`: DRF would take the last value and answer another
    question than the one asked. A list field takes every value, as DRF reads it."""
    if isinstance(field, serializers.ListField) or len(data.getlist(name)) < 2:
        return None
    return "Given more than once: give it once."


class _Worded:
    """A field's limit put in words in the language of the moment, each time it is told.
    DRF's `lazy_format` keeps its first wording, and every request's copy of a field (below)
    shares the field's validators: the first refusal's language would be every later one's."""

    __slots__ = ("args", "kwargs", "text")

    def __init__(self, text: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.text, self.args, self.kwargs = text, args, kwargs

    def __str__(self) -> str:
        return str(self.text).format(*self.args, **self.kwargs)

    def __mod__(self, value: Any) -> str:  # how Django's ValidationError fills in its params
        return str(self) % value


def _worded_each_time(field: serializers.Field) -> serializers.Field:
    """The field, its validators' messages worded anew each time they are told (once per
    declared field: its copies share them). A fresh instance's validators: none worded yet."""
    if "_worded_each_time" not in field.__dict__:
        validators = copy.deepcopy(field).validators
        for validator in validators:
            message = getattr(validator, "message", None)
            if isinstance(message, lazy_format):
                cast(Any, validator).message = _Worded(
                    message.format_string, message.args, message.kwargs
                )
        field.validators = validators
        cast(Any, field)._worded_each_time = True
    return field


def _copied(field: serializers.Field) -> serializers.Field:
    """What `copy.copy` makes of a field (the class's `__new__`, then the same attributes), a
    third of its cost: `copy.copy` goes through `__reduce_ex__` and copyreg to get there."""
    clone = type(field).__new__(type(field))
    clone.__dict__.update(field.__dict__)
    return clone


class StrictInputSerializer(serializers.Serializer):
    """An input serializer that refuses fields it does not declare, instead of ignoring
    them: a typo in a request is an error the client sees, not a silently dropped value.

    A JSON body's values must have the JSON type of their field: DRF would turn `0` into "0",
    "yes" into true and "12" into 12. Amounts are strings ("12.50", never 12.5: a JSON number
    is a float to most clients). Query strings and forms carry only text, converted as DRF
    does, but an empty value is refused unless the field takes blank text, and so is a
    parameter given twice (but for a list field). The OpenAPI document says the same
    (`additionalProperties: false`, conclave.openapi)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        """The declared fields, copied for this instance. DRF deep-copies them, which builds
        each field anew (its validators included) on every request: a third of validating a
        small body. A plain copy of a leaf field is enough, binding only sets attributes of
        the copy (its validators are the field's, their messages worded each time they are
        told); a field holding other fields (a list's child, a nested serializer) is
        deep-copied as DRF does."""
        return {
            name: copy.deepcopy(field)
            if isinstance(field, NESTING)
            else _copied(_worded_each_time(field))
            for name, field in self._declared_fields.items()
        }

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            errors = {name: ["Unknown field."] for name in sorted(set(data) - set(self.fields))}
            for name, field in self.fields.items():
                value = data.get(name)
                if isinstance(data, QueryDict):
                    problem = _repeated_error(field, data, name) or _empty_text_error(field, value)
                else:
                    problem = None if value is None else _json_type_error(field, value)
                if problem:
                    errors[name] = [problem]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class IdField(serializers.IntegerField):
    """A row's id: a whole number from 1 to MAX_ID."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


def whole_number(text: str, most: int = MAX_ID) -> int | None:
    """The number `text` writes in ASCII digits, if it is at most `most`; else None. Where
    `text.isdigit()` would do, it is not enough: it holds for "²", which int() refuses, and
    for 5,000 digits, more than int() reads."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(most)):
        return None
    number = int(text)
    return number if number <= most else None
