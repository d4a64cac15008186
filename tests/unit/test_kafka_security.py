"""Kafka security settings: every combination a cluster needs, refused when it cannot work, no secret shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.errors import ConfigError
from streams.settings import Settings
from streams.settings.security import KafkaSecurity


def sasl_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    secret = tmp_path / "password"
    secret.write_text("s3cret-value\n")
    return {"HCS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "HCS_KAFKA_SASL_MECHANISM": "scram-sha-256",
            "HCS_KAFKA_SASL_USERNAME": "hcs", "HCS_KAFKA_SASL_PASSWORD_FILE": str(secret), **extra}


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    assert Settings.from_env({}).client_kwargs() == {"bootstrap_servers": "127.0.0.1:9092",
                                                     "security_protocol": "PLAINTEXT"}


def test_sasl_reads_the_password_from_its_file_and_never_shows_it(tmp_path: Path) -> None:
    settings = Settings.from_env(sasl_env(tmp_path))
    kwargs = settings.client_kwargs()
    assert (kwargs["sasl_mechanism"], kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == (
        "SCRAM-SHA-256", "hcs", "s3cret-value")
    assert "s3cret" not in repr(settings) and "s3cret" not in settings.kafka.describe()
    assert "s3cret" not in repr(settings.kafka.faust_credentials())


@pytest.mark.parametrize(("change", "message"), [
    ({"HCS_KAFKA_SECURITY_PROTOCOL": "TLS"}, "HCS_KAFKA_SECURITY_PROTOCOL='TLS' must be one of"),
    ({"HCS_KAFKA_SASL_MECHANISM": "GSSAPI"}, "HCS_KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM-SHA-256"),
    ({"HCS_KAFKA_SASL_USERNAME": ""}, "HCS_KAFKA_SASL_USERNAME must be set with SASL_PLAINTEXT"),
    ({"HCS_KAFKA_SASL_PASSWORD_FILE": ""}, "HCS_KAFKA_SASL_PASSWORD_FILE must name a file"),
    ({"HCS_KAFKA_SASL_PASSWORD_FILE": "/nonexistent/pw"}, "HCS_KAFKA_SASL_PASSWORD_FILE=/nonexistent/pw is not a"),
    ({"HCS_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}, "HCS_KAFKA_SASL_MECHANISM is set, but"),
    ({"HCS_KAFKA_SSL_CAFILE": "/etc/hostname"},
     "HCS_KAFKA_SSL_CAFILE/HCS_KAFKA_SSL_CERTFILE/HCS_KAFKA_SSL_KEYFILE are set, but"),
    ({"HCS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "HCS_KAFKA_SSL_CERTFILE": "/etc/hostname"},
     "HCS_KAFKA_SSL_CERTFILE and HCS_KAFKA_SSL_KEYFILE go together"),
])
def test_a_combination_that_cannot_work_is_refused_naming_the_setting(
        change: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        KafkaSecurity.from_env(sasl_env(tmp_path, **change))
    assert str(caught.value).startswith(message)
    assert "s3cret" not in str(caught.value)


def test_an_empty_password_file_is_refused_when_a_client_is_made(tmp_path: Path) -> None:
    env = sasl_env(tmp_path)
    Path(env["HCS_KAFKA_SASL_PASSWORD_FILE"]).write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        Settings.from_env(env).client_kwargs()


def test_fausts_own_credentials_setting_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"BROKER_CREDENTIALS": "user:hunter2-secret"})
    assert str(caught.value).startswith("BROKER_CREDENTIALS (Faust's own setting) is set")
    assert "hunter2" not in str(caught.value)
