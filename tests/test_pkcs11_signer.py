"""The production signer against a real PKCS#11 token: SoftHSM2 (Debian package softhsm2)."""

import os
import subprocess

import pkcs11
import pytest
from django.test import override_settings
from pkcs11 import Attribute, ObjectClass

from conclave.startup import check_hsm_configured
from events.services import event_append, key_rotate, keys_bootstrap
from events.signing import Pkcs11Signer, SignerUnavailable, get_signer
from events.verification import verify_chain
from tests import independent_verifier

pytestmark = pytest.mark.django_db

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
LABEL, PIN, SO_PIN = "conclave-test", "1234", "56781234"


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory):
    """A token in a folder of the suite's own; SoftHSM reads SOFTHSM2_CONF when loaded, and
    the library is loaded once per process, so one token serves the whole session."""
    folder = tmp_path_factory.mktemp("softhsm")
    (folder / "tokens").mkdir()
    config = folder / "softhsm2.conf"
    config.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(config)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", LABEL, "--so-pin", SO_PIN,
         "--pin", PIN],
        check=True, capture_output=True,
    )  # fmt: skip
    return LABEL


@pytest.fixture
def hsm_settings(softhsm_token):
    with override_settings(
        DEV_MODE=False, HSM_MODE="PRODUCTION", PKCS11_MODULE=MODULE,
        PKCS11_TOKEN_LABEL=softhsm_token, PKCS11_PIN=PIN,
    ):  # fmt: skip
        get_signer.cache_clear()
        yield
    get_signer.cache_clear()


def test_pkcs11_signer__signs_in_token_and_verifies_outside(hsm_settings):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    signer = get_signer()
    public = signer.create_key("agent-hsm-roundtrip")
    signature = signer.sign("agent-hsm-roundtrip", b"\x01" * 32)

    assert isinstance(signer, Pkcs11Signer) and signer.mode == "PRODUCTION"
    assert len(public) == 32 and len(signature) == 64
    Ed25519PublicKey.from_public_bytes(public).verify(signature, b"\x01" * 32)


def test_pkcs11_signer__private_key_not_extractable(hsm_settings):
    signer = get_signer()
    signer.create_key("agent-hsm-sealed")
    # Another session of this process, logged in as the signer is: it can find the key but
    # can never read its value.
    with pkcs11.lib(MODULE).get_token(token_label=LABEL).open() as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="agent-hsm-sealed")

        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.SENSITIVE] is True
        with pytest.raises(pkcs11.AttributeSensitive):
            private[Attribute.VALUE]


def test_pkcs11_signer__events_signed_in_production_mode_verify(hsm_settings, api_client):
    keys_bootstrap()
    for n in range(3):
        event_append(event_type="order.created", payload={"n": n})
    key_rotate(key_id=get_agent_key_id())
    event_append(event_type="order.created", payload={"after": "rotation"})

    events = api_client.get("/v1/observer/events").json()["events"]
    keys = api_client.get("/v1/observer/keys").json()["keys"]
    assert {event["signing_mode"] for event in events} == {"PRODUCTION"}
    assert independent_verifier.verify(events, keys) == []
    assert verify_chain().ok


def test_pkcs11_signer__unknown_key__signer_unavailable(hsm_settings):
    with pytest.raises(SignerUnavailable, match="no single private key"):
        get_signer().sign("agent-never-created", b"\x00" * 32)


def test_pkcs11_signer__wrong_pin__signer_unavailable(softhsm_token):
    signer = Pkcs11Signer(MODULE, softhsm_token, "0000")

    with pytest.raises(SignerUnavailable, match="cannot open PKCS#11 token"):
        signer.sign("agent-x", b"\x00" * 32)


def test_startup_check__softhsm_module__accepted(hsm_settings):
    from django.conf import settings

    check_hsm_configured(settings)


def get_agent_key_id() -> str:
    from events.models import AgentKey

    return AgentKey.objects.get(kind="agent", active_until__isnull=True).key_id
