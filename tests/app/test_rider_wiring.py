"""The bridge's rider arguments from the daemon's history service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

from treadmilld.app.rider_wiring import bridge_rider_arguments
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import SafetyLimits
from treadmilld.mqtt.rider_requests import WorkoutRecorderSeam
from treadmilld.programs import ProgramLibrary
from treadmilld.riders.api import RiderFields
from treadmilld.store.api import Store, open_store, sqlite_url


@dataclass
class History:
    """The history service as riders see it: its store (opened on first use, counted),
    recorders and programs."""

    opened_store: Store
    programs: ProgramLibrary
    recorders: Mapping[str, WorkoutRecorderSeam] = field(default_factory=dict)
    opened: int = 0

    async def store(self) -> Store:
        self.opened += 1
        return self.opened_store

    async def any_riders(self) -> bool:
        return bool(await self.opened_store.list_riders())


async def test_riders_work_on_the_history_services_store_and_none_without_one(
    tmp_path: Path,
) -> None:
    profiles = ProfileLibrary()
    assert bridge_rider_arguments(None, profiles, SafetyLimits(), UTC) == {}
    async with await open_store(sqlite_url(tmp_path)) as store:
        history = History(store, ProgramLibrary(profiles))
        arguments = bridge_rider_arguments(history, profiles, SafetyLimits(), UTC)
        assert arguments["recorders"] is history.recorders
        # The store (SQLAlchemy) is opened when riders are first asked for, not before, and
        # listing riders where there are none (every broker connect does) does not open it.
        assert await arguments["riders"].list_riders() == []
        assert history.opened == 0
        await arguments["riders"].create(
            RiderFields(rider_id="r-17", display_name="Anna", body_weight_kg=64.0)
        )
        assert [rider.rider_id for rider in await store.list_riders()] == ["r-17"]
        assert history.opened >= 1
