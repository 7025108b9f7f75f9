from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Sign a halt-clearing challenge with a keeper's private key (the file written by "
        "create_keeper); prints the hex signature to paste into the ceremony. Reads nothing "
        "but the key file: it can run on the keeper's own machine."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--key", required=True, type=Path, help="The keeper's key file")
        parser.add_argument("--challenge", required=True, help="The ceremony's challenge")

    def handle(self, *args: Any, key: Path, challenge: str, **options: Any) -> None:
        try:
            private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise CommandError(f"cannot read a private key from {key}: {exc}") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise CommandError(f"{key} is not an Ed25519 key")
        if not challenge.strip():
            raise CommandError("--challenge is empty")
        self.stdout.write(private.sign(challenge.encode()).hex())
