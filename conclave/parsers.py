"""The APIs' request parsers."""

import codecs
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import get_encoding  # type: ignore[attr-defined]  # not in the stubs
from rest_framework.utils import json


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {json.dumps(key)} is given twice in one object")
            seen.add(key)
    return result


class JSONParser(parsers.JSONParser):
    """DRF's, with two refusals more, each a 400 like any malformed body:
    - JSON nested deeper than Python's parser goes (`[[[[...]]]]`, a few kilobytes): DRF
      catches the parser's ValueError only, and the RecursionError was a 500;
    - a key given twice in one object (`{"vin": "A", "vin": "B"}`): Python keeps the last,
      other readers (a proxy, a log's parser) the first; which the client meant is not ours
      to guess."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        # DRF's choice of charset, which refuses the codecs that decompress (bz2_codec...).
        encoding = get_encoding(parser_context or {})
        try:
            return json.loads(
                codecs.getreader(encoding)(stream).read(),
                parse_constant=json.strict_constant if self.strict else None,
                object_pairs_hook=_object,
            )
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
