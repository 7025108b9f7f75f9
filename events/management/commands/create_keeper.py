import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from conclave.exceptions import DomainError
from events.services import keeper_key_register


class Command(BaseCommand):
    help = (
        "Create a keeper's Ed25519 key pair: the private key goes to --key-out (mode 0600) "
        "and only the public key is registered."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The keeper's name, e.g. alice")
        parser.add_argument("--key-out", required=True, type=Path, help="File for the private key")

    def handle(self, *args: Any, username: str, key_out: Path, **options: Any) -> None:
        if not username.strip():
            raise CommandError("Give the keeper's name, e.g. alice")
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(key_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise CommandError(f"{key_out} exists; refusing to overwrite a key") from exc
        except OSError as exc:  # no such directory, not allowed, a directory named so...
            raise CommandError(f"cannot write the key to {key_out}: {exc.strerror}") from exc
        try:
            with transaction.atomic():
                key = keeper_key_register(
                    keeper_id=f"KEEPER:{username}",
                    public_key=private.public_key().public_bytes_raw(),
                    actor="manage.py create_keeper",
                )
                with os.fdopen(fd, "wb") as file:
                    file.write(pem)
        except DomainError as error:
            key_out.unlink(missing_ok=True)
            raise CommandError(f"{error.error}: {error.detail}") from error
        self.stdout.write(f"keeper KEEPER:{username} registered as {key.key_id}; key in {key_out}")
