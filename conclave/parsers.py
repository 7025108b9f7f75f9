"""The APIs' request parsers."""

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's, with JSON nested deeper than Python's parser goes (`[[[[...]]]]`, a few
    kilobytes) a 400 like any malformed body: DRF catches the parser's ValueError only, and
    the RecursionError was a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
