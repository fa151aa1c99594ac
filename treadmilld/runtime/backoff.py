"""The one retry backoff: exponential, capped, jittered, with a random generator of its own.

The Bluetooth link, the MQTT link and the supervisor's restarts all wait this way; they differ
only in their numbers (initial delay, cap, growth, jitter range), which their settings give.
"""

from __future__ import annotations

import random

# Exponents beyond this are never needed (2**64 times any initial delay is past every cap) and
# would overflow a float for large multipliers: a treadmill off for a week must not crash us.
_MAX_EXPONENT = 64


class Backoff:
    """Delays between attempts: `initial_s * multiplier**n`, capped at `maximum_s`, times a
    random factor drawn uniformly from `jitter` (low, high), capped again.

    Jitter spreads retries out so several treadmills or daemons do not retry in lockstep (a
    restarted broker or Bluetooth adapter is not hit all at once). Each instance draws from its
    own `random.Random` (seeded from the OS unless one is given): never the module-global
    generator, which any library may reseed or draw from, and a test can pass
    `random.Random(seed)` for a reproducible sequence.
    """

    def __init__(
        self,
        *,
        initial_s: float,
        maximum_s: float,
        multiplier: float = 2.0,
        jitter: tuple[float, float] = (1.0, 1.0),
        rng: random.Random | None = None,
    ) -> None:
        low, high = jitter
        if not 0 < initial_s <= maximum_s:
            raise ValueError(
                f"backoff needs 0 < initial_s <= maximum_s, got {initial_s} and {maximum_s}"
            )
        if multiplier < 1.0:
            raise ValueError(f"backoff multiplier must be at least 1, got {multiplier}")
        if not 0 < low <= high:
            raise ValueError(f"backoff jitter must be a range 0 < low <= high, got {jitter}")
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.multiplier = multiplier
        self.jitter = (low, high)
        # Jitter only spreads retries out; it needs no cryptographic randomness.
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter
        self._failures = 0

    def base(self, attempt: int) -> float:
        """The delay before retry number `attempt` (0: the first retry), before jitter."""
        exponent = min(max(0, attempt), _MAX_EXPONENT)
        return min(self.maximum_s, self.initial_s * self.multiplier**exponent)

    def delay(self, attempt: int) -> float:
        """A jittered delay before retry number `attempt` (0: the first retry); never more than
        `maximum_s`. For callers that count failures themselves."""
        low, high = self.jitter
        factor = self._rng.uniform(low, high)
        return min(self.maximum_s, self.base(attempt) * factor)

    @property
    def failures(self) -> int:
        """Failures counted by `next_delay` since the last reset (stops growing at the cap)."""
        return self._failures

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        delay = self.delay(self._failures)
        if self.base(self._failures) < self.maximum_s:
            # Stop counting once capped: the count says how far up the curve we are.
            self._failures += 1
        return delay

    def reset(self) -> None:
        """Start again from `initial_s` (after a long healthy run)."""
        self._failures = 0
