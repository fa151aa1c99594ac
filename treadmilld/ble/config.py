"""Settings of one treadmill link: which treadmill, how patiently, and with which quirks.

Backend classes (the simulator's bleak backends) are passed to `BleTreadmillLink` in code, never
through config: a config file names a treadmill, not a Python class.
"""

from __future__ import annotations

import random
import re
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from treadmilld.ble.quirks import Quirks, QuirksChoice, quirks_by_name, quirks_for_name
from treadmilld.runtime.backoff import Backoff

# BlueZ addresses are MACs; macOS (CoreBluetooth) gives per-host UUIDs instead.
_MAC_ADDRESS = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
_UUID_ADDRESS = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")


def bluetooth_address(value: str) -> str:
    """`value` as a normalised Bluetooth address (a MAC in upper case with colons, or a UUID on
    macOS), or ValueError saying how to write one. Treadmills, straps in the config and riders'
    straps are all checked here."""
    normalised = value.strip().upper().replace("-", ":") if len(value) <= 17 else value
    normalised = normalised.strip().upper()
    if not (_MAC_ADDRESS.match(normalised) or _UUID_ADDRESS.match(normalised)):
        raise ValueError(
            f"{value!r} is not a Bluetooth address; write it as AA:BB:CC:DD:EE:FF "
            f"(`treadmilld scan` lists the treadmills and straps nearby)"
        )
    return normalised


class TargetSelector(BaseModel):
    """Which treadmill (or heart-rate strap) to connect to: by address, or by advertised name.

    With an address, that device is used whatever it advertises. With a name match, the first
    device whose advertised name matches is used; it is confirmed as a treadmill after connecting
    (it must expose Treadmill Data 0x2ACD), which also covers decks that advertise no FTMS
    service data (Toorx TRL200, Domyos).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = Field(default=None, description="Bluetooth address, e.g. AA:BB:..")
    name_contains: str | None = Field(
        default=None, description="Case-insensitive substring of the advertised name."
    )
    name_regex: str | None = Field(
        default=None, description="Regular expression searched in the advertised name."
    )

    @field_validator("name_regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"name_regex {value!r} is not a valid regex: {error}") from None
        return value

    @model_validator(mode="after")
    def _something_to_match(self) -> Self:
        if self.address is None and self.name_contains is None and self.name_regex is None:
            raise ValueError(
                "a treadmill or strap target needs an address, name_contains or name_regex; "
                "run `treadmilld scan` to see what is nearby"
            )
        return self

    def matches(self, address: str, name: str | None) -> bool:
        """Whether an advertisement from `address` named `name` is this target."""
        if self.address is not None and address.lower() != self.address.lower():
            return False
        if self.name_contains is not None and (
            name is None or self.name_contains.lower() not in name.lower()
        ):
            return False
        return self.name_regex is None or (
            name is not None and re.search(self.name_regex, name) is not None
        )

    @property
    def has_name_match(self) -> bool:
        return self.name_contains is not None or self.name_regex is not None

    def describe(self) -> str:
        parts = []
        if self.address is not None:
            parts.append(f"address {self.address}")
        if self.name_contains is not None:
            parts.append(f"name containing {self.name_contains!r}")
        if self.name_regex is not None:
            parts.append(f"name matching /{self.name_regex}/")
        return " and ".join(parts)


class BackoffSettings(BaseModel):
    """Delays between reconnect attempts: capped, jittered, exponential."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_s: float = Field(default=1.0, gt=0, description="First delay after a failure.")
    maximum_s: float = Field(default=30.0, gt=0, description="Cap on the delay.")
    multiplier: float = Field(default=2.0, ge=1.0, description="Growth per failed attempt.")
    jitter: float = Field(
        default=0.2,
        ge=0.0,
        lt=1.0,
        description="Each delay is scaled by a random factor in [1 - jitter, 1 + jitter], so "
        "several daemons (or treadmills) do not retry in lockstep.",
    )
    reset_after_healthy_s: float = Field(
        default=60.0,
        gt=0,
        description="A session that stayed up this long resets the delay to initial_s.",
    )

    @model_validator(mode="after")
    def _cap_not_below_initial(self) -> Self:
        if self.maximum_s < self.initial_s:
            raise ValueError(
                f"backoff maximum_s ({self.maximum_s}) is below initial_s ({self.initial_s}); "
                "raise maximum_s"
            )
        return self


