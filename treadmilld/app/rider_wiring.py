"""The rider service for the MQTT bridge, from the daemon's history service.

The history service (the store, each treadmill's workout recorder and the program library,
`treadmilld/app/history_service.py`) is built by the assembly; this module only turns it into
the bridge's `riders` and `recorders` arguments, so wiring riders in is one call there.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Protocol

from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import SafetyLimits
from treadmilld.mqtt.rider_requests import WorkoutRecorderSeam
from treadmilld.programs import ProgramLibrary

if TYPE_CHECKING:
    from treadmilld.store.repository import Store


class HistoryServiceSeam(Protocol):
    """What riders need of the history service."""

    async def store(self) -> Store:
        """The store, opened on first use (it loads SQLAlchemy)."""
        ...

    async def any_riders(self) -> bool:
        """Whether there is any rider, without opening the store."""
        ...

    @property
    def recorders(self) -> Mapping[str, WorkoutRecorderSeam]: ...

    @property
    def programs(self) -> ProgramLibrary: ...


def bridge_rider_arguments(
    history: HistoryServiceSeam | None,
    profiles: ProfileLibrary,
    limits: SafetyLimits,
    time_zone: tzinfo,
) -> dict[str, Any]:
    """`MqttBridge`'s `riders` and `recorders` for a daemon keeping history; none without
    (rider requests are then refused with `riders_unavailable`). Program weeks are counted
    in `time_zone` (`[programs] time_zone`)."""
    if history is None:
        return {}
    # Imported here: the store (SQLAlchemy) only in a daemon that keeps history.
    from treadmilld.riders.service import RiderService, clock_in  # noqa: PLC0415

    return {
        "riders": RiderService(
            history.store,
            history.programs,
            profiles,
            limits,
            now=clock_in(time_zone),
            any_riders=history.any_riders,
        ),
        "recorders": history.recorders,
    }
