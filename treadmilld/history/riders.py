"""A rider as plain frozen values: the contract between the store and whatever creates, changes
and starts workouts for riders (MQTT, the CLI, programs).

Only what the features need is kept (docs/database.md, privacy): a pseudonymous id that topics
and logs carry, a display name for the dashboard, body weight for calories, maximum heart rate
for zones, the clinical flag and the personal limits for the safety governor, and where the rider
is in their program. No birth date, no contact details, no free-text notes.
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
