"""The planner's working values, shared by its steps: a profile segment under the limits, and
the belt as the timeline laid out so far leaves it."""

from __future__ import annotations

from dataclasses import dataclass

from treadmilld.engine.api import Direction
from treadmilld.engine.plan import PlanZone


@dataclass(slots=True)
class WorkItem:
    """One profile segment with its speeds and inclines inside the limits; the backward bounds
    may still lengthen or cut it."""

    direction: Direction
    duration_s: float
    speed_kmh: float
    incline_pct: float
    to_speed_kmh: float | None
    to_incline_pct: float | None
    cue: str | None
    origin: str
    zone: PlanZone | None = None


class PlanCursor:
    """The belt as the plan leaves it: time, commanded speed/incline, facing, paused or not."""

    def __init__(self) -> None:
        self.t = 0.0
        self.speed = 0.0
        self.incline = 0.0
        self.facing: Direction | None = None
        self.moving = False
        self.last_speed_change_end = -1e9
