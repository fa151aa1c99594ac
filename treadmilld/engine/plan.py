"""A workout plan as values: the timeline the planner lays out and the executor runs.

Frozen and free of logic beyond what a plan says about itself (its length, its time in each
direction, its JSON form for `treadmilld profiles show` and the golden plan files).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from treadmilld.engine.api import Direction
from treadmilld.engine.limits import EffectiveLimits


class StepKind(StrEnum):
    WALK = "walk"  # steady speed and incline
    RAMP = "ramp"  # speed and/or incline changing linearly
    TURN = "turn"  # belt paused while the user turns round
    REST = "rest"  # belt paused, no turn


class SegmentKind(StrEnum):
    WALK = "walk"
    TURN = "turn"
    REST = "rest"


@dataclass(frozen=True, slots=True)
class PlanStep:
    start_s: float
    duration_s: float
    kind: StepKind
    direction: Direction  # facing for walk/ramp; the new facing for a turn; REST for a rest
    from_speed_kmh: float
    speed_kmh: float  # at the end of the step
    from_incline_pct: float
    incline_pct: float  # at the end of the step
    starts_belt: bool = False  # the belt starts (at the restart speed) as this step begins

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    @property
    def rate_kmh_per_s(self) -> float:
        if self.duration_s <= 0:
            return 0.0
        return abs(self.speed_kmh - self.from_speed_kmh) / self.duration_s


@dataclass(frozen=True, slots=True)
class PlanZone:
    """A heart-rate-guided segment's zone (% of HRmax) and the bounds its controller keeps,
    already inside the limits the plan was made under."""

    low_pct: float
    high_pct: float
    min_speed_kmh: float
    max_speed_kmh: float
    max_incline_pct: float


@dataclass(frozen=True, slots=True)
class PlanSegment:
    index: int
    kind: SegmentKind
    direction: Direction  # walking direction; the new facing for a turn; REST for a rest
    start_s: float
    duration_s: float
    speed_kmh: float  # the segment's main (steady) speed; 0 while paused
    incline_pct: float
    cue: str | None
    origin: str  # where in the profile it comes from ("inserted turn" for turns)
    awaits_confirmation: bool
    steps: tuple[PlanStep, ...]
    heart_rate_zone: PlanZone | None = None  # set on a heart-rate-guided walk

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True, slots=True)
class PlanAdjustment:
    """The plan changed what the profile asked for to keep a limit."""

    origin: str
    limit: str
    requested: float
    applied: float


@dataclass(frozen=True, slots=True)
class WorkoutPlan:
    profile: str
    title: str
    clinical: bool
    limits: EffectiveLimits
    segments: tuple[PlanSegment, ...]
    adjustments: tuple[PlanAdjustment, ...]

    @property
    def total_s(self) -> float:
        return self.segments[-1].end_s if self.segments else 0.0

    @property
    def backward_s(self) -> float:
        return self._time_in(Direction.BACKWARD)

    @property
    def forward_s(self) -> float:
        return self._time_in(Direction.FORWARD)

    @property
    def turn_count(self) -> int:
        return sum(1 for s in self.segments if s.kind is SegmentKind.TURN)

    def _time_in(self, direction: Direction) -> float:
        return sum(
            s.duration_s
            for s in self.segments
            if s.kind is SegmentKind.WALK and s.direction is direction
        )

    def to_json_dict(self) -> dict[str, Any]:
        """A stable, JSON-ready form (used by the golden plan files)."""
        limits = asdict(self.limits)
        limits.pop("decided_by")
        return {
            "profile": self.profile,
            "title": self.title,
            "clinical": self.clinical,
            "total_s": _r(self.total_s),
            "forward_s": _r(self.forward_s),
            "backward_s": _r(self.backward_s),
            "turns": self.turn_count,
            "limits": {k: _r(v) if isinstance(v, float) else v for k, v in limits.items()},
            "adjustments": [
                {**asdict(a), "requested": _r(a.requested), "applied": _r(a.applied)}
                for a in self.adjustments
            ],
            "segments": [
                {
                    "index": s.index,
                    "kind": s.kind.value,
                    "direction": s.direction.value,
                    "start_s": _r(s.start_s),
                    "duration_s": _r(s.duration_s),
                    "speed_kmh": _r(s.speed_kmh),
                    "incline_pct": _r(s.incline_pct),
                    "cue": s.cue,
                    "origin": s.origin,
                    "awaits_confirmation": s.awaits_confirmation,
                    # Only on heart-rate-guided walks (the other golden plans stay as they were).
                    **_zone_json(s.heart_rate_zone),
                    "steps": [
                        {
                            "kind": st.kind.value,
                            "start_s": _r(st.start_s),
                            "duration_s": _r(st.duration_s),
                            "from_speed_kmh": _r(st.from_speed_kmh),
                            "speed_kmh": _r(st.speed_kmh),
                            "from_incline_pct": _r(st.from_incline_pct),
                            "incline_pct": _r(st.incline_pct),
                            "starts_belt": st.starts_belt,
                        }
                        for st in s.steps
                    ],
                }
                for s in self.segments
            ],
        }


def _zone_json(zone: PlanZone | None) -> dict[str, Any]:
    if zone is None:
        return {}
    return {"heart_rate_zone": {k: _r(v) for k, v in asdict(zone).items()}}


def _r(value: float) -> float:
    return round(value, 3)
