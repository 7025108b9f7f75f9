"""A fake Telegram Bot API: a real HTTP server on loopback that the product reaches through
TELEGRAM_API_BASE_URL, in this process or in a Celery worker's.

It accepts `sendMessage`, `getMe`, `setWebhook` and `getFile` (with the file's download at
`/file/bot<token>/<path>`: the bytes put in `files`), records every message it accepted (with
its buttons), and can be told to answer the next calls with given statuses (500, or 429 with
`retry_after`), to refuse given chats (400 "chat not found"), or to hold calls before reading
them until released.
"""

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "123456:TEST-fake-bot-token-never-real"


@dataclass
class FakeTelegram:
    url: str = ""
    accepted: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    script: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    bad_chats: set[int] = field(default_factory=set)
    files: dict[str, bytes] = field(default_factory=dict)  # file_id -> content
    webhook: dict[str, Any] = field(default_factory=dict)  # the last setWebhook's payload
    hold: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.hold.set()  # not holding

    def messages_to(self, chat_id: int) -> list[str]:
        with self.lock:
            return [m["text"] for m in self.accepted if m["chat_id"] == chat_id]

    def last_to(self, chat_id: int) -> dict[str, Any]:
        with self.lock:
            return [m for m in self.accepted if m["chat_id"] == chat_id][-1]

    def download(self, path: str) -> bytes | None:
        prefix = f"/file/bot{TOKEN}/photos/"
        if not path.startswith(prefix):
            return None
        return self.files.get(path[len(prefix) :].removesuffix(".jpg"))

    def fail_next(self, *answers: tuple[int, dict[str, Any]]) -> None:
        with self.lock:
            self.script.extend(answers)

    def answer(self, method: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.calls += 1
            if self.script:
                status, extra = self.script.pop(0)
                return status, {
                    "ok": False,
                    "error_code": status,
                    "description": "scripted",
                    **extra,
                }
            if method == "getMe":
                return 200, {
                    "ok": True,
                    "result": {
                        "id": 123456,
                        "is_bot": True,
                        "first_name": "Fake",
                        "username": "fake_bot",
                    },
                }
            if method == "setWebhook":
                self.webhook = payload
                return 200, {"ok": True, "result": True}
            if method == "getFile":
                file_id = str(payload.get("file_id"))
                if file_id not in self.files:
                    return 400, {
                        "ok": False,
                        "error_code": 400,
                        "description": "Bad Request: invalid file_id",
                    }
                return 200, {
                    "ok": True,
                    "result": {
                        "file_id": file_id,
                        "file_size": len(self.files[file_id]),
                        "file_path": f"photos/{file_id}.jpg",
                    },
                }
            if method != "sendMessage":
                return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
            chat_id = int(payload["chat_id"])
            if chat_id in self.bad_chats:
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: chat not found",
                }
            message_id = len(self.accepted) + 1
            self.accepted.append(
                {
                    "chat_id": chat_id,
                    "text": payload["text"],
                    "parse_mode": payload.get("parse_mode"),
                    "reply_markup": payload.get("reply_markup"),
                    "message_id": message_id,
                    "received_at": time.time(),
                }
            )
            return 200, {"ok": True, "result": {"message_id": message_id, "chat": {"id": chat_id}}}


def _handler(fake: FakeTelegram) -> type[BaseHTTPRequestHandler]:  # noqa: C901 - one server
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            content = fake.download(self.path)
            self.send_response(200 if content is not None else 404)
            self.send_header("Content-Length", str(len(content or b"")))
            self.end_headers()
            self.wfile.write(content or b"")

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            held = not fake.hold.is_set()
            if held:
                fake.held.set()
                fake.hold.wait()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            if held and self._client_gone():
                # Held "on the way to Telegram" and its sender died meanwhile: it never
                # arrived. (A message Telegram had already taken stays taken.)
                self.close_connection = True
                return
            if not self.path.startswith(f"/bot{TOKEN}/"):
                status, body = 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            else:
                status, body = fake.answer(self.path.rsplit("/", 1)[1], json.loads(raw or b"{}"))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _client_gone(self) -> bool:
            try:
                return self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
            except BlockingIOError:
                return False
            except OSError:
                return True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    return Handler


@contextmanager
def fake_telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.hold.set()
        server.shutdown()
        server.server_close()
