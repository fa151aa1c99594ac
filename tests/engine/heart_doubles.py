"""A rider wearing a heart-rate strap, for the engine tests: the heart follows the work the belt
asks of them (ACSM's walking equation, the backward factor, a first-order lag and a slow drift)
and the strap sends it to the session's `heart_rate_received` seam once a second, with the
faults a strap has (contact lost, single-sample spikes, silence) when asked.

Named by behaviour: `RiderWhoseHeartFollowsTheWork`. It reads the belt from the test treadmill
(what the deck really does, not what it was told) and which way the rider faces from the
session's governor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from treadmilld.engine.api import Direction, Phase
from treadmilld.engine.calories import BACKWARD_HORIZONTAL_FACTOR, REST_VO2
from treadmilld.engine.session import WorkoutSession
from treadmilld.runtime.clock import Clock

from .doubles import ObedientTreadmill


@dataclass(frozen=True, slots=True)
class Physiology:
    resting_bpm: float = 70.0
    max_bpm: float = 180.0
    vo2max: float = 35.0  # ml/kg/min
    tau_s: float = 30.0  # the heart's lag behind a change of work
    drift_bpm_per_min: float = 0.2  # cardiovascular drift while walking


@dataclass(frozen=True, slots=True)
class StrapFaults:
    """Times are seconds since the strap was put on (`wear_strap` began)."""

    # (from, until): the strap reports no skin contact.
    contact_lost: tuple[tuple[float, float], ...] = ()
    # Times at which a single reading is this many bpm off.
    spikes_at: tuple[float, ...] = ()
    spike_bpm: int = 50
    # (from, until): the strap sends nothing.
    silent: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class HeartSample:
    at: float
    bpm: float  # the heart itself
    sent: int | None  # what the strap sent (None: nothing, or no value)
    contact: bool
    phase: Phase


@dataclass
class RiderWhoseHeartFollowsTheWork:
    treadmill: ObedientTreadmill
    physiology: Physiology = field(default_factory=Physiology)
    faults: StrapFaults = field(default_factory=StrapFaults)
    interval_s: float = 1.0
    trace: list[HeartSample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bpm = self.physiology.resting_bpm
        self._walked_s = 0.0

    def steady_bpm(self, speed_kmh: float, incline_pct: float, facing: Direction | None) -> float:
        """Where the heart settles at this work: heart-rate reserve tracks VO2 reserve (Swain &
        Leutholtz 1997), VO2 from ACSM's walking equation with the backward factor."""
        body = self.physiology
        s = speed_kmh * 1000.0 / 60.0
        horizontal = BACKWARD_HORIZONTAL_FACTOR if facing is Direction.BACKWARD else 1.0
        vo2 = REST_VO2 + horizontal * 0.1 * s + 1.8 * s * max(incline_pct, 0.0) / 100.0
        reserve = min(max((vo2 - REST_VO2) / (body.vo2max - REST_VO2), 0.0), 1.05)
        drift = body.drift_bpm_per_min * self._walked_s / 60.0
        return body.resting_bpm + (body.max_bpm - body.resting_bpm) * reserve + drift

    def _beat(self, dt: float, facing: Direction | None) -> None:
        treadmill = self.treadmill
        if treadmill.belt_speed > 0.05:
            self._walked_s += dt
        goal = self.steady_bpm(treadmill.belt_speed, treadmill.incline, facing)
        self.bpm = goal + (self.bpm - goal) * math.exp(-dt / self.physiology.tau_s)

    async def wear_strap(self, session: WorkoutSession, clock: Clock) -> None:
        faults = self.faults
        put_on = clock.now()
        while True:
            await clock.sleep(self.interval_s)
            now = clock.now()
            worn = now - put_on
            self._beat(self.interval_s, session.governor.facing)
            contact = not any(a <= worn < b for a, b in faults.contact_lost)
            sent: int | None = round(self.bpm)
            if any(abs(worn - at) < self.interval_s / 2 for at in faults.spikes_at):
                sent = round(self.bpm) + faults.spike_bpm
            if any(a <= worn < b for a, b in faults.silent):
                sent = None
            self.trace.append(HeartSample(now, self.bpm, sent, contact, session.phase))
            if sent is not None:
                session.heart_rate_received(sent, contact, now)
