from django import template
from django.utils.translation import get_language

from orders.models import NamedInThreeLanguages

register = template.Library()


@register.filter
def duration(seconds: int | None) -> str:
    """Seconds as h:mm:ss."""
    seconds = int(seconds or 0)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@register.filter
def named(row: NamedInThreeLanguages) -> str:
    """A catalog row's name in the page's language (English where it has none)."""
    return row.name(get_language() or "en")
