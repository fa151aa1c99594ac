"""Which way the person faces and when moving a way is a turn, for the safety governor.

The belt may move with the person facing the other way only after it has been *measured*
standing for at least the turn time. The last direction walked (before any walk: the way the
first walking segment told the person to step on) is remembered across workouts and aborts, so
any change of direction goes through a turn. `TurnTracker` is a part of `SafetyGovernor`: the
governor tells it what was announced, started and counted down, and asks it how long a Start
must still wait with the turn time it holds.
"""

from __future__ import annotations

import math

from treadmilld.engine.api import BeltState, Direction
from treadmilld.engine.belt import BeltObserver


class TurnTracker:
    def __init__(self, observer: BeltObserver) -> None:
        self._observer = observer
        # The way the person last walked (or faces to walk), kept across workouts and aborts so
        # that any change of direction goes through a turn.
        self.facing: Direction | None = None
        # A turn the person was told to make ("turn now") before the belt moved again: they
        # may face either way until the belt has moved again. Before they have walked at all,
        # also the way the first walking segment told them to step on (`segment_announced`).
        self._announced: Direction | None = None
        self._counted_down_to: Direction | None = None

    def direction_changes(self, facing: Direction) -> bool:
        """Moving with the person facing `facing` is a change of direction: from the way they
        last walked, or from a turn they were told to make (or a Start that was never
        answered, which may have turned the belt their way), or, before they have walked at all,
        from the way a segment told them to step on."""
        if facing is Direction.REST:
            return False
        announced = self._announced
        if announced is not None and announced is not facing:
            return True
        return self.facing is not None and facing is not self.facing

    def needs_turn(self, facing: Direction) -> bool:
        """The turn protocol ("turn now", the standing time, the countdown) must run before the
        belt moves this way, however long it has stood: a change of direction whose countdown
        has not run yet."""
        return self.direction_changes(facing) and self._counted_down_to is not facing

    def wait_s(self, facing: Direction, turn_pause_s: float) -> float:
        """Seconds of measured standing still needed before the belt may move with the person
        facing `facing` (0 when no turn is involved). Infinite while the belt is not measured
        standing."""
        if not self.direction_changes(facing):
            return 0.0
        if self._observer.state() is not BeltState.STANDING:
            return math.inf
        return max(turn_pause_s - self._observer.standing_for_s(), 0.0)

    def counted_down(self, facing: Direction) -> None:
        """The countdown to `facing` ran to its end: the next Start that way needs no other."""
        self._counted_down_to = facing

    def segment_announced(self, facing: Direction) -> None:
        """A walking segment told the person to walk facing `facing`. Before they have walked
        at all, that is the way they now stand, whether or not the belt ever starts: a workout
        aborted before its Start was even sent (the safety key pulled while the restart speed
        was on its way, soak seed 500) leaves them facing it, and the next workout that walks
        the other way must run the turn first. Once they have walked, a change of direction is
        a turn already (the executor runs it before the Start, and says "turn now")."""
        if facing is Direction.REST or self.facing is not None:
            return
        if self._announced is None:
            self._announced = facing

    def turn_announced(self, facing: Direction) -> None:
        """The person was told to turn to `facing`: until the belt moves again, moving either
        way needs the full turn time standing (they may have turned, or not)."""
        self._announced = facing
        self._counted_down_to = None

    def new_workout(self) -> None:
        """A countdown heard in an earlier workout does not count for this one."""
        self._counted_down_to = None

    def start_sent(self, facing: Direction) -> None:
        """Start is on its way: until it is answered the person may face either way; if it
        never is (an abort mid-write), the next workout turns whichever way it walks."""
        if self.facing is not facing:
            self.turn_announced(facing)

    def started(self, facing: Direction) -> None:
        """Start was answered: the person faces `facing`."""
        self.facing = facing
        self._announced = None
        self._counted_down_to = None
