"""A small HTTP client for tests against real servers (the standard library's)."""

import json
import urllib.error
import urllib.request
from typing import Any


def call(
    method: str,
    url: str,
    *,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, Any]:
    """(status, parsed JSON body or raw bytes) of one request; HTTP errors are answers too."""
    data = json.dumps(body).encode() if body is not None else b"" if method != "GET" else None
    request = urllib.request.Request(  # noqa: S310 - the tests build these URLs
        url, data=data, method=method, headers=headers or {}
    )
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw
