"""A simulated rider's heart rate: how hard they work, and how their heart follows.

Steady-state heart rate from the work: oxygen uptake from the ACSM walking equation (ACSM's
Guidelines, Bushman 2020: VO2 = 3.5 + 0.1·S + 1.8·S·G, S in m/min, G a fraction), with the
horizontal term times 1.8 walking backward (the reference note retro-walking.md, its recommended
model: Compendium 17320/17325 and Kim & Choi 2001 put backward walking 1.4 to 1.6 times the
forward cost); then the heart-rate reserve in the same share as the VO2 reserve (%HRR ≈ %VO2R,
Swain & Leutholtz 1997, as ACSM prescribes intensity). The heart rate follows that value with
a first-order lag (`time_constant_s`, cited in strap_config.py) and drifts slowly up while the
rider works (cardiovascular drift; its rate is a design choice).

Like `TreadmillModel` it is lazy: nothing ticks, the state is brought up to the clock on read,
with the work as it is at that moment (the strap reads it every second, so the belt's ramps are
followed closely enough).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from treadmilld.runtime.clock import Clock
from treadmilld_sim.strap_config import Facing, SimulatedStrapConfig

_REST_VO2 = 3.5  # ml/kg/min, one MET
_WALK_HORIZONTAL = 0.1
_WALK_VERTICAL = 1.8
# Above this the ACSM running equation applies (the walking one is valid to ~100 m/min).
_RUN_FROM_KMH = 7.5
_RUN_HORIZONTAL = 0.2
_RUN_VERTICAL = 0.9
# Backward: horizontal term times 1.8 (retro-walking.md "Recommended calorie model" [D]).
_BACKWARD_HORIZONTAL_FACTOR = 1.8
# kJ per litre of oxygen (about 4.8 to 5.0 kcal/L on a mixed diet; 5 kcal = 20.9 kJ).
_KJ_PER_LITRE_O2 = 20.9
# Cardiovascular drift stops growing here (design choice: about 10 % of a typical reserve).
_MAX_DRIFT_BPM = 12.0


@dataclass(frozen=True, slots=True)
class Work:
    """What the rider is doing right now: the belt under them and the way they face."""

    speed_kmh: float = 0.0
    incline_pct: float = 0.0
    facing: Facing = "backward"


STANDING_STILL = Work()


def oxygen_uptake(work: Work) -> float:
    """VO2 in ml/kg/min for `work` (rest when the belt stands)."""
    if work.speed_kmh <= 0:
        return _REST_VO2
    speed = work.speed_kmh * 1000 / 60
    grade = max(work.incline_pct, 0.0) / 100  # downhill is not modelled as cheaper
    running = work.speed_kmh >= _RUN_FROM_KMH
    horizontal = (_RUN_HORIZONTAL if running else _WALK_HORIZONTAL) * speed
    if work.facing == "backward":
        horizontal *= _BACKWARD_HORIZONTAL_FACTOR
    vertical = (_RUN_VERTICAL if running else _WALK_VERTICAL) * speed * grade
    return _REST_VO2 + horizontal + vertical


class HeartRateModel:
    """One rider's heart: `heart_rate_bpm` is current whenever it is read."""

    def __init__(
        self, config: SimulatedStrapConfig, clock: Clock, work: Callable[[], Work]
    ) -> None:
        self.config = config
        self.clock = clock
        self._work = work
        self._last_update = clock.now()
        self._lagged_bpm = config.resting_bpm
        self._drift_bpm = 0.0
        self._energy_kj = 0.0
        self._beats = 0.0  # beats since the last `take_rr_intervals`, fractional

    def steady_state_bpm(self, work: Work) -> float:
        """The heart rate `work` leads to once held for long (no drift)."""
        c = self.config
        reserve_share = (oxygen_uptake(work) - _REST_VO2) / (c.vo2max_ml_kg_min - _REST_VO2)
        reserve_share = min(max(reserve_share, 0.0), 1.0)
        return c.resting_bpm + reserve_share * (c.max_bpm - c.resting_bpm)

    @property
    def heart_rate_bpm(self) -> float:
        self._update()
        return min(self._lagged_bpm + self._drift_bpm, self.config.max_bpm)

    @property
    def drift_bpm(self) -> float:
        self._update()
        return self._drift_bpm

    @property
    def energy_expended_kj(self) -> float:
        self._update()
        return self._energy_kj

    def take_rr_intervals(self) -> tuple[float, ...]:
        """The RR intervals (seconds) of the beats completed since the last call."""
        bpm = self.heart_rate_bpm
        whole = int(self._beats)
        self._beats -= whole
        return (60.0 / bpm,) * whole if bpm > 0 else ()

    def _update(self) -> None:
        now = self.clock.now()
        dt = now - self._last_update
        if dt <= 0:
            return
        self._last_update = now
        c = self.config
        work = self._work()
        target = self.steady_state_bpm(work)
        # Exact first-order step for a target held over dt.
        self._lagged_bpm += (target - self._lagged_bpm) * (1 - math.exp(-dt / c.time_constant_s))
        intensity = (target - c.resting_bpm) / (c.max_bpm - c.resting_bpm)
        if intensity > 0:
            growth = c.drift_bpm_per_min * intensity * dt / 60
            self._drift_bpm = min(self._drift_bpm + growth, _MAX_DRIFT_BPM)
        else:
            self._drift_bpm *= math.exp(-dt / c.drift_recovery_s)
        litres = oxygen_uptake(work) * c.weight_kg / 1000 * dt / 60
        self._energy_kj += litres * _KJ_PER_LITRE_O2
        self._beats += (self._lagged_bpm + self._drift_bpm) * dt / 60
