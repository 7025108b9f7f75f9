"""The one module that holds private keys. Two backends behind one interface (SPEC 3.3):

- `SoftwareSigner` (DEV_MODE=true, signing_mode DEVELOPMENT): Ed25519 keys as PKCS#8 files in
  SIGNING_KEY_DIR (mode 0600), outside the database; libsodium signs.
- `Pkcs11Signer` (DEV_MODE=false, signing_mode PRODUCTION): keys are generated inside the
  PKCS#11 token (PKCS11_MODULE, PKCS11_TOKEN_LABEL, PKCS11_PIN) as sensitive, non-extractable
  objects labelled with their key id, and every signature is made by the token (CKM_EDDSA).
"""

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from nacl.signing import SigningKey

from conclave.exceptions import DomainError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# cryptography's key files and python-pkcs11 are imported where a backend first needs them:
# together they are a tenth of a second of every process's start (web workers, Celery,
# verify_chain), most of which never read a key file or open a token.


class SignerUnavailable(DomainError):
    status_code = 503
    error = "signer_unavailable"
    default_detail = "The signing backend is not available."


class Signer(Protocol):
    mode: str
    thread_safe: bool

    def create_key(self, key_id: str) -> bytes:
        """Generates a key pair under `key_id` and returns the 32-byte public key."""

    def sign(self, key_id: str, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message` by the private key `key_id`."""


class SoftwareSigner:
    mode = "DEVELOPMENT"
    # libsodium signs without holding the GIL: threads sign on every core.
    thread_safe = True

    def __init__(self, key_dir: Path) -> None:
        self.key_dir = key_dir
        self._keys: dict[str, SigningKey] = {}

    def _path(self, key_id: str) -> Path:
        if not key_id.replace("-", "").replace("_", "").isalnum():
            raise SignerUnavailable(f"invalid key id {key_id!r}")
        return self.key_dir / f"{key_id}.pem"

    def create_key(self, key_id: str) -> bytes:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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
        self._keys[key_id] = _signing_key(private)
        return private.public_key().public_bytes_raw()

    def _private(self, key_id: str) -> SigningKey:
        if key_id not in self._keys:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

            try:
                pem = self._path(key_id).read_bytes()
            except FileNotFoundError as exc:
                raise SignerUnavailable(f"no private key for {key_id} in {self.key_dir}") from exc
            private = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise SignerUnavailable(f"{key_id} is not an Ed25519 key")
            self._keys[key_id] = _signing_key(private)
        return self._keys[key_id]

    def sign(self, key_id: str, message: bytes) -> bytes:
        return self._private(key_id).sign(message).signature


def _signing_key(private: "Ed25519PrivateKey") -> SigningKey:
    """The same key for libsodium: its 32-byte seed."""
    from cryptography.hazmat.primitives import serialization

    return SigningKey(
        private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    )


ED25519_OID = "1.3.101.112"


# PKCS#11 login state belongs to the process: one logged-in session per token and process,
# opened on first use in that process (PKCS#11 state must not cross a fork).
_SESSIONS: dict[tuple[int, str, str, str], Any] = {}


class Pkcs11Signer:
    """Signs inside the token; key handles are cached by key id."""

    mode = "PRODUCTION"
    # One logged-in session per process; PKCS#11 sessions are not shared across threads.
    thread_safe = False

    def __init__(self, module: str, token_label: str, pin: str) -> None:
        self.module, self.token_label, self.pin = module, token_label, pin
        self._keys: dict[str, Any] = {}
        self._pid: int | None = None

    def _open(self) -> Any:
        import pkcs11

        slot = (os.getpid(), self.module, self.token_label, self.pin)
        if slot not in _SESSIONS:
            try:
                token = pkcs11.lib(self.module).get_token(token_label=self.token_label)
                _SESSIONS[slot] = token.open(user_pin=self.pin, rw=True)
            except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
                raise SignerUnavailable(
                    f"cannot open PKCS#11 token {self.token_label!r}: {type(exc).__name__}"
                ) from exc
        if self._pid != os.getpid():
            self._pid, self._keys = os.getpid(), {}
        return _SESSIONS[slot]

    def create_key(self, key_id: str) -> bytes:
        from pkcs11 import Attribute, KeyType, Mechanism
        from pkcs11.util.ec import encode_named_curve_parameters

        session = self._open()
        parameters = session.create_domain_parameters(
            KeyType.EC_EDWARDS,
            {Attribute.EC_PARAMS: encode_named_curve_parameters(ED25519_OID)},
            local=True,
        )
        public, private = parameters.generate_keypair(
            store=True,
            mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
            label=key_id,
            id=key_id.encode(),
            private_template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True},
        )
        self._keys[key_id] = private
        point = bytes(public[Attribute.EC_POINT])
        # CKA_EC_POINT is DER: an OCTET STRING (04 20) around the 32 raw bytes.
        return point[2:] if len(point) == 34 and point[:2] == b"\x04\x20" else point

    def sign(self, key_id: str, message: bytes) -> bytes:
        import pkcs11
        from pkcs11 import Mechanism, ObjectClass

        session = self._open()
        if key_id not in self._keys:
            try:
                self._keys[key_id] = session.get_key(
                    object_class=ObjectClass.PRIVATE_KEY, label=key_id
                )
            except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned) as exc:
                raise SignerUnavailable(f"no single private key {key_id} in the token") from exc
        return bytes(self._keys[key_id].sign(message, mechanism=Mechanism.EDDSA))


@cache
def get_signer() -> Signer:
    if settings.DEV_MODE:
        return SoftwareSigner(Path(settings.SIGNING_KEY_DIR))
    return Pkcs11Signer(settings.PKCS11_MODULE, settings.PKCS11_TOKEN_LABEL, settings.PKCS11_PIN)
