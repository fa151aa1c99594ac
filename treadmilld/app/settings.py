"""The daemon's configuration: a TOML file, `TREADMILLD_*` variables and systemd credentials.

Precedence, highest first:
1. environment variables `TREADMILLD_<FIELD>`, nested with `__`
   (`TREADMILLD_MQTT__HOST=broker.lan`, `TREADMILLD_LOGGING__LEVEL=debug`);
2. systemd credentials: files in `$CREDENTIALS_DIRECTORY` named after a secret setting
   (`mqtt_password` or `mqtt__password`), so a secret never sits in the config file;
3. the TOML file (`/etc/treadmilld/config.toml`, `--config`, or `$TREADMILLD_CONFIG`);
4. the defaults below.

Each layer owns its model (`MqttSettings`, `SafetyLimits`, `LinkSettings`); this module composes
them. Any mistake becomes a `ConfigError` naming the file, the field and what to do.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from treadmilld.app.config_problems import describe_problems
from treadmilld.app.log_setup import LogFormat, LogLevel
from treadmilld.app.program_settings import ProgramSettings
from treadmilld.app.treadmill_settings import (
    REPLAY_KEY,
    REPLAY_SESSION_KEY,
    RESERVED_TREADMILL_ID,
    StrapSettings,
    TreadmillSettings,
)
from treadmilld.ble.config import LinkSettings, StrapLinkSettings
from treadmilld.engine.api import MAX_BODY_WEIGHT_KG, MIN_BODY_WEIGHT_KG
from treadmilld.engine.limits import SafetyLimits
from treadmilld.mqtt.config import MqttSettings
from treadmilld.store.config import DatabaseSettings

# A treadmill's own table lives in treadmill_settings, `[programs]` in program_settings; their
# names stay importable from here.
__all__ = [
    "CONFIG_PATH_ENV",
    "CREDENTIALS_DIRECTORY_ENV",
    "CREDENTIAL_SETTINGS",
    "DEFAULT_CONFIG_PATH",
    "ENV_PREFIX",
    "REPLAY_KEY",
    "REPLAY_SESSION_KEY",
    "RESERVED_TREADMILL_ID",
    "ConfigError",
    "LoggingSettings",
    "ProgramSettings",
    "Settings",
    "ShutdownMode",
    "StrapSettings",
    "TreadmillSettings",
    "config_path_from",
    "describe_validation_error",
    "load_settings",
    "read_config_file",
    "read_credentials",
    "redacted",
]

DEFAULT_CONFIG_PATH = Path("/etc/treadmilld/config.toml")
CONFIG_PATH_ENV = "TREADMILLD_CONFIG"
ENV_PREFIX = "TREADMILLD_"
CREDENTIALS_DIRECTORY_ENV = "CREDENTIALS_DIRECTORY"

# Secrets that may come from systemd credentials: credential file name -> settings path.
CREDENTIAL_SETTINGS: Mapping[str, tuple[str, ...]] = {
    "mqtt_password": ("mqtt", "password"),
    "mqtt__password": ("mqtt", "password"),
}


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file, the field and a fix."""


class ShutdownMode(StrEnum):
    STOP = "stop"  # FTMS Stop (1): belt stops, the treadmill ends its session
    PAUSE = "pause"  # FTMS Pause (2): belt stops, the treadmill keeps its session

    @property
    def ftms_literal(self) -> Literal["stop", "pause"]:
        return "pause" if self is ShutdownMode.PAUSE else "stop"


class LoggingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: LogFormat = Field(
        default=LogFormat.AUTO,
        description="auto: console on a terminal, logfmt under journald or in a pipe",
    )
    level: LogLevel = LogLevel.INFO
    library_level: LogLevel = Field(
        default=LogLevel.WARNING,
        description="level for bleak, aiomqtt, bumble and amqtt (they are chatty at info)",
    )


