"""How the supervisor restarts a failing task: the failures counted in a row, and the wait.

A task that ran `healthy_after_s` without failing starts counting again from one, so a
failure after a long healthy run waits `initial_s`, not the capped delay of an old streak.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from treadmilld.runtime.backoff import Backoff
from treadmilld.runtime.clock import Clock


@dataclass(frozen=True)
class RestartPolicy:
    """Capped, jittered exponential backoff for a treadmill's failing task."""

    initial_s: float = 1.0
    maximum_s: float = 30.0
    # A task that ran this long without failing starts again from `initial_s`.
    healthy_after_s: float = 60.0

    def backoff(self, rng: random.Random | None = None) -> Backoff:
        """Doubling delays from `initial_s` up to `maximum_s`; jitter (x0.8 to x1.2) keeps
        several treadmills from retrying in lockstep."""
        return Backoff(
            initial_s=self.initial_s, maximum_s=self.maximum_s, jitter=(0.8, 1.2), rng=rng
        )


@dataclass
class Restarts:
    """One policy's backoff, shared by every task the supervisor restarts, on its clock."""

    policy: RestartPolicy
    clock: Clock
    _backoff: Backoff = field(init=False)

    def __post_init__(self) -> None:
        self._backoff = self.policy.backoff()

    def delay(self, failures: int) -> float:
        """The wait before a restart after `failures` failures in a row (1: the first)."""
        return self._backoff.delay(failures - 1)

    def count_failure(self, failures: int, started: float) -> int:
        """The failures in a row, this one included, of a task that started at `started`."""
        if self.clock.now() - started >= self.policy.healthy_after_s:
            return 1
        return failures + 1
