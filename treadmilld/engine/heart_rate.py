"""Heart-rate readings filtered before anything acts on them, pure: a plausible range, no reading
without skin contact, zero refused, a single-sample spike held back until the next reading
confirms it; and which source counts (a strap while it is fresh, else the treadmill's own
field).

Only filtered readings reach the governor's heart-rate guard and the zone controller; the raw
value of each source stays visible beside them (`HeartRateSources.raw_bpm`). docs/safety.md
("Heart rate") lists the constants with their sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Plausible heart rates. Below 30 bpm a walking person is not measured right (a strap slipping,
# a treadmill's hand grips half touched); 30 is under the resting rate of trained athletes
# (about 40 bpm) [D]. The highest predicted maximum for anyone who could be on a treadmill is
# about 208 bpm at age 0 (Tanaka et al. 2001: HRmax = 208 - 0.7 x age); 230 leaves room for a
# person above their prediction and refuses the rest [D].
MIN_PLAUSIBLE_BPM = 30
MAX_PLAUSIBLE_BPM = 230
# [D] The fastest real change: at the onset of exercise heart rate rises by some tens of bpm
# over about ten seconds (vagal withdrawal, the fast phase of heart-rate kinetics), a few bpm
# per second. A jump faster than 25 bpm/s between two readings is a strap artefact (a spike)
# unless the next reading confirms it.
MAX_CHANGE_BPM_PER_S = 25.0
# A reading counts this long: a strap notifies about once a second (Heart Rate Measurement,
# Heart Rate Service 1.0), the treadmill's data likewise (FTMS v1.0.1 §4.4.1); five missed
# readings and the value is no longer the rider's heart rate [D].
FRESH_FOR_S = 5.0


class HeartRateSource(StrEnum):
    STRAP = "strap"
    TREADMILL = "treadmill"


class Rejection(StrEnum):
    """Why a reading was not accepted."""

    MISSING = "missing"  # no value at all
    NO_CONTACT = "no_contact"  # the strap says it has no skin contact
    ZERO = "zero"
    OUT_OF_RANGE = "out_of_range"
    SPIKE = "spike"  # held back: accepted only if the next reading confirms it


@dataclass(frozen=True, slots=True)
class HeartRateReading:
    """A filtered heart rate: what the governor and the zone controller act on."""

    bpm: int
    at: float  # clock time of the reading
    source: HeartRateSource


class HeartRateFilter:
    """One source's readings, filtered. `feed` returns the accepted reading or the rejection."""

    def __init__(self, source: HeartRateSource) -> None:
        self.source = source
        self._last: HeartRateReading | None = None
        self._held: tuple[int, float] | None = None  # a spike waiting for confirmation
        self.raw_bpm: int | None = None
        self.raw_at: float | None = None

    def feed(
        self, bpm: int | None, contact: bool | None, at: float
    ) -> HeartRateReading | Rejection:
        self.raw_bpm, self.raw_at = bpm, at
        if contact is False:
            # Sensor Contact Status "not detected" (Heart Rate Measurement flags): the value, if
            # any, is not the rider's. What came before it says nothing about what comes after.
            self._last, self._held = None, None
            return Rejection.NO_CONTACT
        invalid = _invalid(bpm)
        if invalid is not None or bpm is None:
            return invalid or Rejection.MISSING
        held, self._held = self._held, None
        last = self._last
        if held is not None and _within_rate(held[0], held[1], bpm, at):
            # The next reading confirms the jump: the heart really is there.
            return self._accept(bpm, at)
        recent = last is not None and at - last.at <= FRESH_FOR_S
        if recent and last is not None and not _within_rate(last.bpm, last.at, bpm, at):
            self._held = (bpm, at)
            return Rejection.SPIKE
        return self._accept(bpm, at)

    def _accept(self, bpm: int, at: float) -> HeartRateReading:
        reading = HeartRateReading(bpm=bpm, at=at, source=self.source)
        self._last = reading
        return reading

    def fresh(self, now: float) -> HeartRateReading | None:
        """The last accepted reading while it is fresh."""
        last = self._last
        if last is None or now - last.at > FRESH_FOR_S:
            return None
        return last


def _invalid(bpm: int | None) -> Rejection | None:
    if bpm is None:
        return Rejection.MISSING
    if bpm == 0:
        return Rejection.ZERO
    if not MIN_PLAUSIBLE_BPM <= bpm <= MAX_PLAUSIBLE_BPM:
        return Rejection.OUT_OF_RANGE
    return None


def _within_rate(bpm_a: int, at_a: float, bpm_b: int, at_b: float) -> bool:
    # Readings in the same instant count as one second apart (a strap's notifications are).
    span = max(at_b - at_a, 1.0)
    return abs(bpm_b - bpm_a) <= MAX_CHANGE_BPM_PER_S * span


class HeartRateSources:
    """The strap and the treadmill's own field, each filtered; the strap counts while fresh."""

    def __init__(self) -> None:
        self.strap = HeartRateFilter(HeartRateSource.STRAP)
        self.treadmill = HeartRateFilter(HeartRateSource.TREADMILL)

    def current(self, now: float) -> HeartRateReading | None:
        """The heart rate to act on now: the strap's while fresh, else the treadmill's."""
        return self.strap.fresh(now) or self.treadmill.fresh(now)

    def raw_bpm(self, now: float) -> int | None:
        """The last raw value of the source that counts (the strap while it sends), as received."""
        for source in (self.strap, self.treadmill):
            if source.raw_at is not None and now - source.raw_at <= FRESH_FOR_S:
                return source.raw_bpm
        return None

    def reset(self) -> None:
        self.strap = HeartRateFilter(HeartRateSource.STRAP)
        self.treadmill = HeartRateFilter(HeartRateSource.TREADMILL)
