"""The one module that talks to the Telegram Bot API (at TELEGRAM_API_BASE_URL).

Outcomes are sorted for the outbox: `RetryAfter` (429: wait what Telegram says), `Transient`
(5xx, timeouts, connection errors: back off and retry), `Permanent` (400/401/403/404: a bad
chat, a blocked bot, a wrong token: never retried). The bot token is part of every URL and is
scrubbed from every error message.
"""

import os
from typing import Any

import httpx
from django.conf import settings


class TelegramError(Exception):
    pass


class RetryAfter(TelegramError):
    def __init__(self, seconds: float, description: str) -> None:
        self.seconds = seconds
        super().__init__(description)


class Transient(TelegramError):
    pass


class Permanent(TelegramError):
    pass


PERMANENT_CODES = frozenset({400, 401, 403, 404})
# The longest wait a 429's `retry_after` is taken at (a second when it gives none it can use).
MAX_RETRY_AFTER = 3600
BIGGEST = 2**63 - 1  # what a message id column holds
_client: tuple[int, httpx.Client] | None = None


def _http() -> httpx.Client:
    """One client per process: made after a fork (Celery prefork, gunicorn), never shared."""
    global _client
    if _client is None or _client[0] != os.getpid():
        timeout = settings.TELEGRAM_TIMEOUT_SECONDS
        _client = (
            os.getpid(),
            httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0))),
        )
    return _client[1]


def _scrub(text: str) -> str:
    token = settings.TELEGRAM_BOT_TOKEN
    return text.replace(token, "<bot-token>") if token else text


def call(method: str, payload: dict[str, Any]) -> Any:
    """Calls `method` with `payload`; returns Telegram's `result` or raises a TelegramError."""
    url = f"{settings.TELEGRAM_API_BASE_URL}/bot{settings.TELEGRAM_BOT_TOKEN}/{method}"
    try:
        response = _http().post(url, json=payload)
    except httpx.TimeoutException as exc:
        raise Transient(f"timed out: {_scrub(str(exc)) or type(exc).__name__}") from None
    except httpx.TransportError as exc:
        raise Transient(f"unreachable: {_scrub(str(exc)) or type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code == 200 and body.get("ok"):
        return body.get("result")
    code = _number(body.get("error_code")) or response.status_code
    description = _scrub(str(body.get("description") or response.reason_phrase))[:300]
    if code == 429:
        parameters = body.get("parameters")
        retry_after = _number(parameters.get("retry_after")) if isinstance(parameters, dict) else 0
        raise RetryAfter(min(max(retry_after, 1), MAX_RETRY_AFTER), f"429 {description}")
    if code in PERMANENT_CODES:
        raise Permanent(f"{code} {description}")
    raise Transient(f"{code} {description}")


def _number(value: Any) -> int:
    """A whole number Telegram's answer gives (an error code, a wait in seconds), or 0 where
    it gives something else: its errors are read, never raised over."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return 0
    return int(min(max(value, -BIGGEST), BIGGEST))


def send_message(chat_id: int, text: str, reply_markup: dict[str, Any] | None = None) -> int | None:
    """Sends `text` (HTML parse mode, with the bot's buttons if any) to `chat_id`; returns
    Telegram's message id (None if its "ok" answer lacks one: the message is out all the
    same, and sending it again would send it twice)."""
    payload: dict[str, Any] = {
        "chat_id": chat_id,
        "text": text,
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    }
    if reply_markup:
        payload["reply_markup"] = reply_markup
    result = call("sendMessage", payload)
    message_id = result.get("message_id") if isinstance(result, dict) else None
    return _number(message_id) or None


def download_file(file_id: str, *, max_bytes: int) -> bytes:
    """The bytes of a file a user sent the bot (`getFile`, then the file URL), refusing more
    than `max_bytes` before and while reading."""
    result = call("getFile", {"file_id": file_id})
    if not isinstance(result, dict) or not result.get("file_path"):
        raise Permanent("getFile gave no file_path")
    if _number(result.get("file_size")) > max_bytes:
        raise Permanent(f"the file is larger than {max_bytes} bytes")
    url = f"{settings.TELEGRAM_API_BASE_URL}/file/bot{settings.TELEGRAM_BOT_TOKEN}/{result['file_path']}"
    try:
        with _http().stream("GET", url) as response:
            if response.status_code != 200:
                error = Permanent if response.status_code in PERMANENT_CODES else Transient
                raise error(f"file download: {response.status_code}")
            content = bytearray()
            for chunk in response.iter_bytes():
                content += chunk
                if len(content) > max_bytes:
                    raise Permanent(f"the file is larger than {max_bytes} bytes")
    except httpx.TimeoutException:
        raise Transient("file download timed out") from None
    except httpx.TransportError as exc:
        raise Transient(f"file download failed: {_scrub(str(exc)) or type(exc).__name__}") from None
    return bytes(content)


def get_me() -> dict[str, Any]:
    result: dict[str, Any] = call("getMe", {})
    return result


def set_webhook(url: str, secret_token: str) -> bool:
    payload: dict[str, Any] = {"url": url, "allowed_updates": ["message", "callback_query"]}
    if secret_token:
        payload["secret_token"] = secret_token
    return bool(call("setWebhook", payload))
