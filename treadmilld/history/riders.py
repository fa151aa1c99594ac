"""A rider as plain frozen values: the contract between the store and whatever creates, changes
and starts workouts for riders (MQTT, the CLI, programs).

Only what the features need is kept (docs/database.md, privacy): a pseudonymous id that topics
and logs carry, a display name for the dashboard, body weight for calories, maximum heart rate
for zones, the clinical flag and the personal limits for the safety governor, where the rider
is in their program, and which heart-rate strap they wear. No birth date, no contact details,
no free-text notes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from treadmilld.engine.limits import ProfileLimits

# A rider id is a topic level and a log field, like a treadmill id, and never a name: "r-17".
RIDER_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


@dataclass(frozen=True, slots=True)
class StrapChoice:
    """The heart-rate strap a rider wears, found by its Bluetooth address or by a part of the
    name it advertises (checked by whoever makes one: riders/api.py, the MQTT start payload)."""

    address: str | None = None
    name_match: str | None = None

    def describe(self) -> str:
        return f"address {self.address}" if self.address else f"name containing {self.name_match!r}"

    def to_json(self) -> dict[str, str]:
        """As stored and as sent: {"address": ...} or {"name_match": ...}."""
        if self.address is not None:
            return {"address": self.address}
        return {"name_match": self.name_match or ""}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> StrapChoice:
        return cls(address=value.get("address"), name_match=value.get("name_match"))


@dataclass(frozen=True, slots=True)
class Rider:
    rider_id: str  # pseudonymous, e.g. "r-17"
    display_name: str
    body_weight_kg: float
    max_heart_rate_bpm: int | None = None
    clinical: bool = False
    # Personal limits: tighten the global ones only. The caller checks "never looser" against
    # the configured limits; the store keeps what it is given.
    limits: ProfileLimits | None = None
    program_name: str | None = None
    # Where the rider is in their program (stage, sessions counted, confirms): owned by the
    # programs, kept by the store as JSON. Plain JSON values only.
    program_state: Mapping[str, Any] | None = field(default=None, hash=False)
    # The strap the rider brings: connected for their workouts on any treadmill, in place of
    # the treadmill's own (docs/heart-rate.md, "A rider's strap").
    heart_rate_strap: StrapChoice | None = None
