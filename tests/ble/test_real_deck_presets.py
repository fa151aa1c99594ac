"""Every real-deck preset of the simulator, driven by the link through the real BleakClient.

The link is told nothing about the deck: it finds it by name, picks its quirk set from the
advertised name, and must start it, set its speed and incline (where it has one) and stop it.
The simulator's backend refuses what BlueZ refuses (a Write Request to a Control Point without
Write, a subscription to a characteristic that cannot notify), so a wrong write mode fails here
as it would on a Pi.
"""

from __future__ import annotations

import pytest
from treadmilld_sim import RunningState, SimulatedFleet, SimulatedTreadmillConfig
from treadmilld_sim.presets import PRESETS

from tests.ble.harness import record_requests, running_link
from treadmilld.ble.api import ControlTimeoutError
from treadmilld.ble.config import LinkSettings, TargetSelector
from treadmilld.ble.discovery import scan
from treadmilld.ftms import RequestControl, StopKind, StopOrPause


@pytest.mark.parametrize("preset", sorted(PRESETS))
async def test_each_preset_is_found_and_driven_with_the_quirks_its_name_picks(
    fleet: SimulatedFleet, preset: str
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(preset=preset))
    name = treadmill.config.name
    heard = await scan(3.0, backend=fleet.scanner_backend, clock=fleet.clock)
    assert [(t.name, t.has_service_data, t.available) for t in heard] == [(name, True, True)]

    async with running_link(fleet, target=TargetSelector(name_contains=name)) as lut:
        connected = await lut.connected()
        assert lut.link.quirks is not None
        # fitshow-bc11b7 is picked as `fitshow` (same behaviour; "BC11B7" is an address suffix).
        expected = {"fitshow-bc11b7": "fitshow"}.get(preset, preset)
        assert lut.link.quirks.name == expected
        await lut.link.start_belt()
        await lut.telemetry_where(lambda t: t.belt_moving)
        written = await lut.link.set_target_speed(2.0)
        assert written <= 2.0
        await lut.belt_at(written)
        inclines = connected.capabilities.inclination_range
        if inclines is not None and inclines.maximum_pct > 0:
            incline = await lut.link.set_target_inclination(3.8)
            assert incline <= 3.8
            # The deck's own belt reaches the incline the link says it set.
            await lut.telemetry_where(lambda t: t.data.inclination_pct == incline)
        await lut.link.stop_belt()
        standing = await lut.telemetry_where(lambda t: not t.belt_moving)
    assert standing.data.instantaneous_speed_kmh == 0.0
    assert treadmill.model.running_state is not RunningState.RUNNING


async def test_the_urevo_e1l_is_driven_by_its_properties_alone(fleet: SimulatedFleet) -> None:
    # Standard quirks: Write Without Response is chosen because that is all its Control Point
    # offers; a Write Request would be refused by the deck.
    treadmill = await fleet.add(SimulatedTreadmillConfig(preset="urevo-e1l"))
    settings = LinkSettings(quirks="standard")
    async with running_link(fleet, treadmill, settings=settings) as lut:
        await lut.connected()
        await lut.link.start_belt()
        await lut.belt_at(await lut.link.set_target_speed(3.0))


async def test_a_kingsmith_mc21_without_its_unlock_times_out_but_a_stop_goes_out_at_once(
    fleet: SimulatedFleet,
) -> None:
    # The contrast that shows the unlock matters, and that a Stop never waits behind a Request
    # Control the locked deck leaves unanswered.
    treadmill = await fleet.add(SimulatedTreadmillConfig(preset="kingsmith-mc21"))
    requests = record_requests(treadmill)
    settings = LinkSettings(quirks="kingsmith", control_response_timeout_s=2.0)
    async with running_link(fleet, treadmill, settings=settings) as lut:
        await lut.connected()
        with pytest.raises(ControlTimeoutError, match="Request Control"):
            await lut.link.start_belt()
        asked_at = fleet.clock.now()
        with pytest.raises(ControlTimeoutError, match="no answer to Stop within 2 s"):
            await lut.link.stop_belt()
        assert fleet.clock.now() - asked_at < 2.1  # one timeout, not two
    assert requests == [RequestControl(), StopOrPause(StopKind.STOP)]
