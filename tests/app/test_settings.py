"""Configuration from TOML, environment and systemd credentials, and its error messages."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from treadmilld.app.program_settings import machine_time_zone
from treadmilld.app.settings import (
    ConfigError,
    ShutdownMode,
    load_settings,
    redacted,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_configs_are_valid() -> None:
    settings, _ = load_settings(EXAMPLES / "config.toml", environ={})
    assert [t.id for t in settings.treadmills] == ["tm01", "tm02"]
    assert settings.treadmills[0].address == "AA:BB:CC:DD:EE:01"
    assert settings.treadmills[1].target().name_contains == "KS-"
    simulated, _ = load_settings(EXAMPLES / "simulated.toml", environ={})
    assert simulated.simulated_only()


def test_file_values_and_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
shutdown_mode = "pause"
[[treadmills]]
id = "tm01"
address = "aa:bb:cc:dd:ee:ff"
quirks = "fitshow"
[mqtt]
host = "broker.lan"
""",
    )
    settings, used = load_settings(path, environ={})
    assert used == path
    assert settings.shutdown_mode is ShutdownMode.PAUSE
    assert settings.mqtt.host == "broker.lan"
    assert settings.mqtt.port == 1883
    treadmill = settings.treadmills[0]
    assert treadmill.address == "AA:BB:CC:DD:EE:FF"
    assert treadmill.display_name == "tm01"
    quirks = treadmill.link_settings(settings.link).quirks_for("anything")
    assert quirks.request_control_first is False


def test_environment_overrides_the_file_field_by_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[mqtt]\nhost = "broker.lan"\nport = 1884\n')
    monkeypatch.setenv("TREADMILLD_MQTT__HOST", "other.lan")
    monkeypatch.setenv("TREADMILLD_LOGGING__LEVEL", "debug")
    settings, _ = load_settings(path)
    assert settings.mqtt.host == "other.lan"
    assert settings.mqtt.port == 1884  # kept from the file
    assert settings.logging.level == "debug"


def test_password_from_systemd_credentials_directory_and_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "mqtt_password").write_text("s3cret-pass\n", encoding="utf-8")
    path = write(tmp_path, '[mqtt]\nusername = "treadmilld"\n')
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    settings, _ = load_settings(path)
    assert settings.mqtt.resolved_password() == "s3cret-pass"
    shown = redacted(settings)
    assert shown["mqtt"]["password"] == "**********"
    assert "s3cret-pass" not in repr(shown)


def test_missing_explicit_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_absent_default_file_means_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TREADMILLD_CONFIG", raising=False)
    monkeypatch.setattr("treadmilld.app.settings.DEFAULT_CONFIG_PATH", tmp_path / "absent.toml")
    settings, _ = load_settings(None, environ={})
    assert settings.treadmills == []


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[[treadmills]]\nid = tm01\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert str(path) in message
    assert "line 2" in message


