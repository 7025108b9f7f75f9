"""The quick start's broker (no Redis): kombu's filesystem transport as conclave.broker has it."""

import multiprocessing

from kombu import Connection

from conclave.broker import Transport

BODY = "order " * 5_000_000  # tens of milliseconds to serialise and write


def write_one(options: dict[str, object]) -> None:
    with Connection(transport=Transport, transport_options=options) as writing:
        writing.SimpleQueue("celery").put(BODY)


def test_filesystem_broker__message_read_while_being_written__read_whole(tmp_path):
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(tmp_path),
        "store_processed": False,
        "polling_interval": 0.0005,
    }
    with Connection(transport=Transport, transport_options=options) as reading:
        reader = reading.SimpleQueue("celery")
        writer = multiprocessing.get_context("fork").Process(target=write_one, args=(options,))
        writer.start()
        try:
            message = reader.get(timeout=30)  # polling the folder while the writer writes
        finally:
            writer.join(timeout=30)
        message.ack()

    assert message.payload == BODY
