"""The async runtime every layer shares: no bleak, no aiomqtt, nothing of treadmills.

- `clock`: the injected `Clock` (`LoopClock`, `ScaledClock`, `VirtualTimeEventLoop`).
- `waiting`: wait on events, futures or a deadline on that clock (`wait_any`,
  `sleep_until_set`, `wait_for_on_clock`, `until_set`).
- `fanout`: `FanOut`, events to subscribers with bounded queues (overflow policy in its doc).
- `background`: `Background`, shielded operations that finish when their caller leaves.
- `backoff`: `Backoff`, the one capped, jittered retry delay.
"""

from treadmilld.runtime.background import Background
from treadmilld.runtime.backoff import Backoff
from treadmilld.runtime.clock import Clock, LoopClock, ScaledClock, VirtualTimeEventLoop
from treadmilld.runtime.fanout import FanOut, Subscription
from treadmilld.runtime.waiting import sleep_until_set, until_set, wait_any, wait_for_on_clock

__all__ = [
    "Background",
    "Backoff",
    "Clock",
    "FanOut",
    "LoopClock",
    "ScaledClock",
    "Subscription",
    "VirtualTimeEventLoop",
    "sleep_until_set",
    "until_set",
    "wait_any",
    "wait_for_on_clock",
]