class Settings(BaseSettings):
    """Everything `treadmilld run` needs."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        nested_model_default_partial_update=True,
    )

    treadmills: list[TreadmillSettings] = Field(default_factory=list)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    limits: SafetyLimits = Field(
        default_factory=SafetyLimits,
        description="safety limits: [limits.general] always, [limits.clinical] in clinical mode",
    )
    link: LinkSettings = Field(
        default_factory=LinkSettings,
        description="Bluetooth timeouts, backoff and liveness, shared by every treadmill",
    )
    strap_link: StrapLinkSettings = Field(
        default_factory=StrapLinkSettings,
        description="Bluetooth timeouts, backoff and liveness, shared by every heart-rate strap",
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    programs: ProgramSettings = Field(
        default_factory=ProgramSettings,
        description="programs' weeks: the gym's time zone",
    )
    shutdown_mode: ShutdownMode = Field(
        default=ShutdownMode.STOP,
        description="what happens to a moving belt when the daemon stops: stop or pause",
    )
    body_weight_kg: float = Field(
        default=70.0,
        ge=MIN_BODY_WEIGHT_KG,
        le=MAX_BODY_WEIGHT_KG,
        description="used for calories when a start omits it",
    )
    clock_speedup: float = Field(
        default=1.0,
        ge=1.0,
        le=1000.0,
        description="profile time runs this many times faster; only with simulated treadmills",
    )
    profiles_dir: Path | None = Field(
        default=None, description="extra profile TOML files, next to the built-in ones"
    )
    profiles_poll_interval_s: float = Field(
        default=2.0,
        ge=0.1,
        le=3600.0,
        description="how often profiles_dir is looked at for added, changed or removed files",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        problems: list[str] = []
        ids = [treadmill.id for treadmill in self.treadmills]
        duplicates = sorted({tid for tid in ids if ids.count(tid) > 1})
        if duplicates:
            problems.append(f"treadmill ids must be unique; {duplicates} appear more than once")
        addresses = [t.address for t in self.treadmills if t.address is not None]
        repeated = sorted({a for a in addresses if addresses.count(a) > 1})
        if repeated:
            problems.append(f"each address may be used by one treadmill; {repeated} repeat")
        straps = [t.heart_rate_strap for t in self.treadmills if t.heart_rate_strap is not None]
        strap_addresses = [s.address for s in straps if s.address is not None]
        shared = sorted({a for a in strap_addresses if strap_addresses.count(a) > 1})
        shared += sorted(set(strap_addresses) & set(addresses))
        if shared:
            problems.append(
                f"each strap address may be used once, and by no treadmill; {shared} repeat"
            )
        for treadmill in self.treadmills:
            strap = treadmill.heart_rate_strap
            if strap is not None and strap.simulated is not None and treadmill.simulated is None:
                problems.append(
                    f"treadmill {treadmill.id!r} has a simulated heart_rate_strap but is a real "
                    "treadmill: a simulated wearer can only walk on a simulated deck; give the "
                    "strap's address or name_match instead"
                )
        if self.clock_speedup != 1.0 and any(t.simulated is None for t in self.treadmills):
            problems.append(
                "clock_speedup only works with simulated treadmills (a real belt does not "
                "speed up); set clock_speedup = 1 or remove the real treadmills"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        file_values, credentials = _load_context.get()
        return (
            init_settings,
            env_settings,
            _DictSource(settings_cls, credentials),
            _DictSource(settings_cls, file_values),
        )

    def simulated_only(self) -> bool:
        return bool(self.treadmills) and all(t.simulated is not None for t in self.treadmills)


class _DictSource(PydanticBaseSettingsSource):
    """Values already read (from the TOML file or the credentials directory)."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._values = dict(values)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


_load_context: ContextVar[tuple[Mapping[str, Any], Mapping[str, Any]]] = ContextVar(
    "treadmilld_settings_sources", default=({}, {})
)


