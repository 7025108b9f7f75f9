"""The quick start's Celery broker (no Redis): kombu's filesystem transport, with each
message written whole before a worker can see it."""

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    # kombu's own two base classes name the message differently (`message`, `payload`).
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """kombu creates the message's file, then writes it: a worker listing the folder in
        between read it empty and stopped ("Unrecoverable error: JSONDecodeError", taking
        `make run` down with it; kombu issue 1551). The message is written under a name the
        worker skips (its suffix is not `.<queue>.msg`), then renamed into place at once."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        partial = f"{path}.part"
        try:
            with open(partial, "wb") as file:
                file.write(dumps(payload).encode())
            os.replace(partial, path)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