def test_each_problem_names_the_field_and_a_fix(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
body_weight_kg = 5
colour = "red"
[[treadmills]]
id = "Treadmill/1"
address = "AA:BB:CC:DD:EE:01"
[[treadmills]]
id = "tm02"
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert str(path) in message
    assert "body_weight_kg: " in message
    assert "colour: unknown setting; remove it" in message
    assert "treadmills[0].id: 'Treadmill/1' is not a valid treadmill id" in message
    assert "treadmills[1]: treadmill 'tm02' needs exactly one of address" in message


def test_duplicate_ids_and_addresses_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[treadmills]]
id = "tm01"
address = "AA:BB:CC:DD:EE:01"
[[treadmills]]
id = "tm01"
address = "aa:bb:cc:dd:ee:01"
""",
    )
    with pytest.raises(ConfigError, match="unique") as caught:
        load_settings(path, environ={})
    assert "AA:BB:CC:DD:EE:01" in str(caught.value)


def test_speedup_refused_with_a_real_treadmill(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'clock_speedup = 10\n[[treadmills]]\nid = "tm01"\naddress = "AA:BB:CC:DD:EE:01"\n',
    )
    with pytest.raises(ConfigError, match="a real belt does not speed up"):
        load_settings(path, environ={})


def test_unknown_quirk_set_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, '[[treadmills]]\nid = "tm01"\nname_match = "X"\nquirks = "bogus"\n')
    with pytest.raises(ConfigError, match="kingsmith"):
        load_settings(path, environ={})


def test_bad_environment_value_is_reported_with_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "")
    monkeypatch.setenv("TREADMILLD_MQTT__PORT", "not-a-port")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "mqtt.port" in str(caught.value)
    assert "TREADMILLD_MQTT__PORT" in str(caught.value)


def test_every_setting_is_documented() -> None:
    from pydantic import BaseModel

    from treadmilld.app.settings import (
        LoggingSettings,
        ProgramSettings,
        Settings,
        TreadmillSettings,
    )
    from treadmilld.ble.config import BackoffSettings, LinkSettings
    from treadmilld.ble.quirks import Quirks
    from treadmilld.engine.limits import LimitSet
    from treadmilld.mqtt.config import MqttSettings, MqttTlsSettings

    text = (EXAMPLES.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    models: list[type[BaseModel]] = [
        Settings,
        TreadmillSettings,
        LoggingSettings,
        ProgramSettings,
        MqttSettings,
        MqttTlsSettings,
        LinkSettings,
        BackoffSettings,
        Quirks,
        LimitSet,
    ]
    missing = [
        f"{model.__name__}.{name}"
        for model in models
        for name in model.model_fields
        if f"`{name}`" not in text
    ]
    assert missing == []


def test_limits_from_file_and_environment_keep_the_clinical_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "[limits.general]\nmax_forward_speed_kmh = 6.0\n")
    monkeypatch.setenv("TREADMILLD_LIMITS__GENERAL__MAX_BACKWARD_SPEED_KMH", "4")
    settings, _ = load_settings(path)
    assert settings.limits.general.max_forward_speed_kmh == 6.0
    assert settings.limits.general.max_backward_speed_kmh == 4.0
    assert settings.limits.clinical.max_backward_speed_kmh == 2.5
    assert settings.limits.clinical.confirm_turns is True


def test_limits_beyond_the_hard_caps_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "[limits.general]\nmax_backward_speed_kmh = 9.0\n")
    with pytest.raises(ConfigError, match=r"limits\.general\.max_backward_speed_kmh"):
        load_settings(path, environ={})


def test_a_misspelt_key_gets_did_you_mean_wherever_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        """
body_wieght_kg = 80
[[treadmills]]
id = "tm01"
adress = "AA:BB:CC:DD:EE:01"
quirks = { nmae = "mine", start_gate = true }
[mqtt]
hots = "broker.lan"
[mqtt.tls]
ca_fil = "ca.crt"
[limits.general]
max_backward_sped_kmh = 4
[link.backoff]
jiter = 0.1
""",
    )
    monkeypatch.setenv("TREADMILLD_LOGGING__LEVLE", "debug")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    for where, meant in (
        ("body_wieght_kg", "body_weight_kg"),
        ("treadmills[0].adress", "address"),
        ("treadmills[0].quirks.Quirks.nmae", "name"),
        ("mqtt.hots", "host"),
        ("mqtt.tls.ca_fil", "ca_file"),
        ("limits.general.max_backward_sped_kmh", "max_backward_speed_kmh"),
        ("link.backoff.jiter", "jitter"),
        ("logging.levle", "level"),  # from the environment variable
    ):
        assert f"  - {where}: unknown setting; did you mean {meant!r}?" in message, where


def test_a_key_like_nothing_is_told_to_be_removed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, 'colour = "red"\n'), environ={})
    assert "colour: unknown setting; remove it or fix its spelling" in str(caught.value)
    assert "did you mean" not in str(caught.value)


def test_bridge_is_not_a_treadmill_id(tmp_path: Path) -> None:
    path = write(tmp_path, '[[treadmills]]\nid = "bridge"\naddress = "AA:BB:CC:DD:EE:01"\n')
    with pytest.raises(ConfigError, match=r"treadmills\[0\]\.id: 'bridge' cannot be a treadmill"):
        load_settings(path, environ={})


def test_a_heart_rate_strap_is_assigned_to_a_treadmill(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[treadmills]]
id = "tm01"
address = "AA:BB:CC:DD:EE:01"
heart_rate_strap = { address = "aa:bb:cc:dd:ee:99" }
[[treadmills]]
id = "tm02"
name_match = "KS-"
heart_rate_strap = { name_match = "Polar" }
[strap_link]
liveness_timeout_s = 8
""",
    )
    settings, _ = load_settings(path, environ={})
    first, second = (t.heart_rate_strap for t in settings.treadmills)
    assert first is not None
    assert first.target().address == "AA:BB:CC:DD:EE:99"
    assert second is not None
    assert second.target().name_contains == "Polar"
    assert settings.strap_link.liveness_timeout_s == 8


