"""Settings of the MQTT interface (one `MqttSettings` per daemon)."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

# systemd's LoadCredential=/SetCredential= hand files to the service in this directory
# (systemd.exec(5), "Credentials"); relative credential paths are resolved against it.
CREDENTIALS_DIRECTORY_ENV = "CREDENTIALS_DIRECTORY"

# MQTT 3.1.1 section 4.7: "+" and "#" are wildcards and may not appear in topic names.
_TOPIC_FORBIDDEN = re.compile(r"[+#\x00]")

# An instance name is one topic level (`<base>/bridge/<instance>/...`) and part of the default
# client id, so it keeps to characters every broker, ACL file and shell handles unquoted.
_INSTANCE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_NOT_INSTANCE_CHARS = re.compile(r"[^a-z0-9_-]+")
# The leaves of the single-daemon bridge layout (`<base>/bridge/state`, `.../request/<action>`):
# an instance with one of these names would make `<base>/bridge/+/devices` match an old
# daemon's `bridge/response/devices`, and blur which layout a topic belongs to.
RESERVED_INSTANCE_NAMES = frozenset(
    {"state", "info", "devices", "profiles", "event", "request", "response", "logging"}
)
# Host names that say nothing about which machine this is (a fresh image, a container).
_ANONYMOUS_HOSTS = frozenset({"localhost", "localhost-localdomain", "none"})
MACHINE_ID_FILE = Path("/etc/machine-id")
FALLBACK_INSTANCE = "treadmilld"


class MqttCredentialError(ValueError):
    """A password or TLS file named in the settings cannot be read."""


def resolve_credential_path(path: Path) -> Path:
    """An absolute path as is; a relative one inside systemd's $CREDENTIALS_DIRECTORY
    (when set), so `password_file = "mqtt-password"` works with `LoadCredential=`."""
    if path.is_absolute():
        return path
    credentials_dir = os.environ.get(CREDENTIALS_DIRECTORY_ENV)
    if credentials_dir:
        return Path(credentials_dir) / path
    return path


def host_name() -> str:
    """This machine's host name (a function so tests can pretend to be another Pi)."""
    return socket.gethostname()


def instance_from_host(host: str) -> str:
    """`Gym-Pi-North.local` -> `gym-pi-north`: the short host name, lowercased, anything MQTT
    or an ACL file would trip over replaced by '-', at most 32 characters. '' if nothing is
    left or the name is one of the reserved bridge leaves."""
    short = host.split(".", 1)[0].lower()
    slug = _NOT_INSTANCE_CHARS.sub("-", short).strip("-_")[:32].rstrip("-_")
    if not slug or slug in _ANONYMOUS_HOSTS or slug in RESERVED_INSTANCE_NAMES:
        return ""
    return slug


def default_instance() -> str:
    """The host name as an instance name, so two Pis on one broker never share bridge topics
    or a client id without anyone configuring anything. A host without a usable name falls
    back to `host-` and the start of its systemd machine id (unique per installation)."""
    slug = instance_from_host(host_name())
    if slug:
        return slug
    try:
        machine_id = MACHINE_ID_FILE.read_text(encoding="ascii").strip().lower()
    except (OSError, UnicodeDecodeError):
        machine_id = ""
    if re.fullmatch(r"[0-9a-f]{8,}", machine_id):
        return f"host-{machine_id[:8]}"
    return FALLBACK_INSTANCE


def default_client_id(instance: str) -> str:
    return f"treadmilld-{instance}"


