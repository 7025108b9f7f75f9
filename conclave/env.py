"""The one reader of the process environment.

Configuration comes only from environment variables (see `.env.example`). This wraps
django-environ so that a malformed value names its variable instead of surfacing as a
bare ``ValueError`` deep inside settings, and so that booleans are strict: ``DEV_MODE=flase``
is an error, not a silent ``False``.
"""

from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

TRUE_STRINGS = frozenset({"true", "1", "yes", "on"})
FALSE_STRINGS = frozenset({"false", "0", "no", "off"})


class Env(environ.Env):
    @classmethod
    def parse_value(cls, value: Any, cast: Any) -> Any:
        if cast is bool and isinstance(value, str):
            normalised = value.strip().lower()
            if normalised in TRUE_STRINGS:
                return True
            if normalised in FALSE_STRINGS:
                return False
            raise ValueError("expected one of true/false, 1/0, yes/no, on/off")
        return super().parse_value(value, cast)

    def get_value(self, var: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().get_value(var, *args, **kwargs)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{var} has an invalid value: {exc}") from exc


env = Env()
# A value written as `\$...` is a literal dollar sign, not a reference to another variable.
env.escape_proxy = True


def choice(var: str, choices: tuple[str, ...], *, default: str) -> str:
    value = env.str(var, default=default)
    if value not in choices:
        raise ImproperlyConfigured(f"{var} must be one of {', '.join(choices)}; got {value!r}")
    return value
