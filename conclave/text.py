"""Text people read back (halt reasons, keeper ids): what prints, and how text that does not
print is shown."""

LINE_BREAKS = "\n"


def prints(text: str, *, lines: bool = False) -> bool:
    """Whether every character of `text` prints (`str.isprintable`: no control characters,
    and no invisible formatting ones such as the bidirectional overrides that reorder what a
    page shows); line breaks too when `lines`."""
    return all(char.isprintable() or (lines and char in LINE_BREAKS) for char in text)


def shown(text: str) -> str:
    """`text` with each character that does not print (line breaks aside) written as its
    Python escape (`\\x01`, `\\u202e`): for text no person typed, such as what a failed
    verification quotes of the log."""
    return "".join(
        char if char.isprintable() or char in LINE_BREAKS else ascii(char)[1:-1] for char in text
    )
