from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from conclave.startup import (
    DevModeEnvironmentMismatchError,
    HSMNotConfiguredError,
    StartupFloorViolationError,
    check_dev_mode_environment,
    check_hsm_configured,
    check_safety_floors,
    startup_errors,
)
from tests.conftest import clean_env, run_manage


def settings_like(**overrides):
    values = {
        "DEV_MODE": True,
        "ENVIRONMENT": "development",
        "HALT_CLEAR_QUORUM": 2,
        "ALLOW_VERIFICATION_BYPASS": False,
        "PKCS11_MODULE": "",
        "PKCS11_TOKEN_LABEL": "",
        "PKCS11_PIN": "",
    }
    return SimpleNamespace(**{**values, **overrides})


def test_startup__safe_development_settings__no_errors():
    assert startup_errors(settings_like()) == []


def test_dev_mode_in_production__mismatch_error():
    with pytest.raises(DevModeEnvironmentMismatchError, match="DEV_MODE=true"):
        check_dev_mode_environment(settings_like(ENVIRONMENT="production"))


@pytest.mark.parametrize("environment", ["development", "test", "staging"])
def test_dev_mode_outside_production__allowed(environment):
    check_dev_mode_environment(settings_like(ENVIRONMENT=environment))


def test_no_dev_mode_without_pkcs11__hsm_not_configured():
    with pytest.raises(
        HSMNotConfiguredError, match="PKCS11_MODULE, PKCS11_TOKEN_LABEL, PKCS11_PIN"
    ):
        check_hsm_configured(settings_like(DEV_MODE=False))


def test_no_dev_mode_with_missing_module_file__hsm_not_configured(tmp_path):
    settings = settings_like(
        DEV_MODE=False,
        PKCS11_MODULE=str(tmp_path / "absent.so"),
        PKCS11_TOKEN_LABEL="conclave",
        PKCS11_PIN="1234",
    )

    with pytest.raises(HSMNotConfiguredError, match="does not exist"):
        check_hsm_configured(settings)


def test_no_dev_mode_with_token_configured__accepted(tmp_path):
    module = tmp_path / "libtoken.so"
    module.write_bytes(b"")

    check_hsm_configured(
        settings_like(
            DEV_MODE=False, PKCS11_MODULE=str(module), PKCS11_TOKEN_LABEL="t", PKCS11_PIN="1"
        )
    )


def test_quorum_below_two_in_production__floor_violation():
    with pytest.raises(StartupFloorViolationError, match="HALT_CLEAR_QUORUM=1"):
        check_safety_floors(settings_like(ENVIRONMENT="production", HALT_CLEAR_QUORUM=1))


def test_quorum_zero_anywhere__floor_violation():
    with pytest.raises(StartupFloorViolationError, match="HALT_CLEAR_QUORUM=0"):
        check_safety_floors(settings_like(HALT_CLEAR_QUORUM=0))


def test_quorum_one_in_development__allowed():
    check_safety_floors(settings_like(HALT_CLEAR_QUORUM=1))


def test_verification_bypass_in_production__floor_violation():
    with pytest.raises(StartupFloorViolationError, match="ALLOW_VERIFICATION_BYPASS"):
        check_safety_floors(settings_like(ENVIRONMENT="production", ALLOW_VERIFICATION_BYPASS=True))


def test_startup_errors__several_wrong__all_reported():
    errors = startup_errors(settings_like(ENVIRONMENT="production", HALT_CLEAR_QUORUM=1))

    assert [type(error) for error in errors] == [
        DevModeEnvironmentMismatchError,
        StartupFloorViolationError,
    ]


@pytest.mark.parametrize(
    ("overrides", "error_name"),
    [
        ({"DEV_MODE": True, "ENVIRONMENT": "production"}, "DevModeEnvironmentMismatchError"),
        ({"DEV_MODE": False, "PKCS11_MODULE": ""}, "HSMNotConfiguredError"),
        ({"HALT_CLEAR_QUORUM": 0}, "StartupFloorViolationError"),
    ],
)
def test_system_check__bad_settings__critical_naming_the_error(overrides, error_name):
    with override_settings(**overrides), pytest.raises(SystemCheckError, match=error_name):
        call_command("check")


def test_system_check__good_settings__passes(capsys):
    call_command("check")

    assert "no issues" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("env", "error_name"),
    [
        ({"DEV_MODE": "true", "ENVIRONMENT": "production"}, "DevModeEnvironmentMismatchError"),
        ({"DEV_MODE": "false"}, "HSMNotConfiguredError"),
        (
            {
                "ENVIRONMENT": "production",
                "DEV_MODE": "false",
                "HALT_CLEAR_QUORUM": "1",
                "PKCS11_MODULE": "/bin/sh",
                "PKCS11_TOKEN_LABEL": "t",
                "PKCS11_PIN": "1",
            },
            "StartupFloorViolationError",
        ),
    ],
)
def test_manage_check__bad_environment__exits_nonzero_naming_error(tmp_path, env, error_name):
    result = run_manage(
        "check",
        env=clean_env(
            DJANGO_SETTINGS_MODULE="conclave.settings.local",
            CONCLAVE_VAR_DIR=str(tmp_path),
            **env,
        ),
    )

    assert result.returncode == 1
    assert error_name in result.stderr