class ReconnectBackoff(Backoff):
    """The link's reconnect delays: the runtime's `Backoff` with these settings' numbers
    (jitter `j` scales each delay by a factor in [1 - j, 1 + j])."""

    def __init__(self, settings: BackoffSettings, rng: random.Random | None = None) -> None:
        super().__init__(
            initial_s=settings.initial_s,
            maximum_s=settings.maximum_s,
            multiplier=settings.multiplier,
            jitter=(1.0 - settings.jitter, 1.0 + settings.jitter),
            rng=rng,
        )


class LinkSettings(BaseModel):
    """How one treadmill link connects, waits and recovers. Times are seconds on the link clock."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scan_timeout_s: float = Field(
        default=10.0, gt=0, description="How long to look for the treadmill before giving up."
    )
    connect_timeout_s: float = Field(
        # Home Assistant recommends at least 10 s for a BLE connect on BlueZ
        # (developers.home-assistant.io/docs/bluetooth).
        default=10.0,
        gt=0,
        description="Bound on one whole connect step (all its attempts).",
    )
    connect_attempts: int = Field(
        default=2, ge=1, le=10, description="Connect attempts per step (bleak-retry-connector)."
    )
    control_response_timeout_s: float = Field(
        # FTMS sets no timeout (only ATT's 30 s); pyftms waits 2 s (dudanov/pyftms).
        default=2.0,
        gt=0,
        description="How long to wait for a Control Point response indication.",
    )
    liveness_timeout_s: float = Field(
        # The KingSmith app reconnects when no data arrives for 3 s (walkingpad-controller §2.5).
        default=3.0,
        gt=0,
        description="No Treadmill Data for this long means the link is dead.",
    )
    cccd_gap_s: float = Field(
        # KingSmith drops CCCD writes under ~30 ms apart; its app waits 100-300 ms
        # (walkingpad-controller docs §2.1-2.2).
        default=0.1,
        ge=0,
        description="Pause between enabling one notification and the next.",
    )
    start_gate_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="With the start-gate quirk: how long a speed command waits for the belt to "
        "move after Start.",
    )
    start_gate_settle_s: float = Field(
        default=1.0,
        ge=0,
        description="With the start-gate quirk: extra wait after the belt first moves.",
    )
    backoff: BackoffSettings = Field(default_factory=BackoffSettings)
    quirks: QuirksChoice = Field(
        default=None,
        description="None: pick the quirk set from the advertised name. A string: a named "
        "quirk set (a key of treadmilld.ble.quirks.QUIRK_SETS: standard, fitshow, sunny, tm11gy, "
        "jftm, mph, kingsmith, kingsmith-mc21, urevo-e1l, fitshow-bc11b7, horizon, "
        "incline-table, belt-first). Or the fields spelled out.",
    )

    def quirks_for(self, advertised_name: str | None) -> Quirks:
        """The quirks to use for a treadmill advertising `advertised_name`."""
        if self.quirks is None:
            return quirks_for_name(advertised_name)
        if isinstance(self.quirks, str):
            return quirks_by_name(self.quirks)
        return self.quirks


class StrapLinkSettings(BaseModel):
    """How one heart-rate strap link connects, watches and recovers (seconds on its clock).

    The same rules as a treadmill's link: bounded scan and connect, capped jittered backoff,
    and silence for `liveness_timeout_s` ends the connection.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scan_timeout_s: float = Field(
        default=10.0, gt=0, description="How long to look for the strap before retrying."
    )
    connect_timeout_s: float = Field(
        default=10.0, gt=0, description="Bound on one whole connect step (all its attempts)."
    )
    connect_attempts: int = Field(
        default=2, ge=1, le=10, description="Connect attempts per step (bleak-retry-connector)."
    )
    liveness_timeout_s: float = Field(
        # A strap notifies about once a second (HRS v1.0 §3.1); five missed in a row is no
        # passing glitch (design choice).
        default=5.0,
        gt=0,
        description="No Heart Rate Measurement for this long means the strap link is dead.",
    )
    backoff: BackoffSettings = Field(default_factory=BackoffSettings)