@pytest.mark.parametrize(
    ("strap", "problem"),
    [
        ("{}", "exactly one of address, name_match or simulated"),
        ('{ address = "AA:BB:CC:DD:EE:99", name_match = "H10" }', "found: address, name_match"),
        ('{ address = "AA:BB:CC:DD:EE:01" }', "by no treadmill"),
        ("{ simulated = {} }", "a simulated wearer can only walk on a simulated deck"),
        ('{ address = "strap" }', "not a Bluetooth address"),
    ],
)
def test_a_heart_rate_strap_that_cannot_be_used_is_refused(
    tmp_path: Path, strap: str, problem: str
) -> None:
    path = write(
        tmp_path,
        f'[[treadmills]]\nid = "tm01"\naddress = "AA:BB:CC:DD:EE:01"\nheart_rate_strap = {strap}\n',
    )
    with pytest.raises(ConfigError, match=problem):
        load_settings(path, environ={})


def test_program_weeks_are_counted_in_the_configured_zone(tmp_path: Path) -> None:
    path = write(tmp_path, '[programs]\ntime_zone = "Europe/Berlin"\n')
    settings, _ = load_settings(path, environ={})
    assert settings.programs.zone() == ZoneInfo("Europe/Berlin")


def test_a_time_zone_that_is_no_zone_names_the_field_and_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, '[programs]\ntime_zone = "Europe/Berln"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert "programs.time_zone: 'Europe/Berln' is not an IANA time zone name" in message
    assert 'time_zone = "Europe/Berlin"' in message
    assert "timedatectl list-timezones" in message


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        (":America/New_York", "America/New_York"),
        ("/usr/share/zoneinfo/Asia/Tokyo", "Asia/Tokyo"),
    ],
)
def test_the_machines_zone_comes_from_tz_first(tmp_path: Path, tz: str, expected: str) -> None:
    localtime = tmp_path / "localtime"
    localtime.symlink_to("/usr/share/zoneinfo/Europe/Lisbon")
    assert machine_time_zone({"TZ": tz}, localtime) == expected


def test_the_machines_zone_is_where_etc_localtime_links_else_utc(tmp_path: Path) -> None:
    localtime = tmp_path / "localtime"
    localtime.symlink_to("/usr/share/zoneinfo/Europe/Lisbon")
    # A POSIX rule in TZ names no zone whose rules are known: /etc/localtime decides.
    assert machine_time_zone({"TZ": "CET-1CEST"}, localtime) == "Europe/Lisbon"
    assert machine_time_zone({}, localtime) == "Europe/Lisbon"
    copied = tmp_path / "copied"
    copied.write_bytes(b"TZif")  # a copy of a zone file, not a link: its name is lost
    assert machine_time_zone({}, copied) == "UTC"
    assert machine_time_zone({}, tmp_path / "absent") == "UTC"
