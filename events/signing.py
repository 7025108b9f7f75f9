"""The one module that holds private keys. Two backends behind one interface (SPEC 3.3):

- `SoftwareSigner` (DEV_MODE=true, signing_mode DEVELOPMENT): Ed25519 keys as PKCS#8 files in
  SIGNING_KEY_DIR (mode 0600), outside the database.
- a PKCS#11 signer (DEV_MODE=false, signing_mode PRODUCTION), where keys never leave the
  token: not available yet; asking for it fails loudly rather than signing in software.
"""

import os
from functools import cache
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

from conclave.exceptions import DomainError


class SignerUnavailable(DomainError):
    status_code = 503
    error = "signer_unavailable"
    default_detail = "The signing backend is not available."


class Signer(Protocol):
    mode: str

    def create_key(self, key_id: str) -> bytes:
        """Generates a key pair under `key_id` and returns the 32-byte public key."""

    def sign(self, key_id: str, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message` by the private key `key_id`."""


class SoftwareSigner:
    mode = "DEVELOPMENT"

    def __init__(self, key_dir: Path) -> None:
        self.key_dir = key_dir
        self._keys: dict[str, Ed25519PrivateKey] = {}

    def _path(self, key_id: str) -> Path:
        if not key_id.replace("-", "").replace("_", "").isalnum():
            raise SignerUnavailable(f"invalid key id {key_id!r}")
        return self.key_dir / f"{key_id}.pem"

    def create_key(self, key_id: str) -> bytes:
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._path(key_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
        self._keys[key_id] = private
        return private.public_key().public_bytes_raw()

    def _private(self, key_id: str) -> Ed25519PrivateKey:
        if key_id not in self._keys:
            try:
                pem = self._path(key_id).read_bytes()
            except FileNotFoundError as exc:
                raise SignerUnavailable(f"no private key for {key_id} in {self.key_dir}") from exc
            private = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise SignerUnavailable(f"{key_id} is not an Ed25519 key")
            self._keys[key_id] = private
        return self._keys[key_id]

    def sign(self, key_id: str, message: bytes) -> bytes:
        return self._private(key_id).sign(message)


@cache
def get_signer() -> Signer:
    if settings.DEV_MODE:
        return SoftwareSigner(Path(settings.SIGNING_KEY_DIR))
    raise SignerUnavailable(
        "DEV_MODE=false needs the PKCS#11 signer, which this build does not provide yet"
    )
