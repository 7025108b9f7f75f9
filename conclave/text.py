"""Text people read back (names, comments, halt reasons, keeper ids): what may be in it, and
how text no person typed is shown."""

import unicodedata

from django.utils.translation import gettext_noop

# What text of several lines keeps besides what prints (browsers send a textarea's line
# breaks as CR LF).
LINE_BREAKS = "\n\r\t"
# The controls that reorder how text shows (embeddings, overrides, isolates): with one, a
# name or reason can be made to read otherwise than it is written.
DIRECTION_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Translated where the workshop's people read it (orders.validators).
REFUSAL = gettext_noop("Control characters and text direction overrides are not allowed.")


def _allowed(char: str, lines: bool) -> bool:
    if char in DIRECTION_CONTROLS:
        return False
    category = unicodedata.category(char)
    if category == "Cc":
        return lines and char in LINE_BREAKS
    if category == "Cs":  # half of a character (JSON's "\ud800"): UTF-8 cannot hold it
        return False
    # The other formatting characters stay: the marks Hebrew text carries (U+200F), the
    # joiner inside emoji (U+200D).
    return True


def prints(text: str, *, lines: bool = False) -> bool:
    """Whether `text` holds no control character (line breaks and tabs aside when `lines`),
    no text direction override and no lone surrogate."""
    return all(_allowed(char, lines) for char in text)


def shown(text: str) -> str:
    """`text` with each character `prints` refuses (line breaks and tabs aside) written as its
    Python escape (`\\x01`, `\\u202e`): for text no person typed, such as what a failed
    verification quotes of the log."""
    return "".join(char if _allowed(char, True) else ascii(char)[1:-1] for char in text)