def config_path_from(explicit: Path | None, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    if env.get(CONFIG_PATH_ENV):
        return Path(env[CONFIG_PATH_ENV])
    return DEFAULT_CONFIG_PATH


def read_config_file(path: Path, *, required: bool) -> dict[str, Any]:
    """The TOML file as a dict; `{}` when an optional file is absent."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(
                f"{path}: no such file; pass an existing file with --config, or copy "
                f"examples/config.toml to {path}"
            ) from None
        return {}
    except OSError as error:
        raise ConfigError(
            f"{path}: cannot read it ({error.strerror}); check its permissions (the service "
            f"runs as user treadmilld)"
        ) from error
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(
            f"{path}: not valid TOML: {error}; fix the syntax at that line (strings need "
            f'quotes: address = "AA:BB:CC:DD:EE:FF")'
        ) from error


def read_credentials(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Secrets from systemd's credentials directory, as nested settings values."""
    env = os.environ if environ is None else environ
    directory = env.get(CREDENTIALS_DIRECTORY_ENV)
    if not directory:
        return {}
    values: dict[str, Any] = {}
    for credential, setting_path in CREDENTIAL_SETTINGS.items():
        path = Path(directory) / credential
        if not path.is_file():
            continue
        try:
            secret = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as error:
            raise ConfigError(
                f"systemd credential {path}: cannot read it ({error.strerror}); check the "
                f"LoadCredential= line of treadmilld.service"
            ) from error
        section = values
        for key in setting_path[:-1]:
            section = section.setdefault(key, {})
        section[setting_path[-1]] = secret
    return values


def load_settings(
    config_path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[Settings, Path]:
    """Read and validate the configuration. Raises `ConfigError` with a message for people.

    `config_path=None` reads `$TREADMILLD_CONFIG` or the default file, which may be absent
    (then the defaults apply); an explicit path must exist. `overrides` (from the command
    line) win over everything.
    """
    env = os.environ if environ is None else environ
    path = config_path_from(config_path, env)
    required = config_path is not None or CONFIG_PATH_ENV in env
    file_values = read_config_file(path, required=required)
    credentials = read_credentials(env)
    token = _load_context.set((file_values, credentials))
    try:
        settings = Settings(**dict(overrides or {}))
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, path, env)) from None
    finally:
        _load_context.reset(token)
    if path.is_file():
        settings = _replays_anchored(settings, path.parent)
    return settings, path


def _replays_anchored(settings: Settings, folder: Path) -> Settings:
    """Relative `simulated.replay` paths taken from the config file's folder: a trace kept next
    to the config is found wherever the daemon starts (systemd starts it in /)."""
    changed = False
    treadmills = []
    for treadmill in settings.treadmills:
        replay = (treadmill.simulated or {}).get(REPLAY_KEY)
        if isinstance(replay, str) and replay and not Path(replay).expanduser().is_absolute():
            simulated = {**(treadmill.simulated or {}), REPLAY_KEY: str(folder / replay)}
            treadmill = treadmill.model_copy(update={"simulated": simulated})  # noqa: PLW2901
            changed = True
        treadmills.append(treadmill)
    return settings.model_copy(update={"treadmills": treadmills}) if changed else settings


def describe_validation_error(
    error: ValidationError, path: Path, environ: Mapping[str, str] | None = None
) -> str:
    """One line per problem: the field, what is wrong, and what to do."""
    env = os.environ if environ is None else environ
    overridden = sorted(key for key in env if key.startswith(ENV_PREFIX) and key != CONFIG_PATH_ENV)
    lines = [f"{path}: {error.error_count()} problem(s) in the configuration:"]
    lines.append(describe_problems(error, model=Settings))
    if overridden:
        lines.append(f"  (environment variables also set values: {', '.join(overridden)})")
    return "\n".join(lines)


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective configuration as JSON-ready data, every secret shown as '**********'."""
    # pydantic already masks SecretStr in JSON mode; free-form tables (simulated, quirks)
    # are masked by key name.
    data: dict[str, Any] = settings.model_dump(mode="json")
    masked: dict[str, Any] = _mask_secret_keys(data)
    return masked


_SECRET_KEYS = frozenset({"password", "token", "secret", "passphrase"})


def _mask_secret_keys(data: Any) -> Any:
    if isinstance(data, dict):
        return {
            key: "**********"
            if key in _SECRET_KEYS and value is not None
            else _mask_secret_keys(value)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [_mask_secret_keys(item) for item in data]
    return data
