from django import template

register = template.Library()


@register.filter
def duration(seconds: int | None) -> str:
    """Seconds as h:mm:ss."""
    seconds = int(seconds or 0)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