class MqttTlsSettings(BaseModel):
    """TLS towards the broker. Files may be systemd credentials (relative names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = Field(
        default=None, description="CA bundle that signed the broker's certificate; None = system"
    )
    cert_file: Path | None = Field(default=None, description="client certificate (mutual TLS)")
    key_file: Path | None = Field(default=None, description="client private key (mutual TLS)")
    insecure: bool = Field(
        default=False,
        description="skip the broker hostname check; only for a lab broker with a bad cert",
    )

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> MqttTlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(
                "tls.cert_file and tls.key_file go together: set both for mutual TLS, or neither"
            )
        return self

    def resolved(self) -> tuple[Path | None, Path | None, Path | None]:
        """(ca, cert, key) with credential names resolved and each file checked readable."""
        paths: list[Path | None] = []
        for path in (self.ca_file, self.cert_file, self.key_file):
            if path is None:
                paths.append(None)
                continue
            real = resolve_credential_path(path)
            if not real.is_file():
                raise MqttCredentialError(
                    f"TLS file {real} does not exist; check the mqtt.tls paths or the "
                    f"service's LoadCredential= lines"
                )
            paths.append(real)
        return paths[0], paths[1], paths[2]


class MqttSettings(BaseModel):
    """How the daemon reaches its broker and lays out its topics."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    base_topic: str = Field(default="treadmilld", description="prefix of every treadmilld topic")
    instance: str = Field(
        default_factory=default_instance,
        description="this daemon's name on the broker: its bridge topics are "
        "<base>/bridge/<instance>/...; default: the host name",
    )
    client_id: str = Field(
        default="",
        min_length=1,
        description="fixed so a restarted daemon replaces its old session; unique per daemon; "
        "default: treadmilld-<instance>",
    )
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = Field(
        default=None,
        description="file holding the password; a relative name is a systemd credential",
    )
    tls: MqttTlsSettings | None = Field(default=None, description="set to connect over TLS")
    protocol: Literal["3.1.1", "5"] = Field(
        default="3.1.1", description="5 adds response topic / correlation data on replies"
    )
    keepalive_s: int = Field(default=15, ge=5, le=3600)
    operation_timeout_s: float = Field(
        default=5.0,
        gt=0.0,
        description="wait this long for CONNACK/PUBACK/SUBACK before counting the connection "
        "as broken (a broker on the LAN answers in well under a millisecond)",
    )
    ha_discovery: bool = True
    ha_discovery_prefix: str = "homeassistant"
    state_min_interval_s: float = Field(
        default=1.0,
        ge=0.0,
        description="a changed state is published at most this often per treadmill (changes "
        "in between are coalesced); a change that does not show in the rounded payload is not "
        "published at all",
    )
    heartbeat_interval_s: float = Field(
        default=30.0,
        gt=0.0,
        description="the state is republished this long after the last publication even if "
        "unchanged",
    )
    max_command_age_s: float = Field(
        default=5.0, gt=0.0, description="commands whose `ts` is older than this are refused"
    )
    reconnect_initial_s: float = Field(default=0.5, gt=0.0)
    reconnect_max_s: float = Field(default=30.0, gt=0.0)

    @model_validator(mode="before")
    @classmethod
    def _derive_client_id(cls, data: Any) -> Any:
        """An unset client id follows the instance name, so both differ between Pis."""
        if not isinstance(data, dict) or data.get("client_id") not in (None, ""):
            return data
        instance = data.get("instance")
        if instance is None:
            instance = default_instance()
            data = {**data, "instance": instance}
        # A bad instance is refused by its own validator; the client id just follows it.
        return {**data, "client_id": default_client_id(str(instance))}

    @field_validator("instance")
    @classmethod
    def _valid_instance(cls, value: str) -> str:
        if not _INSTANCE.fullmatch(value):
            suggestion = instance_from_host(value) or "gym-pi-1"
            raise ValueError(
                f"{value!r} is not a valid instance name; use 1-32 lowercase letters, digits, "
                f"'-' or '_', starting with a letter or digit (e.g. {suggestion!r})"
            )
        if value in RESERVED_INSTANCE_NAMES:
            raise ValueError(
                f"{value!r} cannot be an instance name: it is a bridge topic of its own; "
                "pick another, e.g. the Pi's host name"
            )
        return value

    @field_validator("base_topic", "ha_discovery_prefix")
    @classmethod
    def _valid_topic_prefix(cls, value: str) -> str:
        if not value or value.startswith("/") or value.endswith("/"):
            raise ValueError(f"{value!r} must be non-empty without a leading or trailing '/'")
        if _TOPIC_FORBIDDEN.search(value):
            raise ValueError(f"{value!r} may not contain MQTT wildcards '+' or '#'")
        return value

    @model_validator(mode="after")
    def _one_password_source(self) -> MqttSettings:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set either password or password_file, not both")
        if (self.password is not None or self.password_file is not None) and not self.username:
            raise ValueError("a password needs a username; set mqtt.username")
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be at least reconnect_initial_s")
        return self

    def resolved_password(self) -> str | None:
        """The password from `password` or `password_file` (trailing newline stripped)."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is None:
            return None
        path = resolve_credential_path(self.password_file)
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as error:
            raise MqttCredentialError(
                f"cannot read the MQTT password from {path} ({error.strerror}); check "
                f"mqtt.password_file or the service's LoadCredential= line"
            ) from error

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.tls is not None else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> MqttSettings:
        """Settings from `mqtt://[user[:password]@]host[:port]` (`mqtts://` turns on TLS with
        the system CAs); keyword arguments set the other fields."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"{url!r} is not an MQTT URL; write mqtt://host:1883 or mqtts://...")
        tls = parts.scheme == "mqtts"
        values: dict[str, Any] = {
            "host": parts.hostname,
            "port": parts.port or (8883 if tls else 1883),
        }
        if parts.username:
            values["username"] = unquote(parts.username)
        if parts.password:
            values["password"] = SecretStr(unquote(parts.password))
        if tls:
            values["tls"] = MqttTlsSettings()
        values.update(overrides)
        return cls.model_validate(values)
