"""Settings of the MQTT interface (one `MqttSettings` per daemon)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

# systemd's LoadCredential=/SetCredential= hand files to the service in this directory
# (systemd.exec(5), "Credentials"); relative credential paths are resolved against it.
CREDENTIALS_DIRECTORY_ENV = "CREDENTIALS_DIRECTORY"

# MQTT 3.1.1 section 4.7: "+" and "#" are wildcards and may not appear in topic names.
_TOPIC_FORBIDDEN = re.compile(r"[+#\x00]")


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
    client_id: str = Field(
        default="treadmilld",
        min_length=1,
        description="fixed so a restarted daemon replaces its old session; unique per site",
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
        default=0.5, ge=0.0, description="state is published at most this often per treadmill"
    )
    heartbeat_interval_s: float = Field(
        default=30.0, gt=0.0, description="state is republished this often even if unchanged"
    )
    max_command_age_s: float = Field(
        default=5.0, gt=0.0, description="commands whose `ts` is older than this are refused"
    )
    reconnect_initial_s: float = Field(default=0.5, gt=0.0)
    reconnect_max_s: float = Field(default=30.0, gt=0.0)

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
