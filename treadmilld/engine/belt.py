"""What the belt is measured to do, from the deck's own data, and how long real decks take.

An acknowledged Control Point command proves nothing: real decks skip statuses, resume at old
targets, decelerate slowly, ignore speed commands and refuse stops (see docs/safety.md and the
deck behaviours in docs/simulator.md). Every safety decision that depends on the belt is taken
from `BeltObserver`, which is fed only with Treadmill Data records (instantaneous speed and
inclination, FTMS §4.4) and the time they arrived.

- MOVING: the last fresh record shows the belt above the standstill speed.
- STANDING: fresh records have shown the belt at or below the standstill speed for at least
  `STANDSTILL_CONFIRM_S`, over at least two records. Standing time counts from the first such
  record, never from a Pause or Stop acknowledgement.
- UNKNOWN: no record younger than `stale_after_s` (not connected, or the deck went quiet).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from treadmilld.engine.api import BeltState
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.waiting import sleep_until_set

# At or below this measured speed the belt counts as standing. Well under the lowest speed any
# deck runs at (0.5 km/h on most FTMS treadmills; 0.96 km/h on the Urevo E1L, whose Supported
# Speed Range is `60 00 ...` = 0.96 km/h in the blak3r/treadspan urevo-E1L captures), below the
# 0.1 km/h that the lowest-reaching decks accept as a target (a belt running there must count as
# moving), and above the 0.01 km/h wire resolution (FTMS §4.4.1.2), so a coasting belt is never
# taken for a standing one.
STANDSTILL_KMH = 0.05
# How long records must read standstill before the belt counts as standing: one second covers
# the slowest usual data rate (FTMS §4.4.1: "typically" 1 Hz) with a second record.
STANDSTILL_CONFIRM_S = 1.0
# Without a record for this long the belt's state is unknown (the same 3 s as the no-data
# abort: three missed records at 1 Hz; the KingSmith app also reconnects after 3 s without
# data, walkingpad-controller docs §2.5).
STALE_AFTER_S = 3.0

# The slowest deck we allow for when deciding that a deck is not doing what it was told.
# Real decks decelerate from about 1 km/h/s down to 0.25 km/h/s on heavy gym decks, and may
# still move 10 s or more after a stop (user reports; no public measurement found).
SLOWEST_DECELERATION_KMH_PER_S = 0.25
# Acceleration of the slowest deck we allow for; decks accelerate at least as fast as they
# decelerate in every public report we found, so the same figure is the safe choice.
SLOWEST_ACCELERATION_KMH_PER_S = 0.25
# Consoles count down before the belt moves after Start (KingSmith and Urevo show 3-2-1;
# walkingpad-controller notes), and the first record showing motion can lag one data period.
START_DELAY_S = 5.0
# Slack on top of each allowance: one late record at 1 Hz, one late Control Point answer
# (pyftms waits 2 s for one: dudanov/pyftms), and rounding.
RESPONSE_MARGIN_S = 3.0
# Measured speed may exceed the target by this much (plus one deck increment) without being
# overspeed: decks overshoot slightly and report in 0.01 km/h steps.
SPEED_TOLERANCE_KMH = 0.3
# The incline motor of the slowest deck (about 0.5 to 1 % per second in user reports, no public
# measurement found; half the slowest reported rate, for safety).
SLOWEST_INCLINE_RATE_PCT_PER_S = 0.25
# Measured incline within this of a cap counts as at the cap: Treadmill Data carries the
# inclination in 0.1 % steps (FTMS §4.4.1.5), and decks move to targets on their own increment,
# which the governor rounds down, so a deck that obeys ends at or below the cap.
INCLINE_TOLERANCE_PCT = 0.1


def deceleration_allowance_s(speed_kmh: float) -> float:
    """Clock time the slowest deck may take to bring the belt from `speed_kmh` to standing."""
    return max(speed_kmh, 0.0) / SLOWEST_DECELERATION_KMH_PER_S + RESPONSE_MARGIN_S


def acceleration_allowance_s(from_kmh: float, to_kmh: float) -> float:
    """Clock time the slowest deck may take to go from `from_kmh` up to `to_kmh`."""
    return max(to_kmh - from_kmh, 0.0) / SLOWEST_ACCELERATION_KMH_PER_S + RESPONSE_MARGIN_S


def incline_allowance_s(from_pct: float, to_pct: float) -> float:
    """Clock time the slowest incline motor may take between two inclines."""
    return abs(to_pct - from_pct) / SLOWEST_INCLINE_RATE_PCT_PER_S + RESPONSE_MARGIN_S


class BeltObserver:
    """The belt's measured state, from Treadmill Data only. Synchronous to feed; async waits."""

    def __init__(self, clock: Clock, *, stale_after_s: float = STALE_AFTER_S) -> None:
        self._clock = clock
        self._stale_after_s = stale_after_s
        self._record_at: float | None = None
        self._speed: float | None = None
        self._incline: float | None = None
        self._low_since: float | None = None  # first record of the current run at standstill
        self._low_records = 0
        self._moved_at: float | None = None  # last record showing motion
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ feeding

    def on_record(self, speed_kmh: float | None, incline_pct: float | None, at: float) -> None:
        """A Treadmill Data record (merged telemetry) arrived at clock time `at`."""
        if (
            self._record_at is not None
            and at - self._record_at > self._stale_after_s
            and self._low_since is not None
        ):
            # A gap in the data: whatever happened in it is unknown; count standing anew.
            self._low_since = None
            self._low_records = 0
        self._record_at = at
        if incline_pct is not None:
            self._incline = incline_pct
        if speed_kmh is None:
            self._wake()
            return
        self._speed = speed_kmh
        if speed_kmh <= STANDSTILL_KMH:
            if self._low_since is None:
                self._low_since = at
                self._low_records = 0
            self._low_records += 1
        else:
            self._low_since = None
            self._low_records = 0
            self._moved_at = at
        self._wake()

    def count_standing_from(self, at: float) -> None:
        """Standing counts only from records after `at` (a Stop or Pause was sent then): a
        standstill seen before it may be the moment before a Start took effect."""
        self._low_since = None
        self._low_records = 0
        self._wake()

    def forget(self) -> None:
        """The link went down or came back: nothing measured before counts any more."""
        self._record_at = None
        self._speed = None
        self._incline = None
        self._low_since = None
        self._low_records = 0
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ reading

    def fresh(self) -> bool:
        at = self._record_at
        return at is not None and self._clock.now() - at <= self._stale_after_s

    def state(self) -> BeltState:
        if not self.fresh() or self._speed is None:
            return BeltState.UNKNOWN
        if self._speed > STANDSTILL_KMH:
            return BeltState.MOVING
        low_since = self._low_since
        if (
            low_since is not None
            and self._low_records >= 2
            and self._clock.now() - low_since >= STANDSTILL_CONFIRM_S
        ):
            return BeltState.STANDING
        # Standstill reported once, not yet confirmed: treat as still possibly moving.
        return BeltState.MOVING

    def shows_motion(self) -> bool:
        """The last fresh record shows the belt above the standstill speed."""
        return self.fresh() and self._speed is not None and self._speed > STANDSTILL_KMH

    def standing_for_s(self) -> float:
        """How long the belt has been measured standing (0 unless STANDING)."""
        if self.state() is not BeltState.STANDING or self._low_since is None:
            return 0.0
        return self._clock.now() - self._low_since

    @property
    def speed_kmh(self) -> float | None:
        """The last measured speed while the data is fresh, else None."""
        return self._speed if self.fresh() else None

    @property
    def incline_pct(self) -> float | None:
        return self._incline if self.fresh() else None

    @property
    def last_record_at(self) -> float | None:
        return self._record_at

    @property
    def last_moved_at(self) -> float | None:
        """Clock time of the last record that showed the belt moving."""
        return self._moved_at

    # ------------------------------------------------------------------ waiting

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Wait (clock time) until `condition()` holds, re-checked on every record and at
        least once a second; True if it held before `timeout_s` ran out."""
        deadline = self._clock.now() + timeout_s
        while True:
            if condition():
                return True
            left = deadline - self._clock.now()
            if left <= 0:
                return False
            # Standing is confirmed by time passing as well as by records: look again at least
            # once a second.
            await sleep_until_set(self._changed, min(left, STANDSTILL_CONFIRM_S), self._clock)

    async def wait_standing(self, timeout_s: float, *, for_s: float = 0.0) -> bool:
        """Wait until the belt is measured standing (for at least `for_s`)."""

        def standing() -> bool:
            return self.state() is BeltState.STANDING and self.standing_for_s() + 1e-9 >= for_s

        return await self.wait_until(standing, timeout_s)
