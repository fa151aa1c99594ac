"""MQTT settings: URL helper, credentials, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from treadmilld.mqtt import config as mqtt_config
from treadmilld.mqtt.bridge import BridgeConfigError, MqttBridge
from treadmilld.mqtt.config import MqttCredentialError, MqttSettings, MqttTlsSettings

from .doubles import RecordingTreadmill, StaticCatalog


def test_from_url_reads_host_port_and_login() -> None:
    settings = MqttSettings.from_url("mqtt://desk:s%40cret@broker.local:1884", base_topic="gym")
    assert (settings.host, settings.port, settings.base_topic) == ("broker.local", 1884, "gym")
    assert settings.username == "desk"
    assert settings.resolved_password() == "s@cret"
    assert "s@cret" not in repr(settings)
    secure = MqttSettings.from_url("mqtts://broker.local")
    assert (secure.port, secure.tls) == (8883, MqttTlsSettings())
    with pytest.raises(ValueError, match="not an MQTT URL"):
        MqttSettings.from_url("http://broker.local")


def test_password_file_is_a_systemd_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mqtt-password").write_text("from-credential\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    settings = MqttSettings(username="treadmilld", password_file=Path("mqtt-password"))
    assert settings.resolved_password() == "from-credential"
    missing = MqttSettings(username="treadmilld", password_file=Path("absent"))
    with pytest.raises(MqttCredentialError, match="LoadCredential"):
        missing.resolved_password()


@pytest.mark.parametrize(
    "fields",
    [
        {"base_topic": "gym/#"},
        {"base_topic": "/leading"},
        {"port": 0},
        {"password": "x"},  # no username
        {"username": "u", "password": "x", "password_file": "f"},
        {"tls": {"cert_file": "client.crt"}},  # key missing
        {"unknown_option": 1},
    ],
)
def test_invalid_settings_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        MqttSettings.model_validate(fields)


def test_missing_tls_file_says_what_to_check(tmp_path: Path) -> None:
    tls = MqttTlsSettings(ca_file=tmp_path / "nope.crt")
    with pytest.raises(MqttCredentialError, match=r"mqtt\.tls"):
        tls.resolved()


@pytest.mark.parametrize("treadmill_id", ["bridge", "tm/01", "tm+", "", "tm 01"])
def test_treadmill_ids_must_be_topic_levels(treadmill_id: str) -> None:
    with pytest.raises(BridgeConfigError, match="slug"):
        MqttBridge(
            MqttSettings(),
            {treadmill_id: RecordingTreadmill(treadmill_id)},
            StaticCatalog(),
            version="1",
        )


def test_instance_and_client_id_default_to_the_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mqtt_config, "host_name", lambda: "Gym-Pi_North.local")
    settings = MqttSettings()
    assert (settings.instance, settings.client_id) == ("gym-pi_north", "treadmilld-gym-pi_north")
    # Another Pi, same (empty) configuration: nothing shared.
    monkeypatch.setattr(mqtt_config, "host_name", lambda: "gym-pi-south")
    other = MqttSettings.model_validate({})
    assert (other.instance, other.client_id) == ("gym-pi-south", "treadmilld-gym-pi-south")


def test_an_explicit_instance_or_client_id_wins() -> None:
    assert MqttSettings(instance="front-desk").client_id == "treadmilld-front-desk"
    pinned = MqttSettings(instance="front-desk", client_id="legacy-id")
    assert (pinned.instance, pinned.client_id) == ("front-desk", "legacy-id")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("raspberrypi", "raspberrypi"),
        ("Pi 4 (Gym)!", "pi-4-gym"),
        ("a" * 40 + ".example.org", "a" * 32),
        ("localhost", ""),
        ("---", ""),
        ("state", ""),  # a leaf of the old bridge layout
    ],
)
def test_host_names_are_sanitised_to_a_topic_level(host: str, expected: str) -> None:
    assert mqtt_config.instance_from_host(host) == expected


def test_a_host_without_a_usable_name_falls_back_to_the_machine_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mqtt_config, "host_name", lambda: "localhost")
    machine_id = tmp_path / "machine-id"
    machine_id.write_text("0123abcd" * 4 + "\n")
    monkeypatch.setattr(mqtt_config, "MACHINE_ID_FILE", machine_id)
    assert MqttSettings().instance == "host-0123abcd"
    monkeypatch.setattr(mqtt_config, "MACHINE_ID_FILE", tmp_path / "absent")
    assert MqttSettings().instance == "treadmilld"


@pytest.mark.parametrize("instance", ["Bad/One", "gym+1", "", "-lead", "x" * 33, "request"])
def test_invalid_instance_names_are_refused(instance: str) -> None:
    with pytest.raises(ValidationError, match="instance"):
        MqttSettings(instance=instance)
