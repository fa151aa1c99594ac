"""The safety governor's books: what it has told the deck (the belt moving or not, the
targets the deck holds), how fast the deck answers, and, in `ControlState`, all of that with the
turn tracker and the belt judge, the one state its parts share.

A write cut short (cancelled by an abort, a lost link, no answer) may or may not have reached
the deck, so each target keeps the highest value the deck may hold, which a Start has to bring
down (a deck that resumes at its last target goes back to it; docs/safety.md). The governor
decides what to write; these write it on the link it holds and keep the books.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from treadmilld.ble.api import TreadmillLink
from treadmilld.engine.api import Direction
from treadmilld.engine.belt import BeltObserver
from treadmilld.engine.belt_judge import BeltJudge
from treadmilld.engine.limits import EffectiveLimits
from treadmilld.engine.turns import TurnTracker
from treadmilld.runtime.clock import Clock

# How many recent Control Point answer times the backward margin looks at.
ANSWER_TIMES_KEPT = 10


class CommandedBelt:
    """The belt as commanded: Start written and no Stop/Pause since, a Start or a Stop on its
    way, the backward time walked in this workout before the current spell."""

    def __init__(self) -> None:
        self.moving = False
        self.moving_since = 0.0
        self.start_in_flight = False
        # A Stop or Pause to a belt told to move is on its way: the deck acts on it when it
        # answers, and records until then may still show the belt under the Start.
        self.halt_pending = False
        self.backward_before_s = 0.0

    @property
    def told_to_move(self) -> bool:
        """Moving, or a Start on its way that may set it moving."""
        return self.moving or self.start_in_flight

    def started(self, now: float) -> None:
        self.moving = True
        self.moving_since = now
        self.halt_pending = False

    def halted(self, now: float, facing: Direction | None) -> None:
        """Told to stop or pause (or stopped by the treadmill): a backward spell ends."""
        self.backward_before_s = self.backward_used_s(now, facing)
        self.moving = False

    def backward_used_s(self, now: float, facing: Direction | None) -> float:
        used = self.backward_before_s
        if self.moving and facing is Direction.BACKWARD:
            used += now - self.moving_since
        return used

    def new_workout(self, now: float) -> None:
        """The backward time counts anew; a belt still moving counts from now."""
        self.backward_before_s = 0.0
        if self.moving:
            self.moving_since = now


class SpeedTarget:
    def __init__(self) -> None:
        # Last target written (or set at the console; after a Start that had to go before it,
        # the restart speed on its way).
        self.kmh: float | None = None
        self.written_at = -math.inf
        # A speed write on its way to the deck (the belt may follow it before we hear back).
        self.in_flight: float | None = None
        # The highest speed target the deck may still hold, which a deck that resumes at its
        # last target goes back to on Start (docs/safety.md); None when unknown (after a
        # connect, or once the console may have set one). Stop and Pause leave it as it is.
        self.held_kmh: float | None = None
        # The deck refused a speed written while its belt stood: Start has to go first on it.
        self.refused_while_standing = False

    @property
    def highest_kmh(self) -> float:
        """The last target, or a higher one still on its way to the deck."""
        return max(self.kmh or 0.0, self.in_flight or 0.0)

    def set(self, kmh: float, at: float) -> None:
        self.kmh = kmh
        self.written_at = at

    async def write(self, link: TreadmillLink, speed_kmh: float) -> float:
        """Set Target Speed, keeping `held_kmh`: the value written once answered; if the write
        is cut short or refused, the higher of the two, as the deck may have taken it."""
        try:
            written = await link.set_target_speed(speed_kmh)
        except BaseException:
            if self.held_kmh is not None:
                self.held_kmh = max(self.held_kmh, speed_kmh)
            raise
        self.held_kmh = written
        return written

    def set_at_console(self, speed_kmh: float) -> None:
        """Target Speed Changed arrived: the deck may hold it (the target itself follows it only
        while the belt is told to move, `SafetyGovernor.note_console_speed`)."""
        if self.held_kmh is not None:
            self.held_kmh = max(self.held_kmh, speed_kmh)

    def forget(self) -> None:
        self.kmh = None
        self.held_kmh = None


class InclineTarget:
    def __init__(self, clock: Clock, answers: AnswerTimes) -> None:
        self._clock = clock
        self._answers = answers
        self.pct: float | None = None
        # The incline last asked of the deck, beside `pct`, what the deck made of it: a deck
        # that sets incline by table index (docs/decks.md) settles on the entry below the ask,
        # and asking again would rewrite the same value every tick.
        self.asked: float | None = None
        # The highest incline target the deck may hold after a write was cut short (cancelled by
        # an abort or emergency stop while the deck had not answered yet): the deck may have
        # taken it, so `pct` is unknown, but a Start must still bring this down.
        self.cut_short: float | None = None

    @property
    def may_hold_pct(self) -> float | None:
        """The target the deck holds, or, when unknown, the highest a write cut short may have
        left it heading for (soak seed 800: the 6 % write an emergency stop cancelled)."""
        return self.pct if self.pct is not None else self.cut_short

    async def write(self, link: TreadmillLink, incline_pct: float) -> float:
        asked_at = self._clock.now()
        try:
            written = await link.set_target_inclination(incline_pct)
        except BaseException:
            # Cut short (cancelled, lost link, no answer): the deck may hold the old target or
            # this one. Unknown from now on, so the next ask is written; the higher of the two
            # is what a Start must bring down (`may_hold_pct`).
            previous = self.may_hold_pct
            self.cut_short = max(incline_pct, previous or -math.inf)
            self.pct = None
            self.asked = None
            raise
        self._answers.took(self._clock.now() - asked_at)
        self.pct = written
        self.asked = incline_pct
        self.cut_short = None
        return written

    def set_at_console(self, incline_pct: float) -> None:
        self.pct = incline_pct
        self.asked = incline_pct
        self.cut_short = None

    def forget(self) -> None:
        """Unknown (after a reconnect): the next ask is written."""
        self.pct = None
        self.asked = None

    def zeroed(self) -> None:
        """Reset set the deck's incline target to zero: the next ask is written."""
        self.forget()
        self.cut_short = None


class AnswerTimes:
    """How long the deck took to answer its recent writes (seconds of clock time)."""

    def __init__(self) -> None:
        self._times: list[float] = []

    def took(self, seconds: float) -> None:
        self._times.append(seconds)
        del self._times[:-ANSWER_TIMES_KEPT]

    @property
    def slowest_s(self) -> float:
        return max(self._times, default=0.0)


class ControlState:
    """Everything the governor keeps about one treadmill's belt, shared by its parts."""

    def __init__(
        self,
        observer: BeltObserver,
        clock: Clock,
        limits: Callable[[], EffectiveLimits | None],
    ) -> None:
        self.belt = CommandedBelt()
        self.turns = TurnTracker(observer)
        self.judge = BeltJudge(observer, clock, limits)
        self.answers = AnswerTimes()
        self.speed = SpeedTarget()
        self.incline = InclineTarget(clock, self.answers)
