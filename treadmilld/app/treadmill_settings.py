"""A treadmill's settings (`[[treadmills]]`): its id, how it is found, its quirks, a simulated
deck or a replayed trace, and its heart-rate strap. `treadmilld.app.settings` composes them into
`Settings` with the daemon-wide tables; every name here is importable from there too."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from treadmilld.ble.config import LinkSettings, TargetSelector, bluetooth_address
from treadmilld.ble.quirks import QuirksChoice

# An id becomes an MQTT topic level and a log field: lowercase, digits, '-' and '_' only, so it
# can never contain '/', '+' or '#' (MQTT 3.1.1 section 4.7) or need quoting.
_TREADMILL_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
# The topic level of the daemon's own bridge topics (`<base>/bridge/<instance>/...`).
RESERVED_TREADMILL_ID = "bridge"

# Keys of a treadmill's `simulated` table that make it a recorded deck replayed from a trace
# (docs/capture.md) rather than a deck model; treadmilld.app.simulation reads them.
REPLAY_KEY = "replay"
REPLAY_SESSION_KEY = "replay_session"


def _bluetooth_address(value: str | None) -> str | None:
    return None if value is None else bluetooth_address(value)


class StrapSettings(BaseModel):
    """The heart-rate strap worn on one treadmill: found by address or name, or simulated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = Field(
        default=None, description="the strap's Bluetooth address (AA:BB:CC:DD:EE:FF)"
    )
    name_match: str | None = Field(
        default=None,
        description="connect to the first strap advertising the Heart Rate Service whose name "
        "contains this",
    )
    simulated: dict[str, Any] | None = Field(
        default=None,
        description="a simulated strap (treadmilld-sim): keys of SimulatedStrapConfig; its "
        "wearer walks on this treadmill's simulated deck",
    )

    @field_validator("address")
    @classmethod
    def _address_is_bluetooth(cls, value: str | None) -> str | None:
        return _bluetooth_address(value)

    @model_validator(mode="after")
    def _exactly_one_target(self) -> StrapSettings:
        given = [k for k in ("address", "name_match", "simulated") if getattr(self, k) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(
                f"a heart_rate_strap needs exactly one of address, name_match or simulated "
                f"(found: {found}); the strap's address is on its box or in the phone app "
                "it pairs with"
            )
        return self

    def target(self) -> TargetSelector:
        """Which strap the link connects to (a simulated one: the address it is given)."""
        if self.address is not None:
            return TargetSelector(address=self.address)
        return TargetSelector(name_contains=self.name_match)


class TreadmillSettings(BaseModel):
    """One treadmill: found by address or name, or simulated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="MQTT-safe slug: topic level and log field, e.g. 'tm01'")
    name: str | None = Field(default=None, description="display name; defaults to the id")
    address: str | None = Field(
        default=None, description="Bluetooth address (AA:BB:CC:DD:EE:FF; a UUID on macOS)"
    )
    name_match: str | None = Field(
        default=None,
        description="connect to the first FTMS treadmill whose advertised name contains this",
    )
    simulated: dict[str, Any] | None = Field(
        default=None,
        description="a simulated treadmill (treadmilld-sim): keys of SimulatedTreadmillConfig, "
        "or replay = FILE (a recorded trace; relative to the config file's folder) and "
        "optionally replay_session = N",
    )
    quirks: QuirksChoice = Field(
        default=None,
        description="override the quirks picked from the advertised name: a quirk set name "
        "(fitshow, sunny, tm11gy, mph, jftm, kingsmith, standard) or a table of Quirks fields",
    )
    heart_rate_strap: StrapSettings | None = Field(
        default=None,
        description="the heart-rate strap of whoever walks on this treadmill: "
        "{ address = ... }, { name_match = ... } or { simulated = { ... } }",
    )

    @field_validator("id")
    @classmethod
    def _id_is_a_slug(cls, value: str) -> str:
        if value == RESERVED_TREADMILL_ID:
            raise ValueError(
                f"{value!r} cannot be a treadmill id: <base>/{value}/... are the daemon's own "
                "MQTT topics; use another id, e.g. 'tm01'"
            )
        if not _TREADMILL_ID.match(value):
            raise ValueError(
                f"{value!r} is not a valid treadmill id; use 1-32 lowercase letters, digits, "
                f"'-' or '_', starting with a letter or digit (e.g. 'tm01')"
            )
        return value

    @field_validator("address")
    @classmethod
    def _address_is_bluetooth(cls, value: str | None) -> str | None:
        return _bluetooth_address(value)

    @model_validator(mode="after")
    def _exactly_one_target(self) -> TreadmillSettings:
        targets = [
            key
            for key, value in (
                ("address", self.address),
                ("name_match", self.name_match),
                ("simulated", self.simulated),
            )
            if value is not None
        ]
        if len(targets) != 1:
            found = ", ".join(targets) if targets else "none"
            raise ValueError(
                f"treadmill {self.id!r} needs exactly one of address, name_match or simulated "
                f"(found: {found}); run `treadmilld scan` to find the address"
            )
        return self

    @property
    def display_name(self) -> str:
        return self.name or self.id

    def target(self) -> TargetSelector:
        """Which device the link connects to (simulated ones: see `simulated_target`)."""
        if self.address is not None:
            return TargetSelector(address=self.address)
        return TargetSelector(name_contains=self.name_match)

    def link_settings(self, shared: LinkSettings) -> LinkSettings:
        """The daemon-wide link settings with this treadmill's quirks override applied."""
        if self.quirks is None:
            return shared
        return shared.model_copy(update={"quirks": self.quirks})
