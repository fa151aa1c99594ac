"""Every real-deck preset of the simulator, driven end to end with no per-deck special case.

For each preset (docs/decks.md lists them with their sources) the daemon discovers the deck
through a real `BleakScanner`, then the workout session runs over the real `BleTreadmillLink`
(real `BleakClient`) against it on Bumble, in virtual time: the whole `p2-retro-core` profile
with its six turns, an emergency stop, and a link drop. The checks are on the deck's own belt,
as the person on it would feel it: standing through every turn, never faster than the
profile, stopped and never restarted after an abort.

The link picks its quirks from the advertised name exactly as it does on a Pi; nothing here
tells it which deck it is talking to.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from treadmilld_sim import RunningState, SimulatedFleet, SimulatedTreadmillConfig
from treadmilld_sim.presets import PRESETS

from treadmilld.ble.bleak_io import BleakGattBackend
from treadmilld.ble.discovery import scan_with
from treadmilld.engine.api import AbortReason, Phase, StopOutcome, WorkoutAborted
from treadmilld.engine.belt import SPEED_TOLERANCE_KMH
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.profile import parse_profile
from treadmilld.ftms import MachineType, SetTargetInclination, SetTargetSpeed, StartOrResume
from treadmilld.runtime.clock import LoopClock

from .sim_rig import BeltSample, SimRig, sim_rig

PRESET_NAMES = sorted(PRESETS)

# p2-retro-core: forward, then three backward blocks each followed by forward (7 blocks, six
# turns), its own turn pause of 10 s (profiles/p2-retro-core.toml).
P2_BLOCKS = 7
P2_TURN_PAUSE_S = 10.0
P2_FASTEST_KMH = 4.0
P2_BACKWARD_KMH = 3.0
# The sampler looks at the belt every 0.1 s: a gap can look one sample shorter than it was.
SAMPLE_SLACK_S = 0.1


def preset_deck(preset: str) -> SimulatedTreadmillConfig:
    return SimulatedTreadmillConfig(preset=preset)


def moving_runs(belt: list[BeltSample]) -> list[tuple[float, float, float]]:
    """Maximal stretches of belt motion: (first moving sample, last moving sample, top speed)."""
    runs: list[tuple[float, float, float]] = []
    start: float | None = None
    last = top = 0.0
    for sample in belt:
        if sample.speed_kmh > 0.0:
            if start is None:
                start, top = sample.at, 0.0
            last, top = sample.at, max(top, sample.speed_kmh)
        elif start is not None:
            runs.append((start, last, top))
            start = None
    if start is not None:
        runs.append((start, last, top))
    return runs


def aborted(rig: SimRig) -> WorkoutAborted:
    events = [e for e in rig.events if isinstance(e, WorkoutAborted)]
    assert len(events) == 1, events
    return events[0]


@pytest.mark.parametrize("preset", PRESET_NAMES)
async def test_each_preset_is_discovered_as_a_treadmill(preset: str) -> None:
    async with SimulatedFleet(LoopClock()) as fleet:
        deck = await fleet.add(preset_deck(preset))
        backend = BleakGattBackend(fleet.clock, scanner_backend=fleet.scanner_backend)
        heard = await scan_with(backend, 5.0)
    found = [t for t in heard if t.address == deck.address]
    assert len(found) == 1, heard
    assert found[0].name == deck.config.name
    assert MachineType.TREADMILL in found[0].machine_types
    assert found[0].available


@pytest.mark.parametrize("preset", PRESET_NAMES)
async def test_each_preset_walks_p2_retro_core_standing_through_every_turn(preset: str) -> None:
    async with sim_rig(preset_deck(preset)) as rig:
        await rig.session.start_profile("p2-retro-core")
        await rig.wait_for("workout_finished")
        await rig.standing()
        belt = list(rig.belt)
    runs = moving_runs(belt)
    # One stretch of motion per block: the belt stood between every forward and backward one.
    assert len(runs) == P2_BLOCKS, runs
    for (_, ended, _), (began, _, _) in itertools.pairwise(runs):
        assert began - ended >= P2_TURN_PAUSE_S - SAMPLE_SLACK_S, (ended, began)
    for index, (_, _, top) in enumerate(runs):
        cap = P2_BACKWARD_KMH if index % 2 == 1 else P2_FASTEST_KMH
        assert top <= cap + SPEED_TOLERANCE_KMH, (index, top)
    # The workout did not end on a belt still creeping along.
    assert belt[-1].speed_kmh == 0.0
    assert rig.session.snapshot().phase is Phase.FINISHED


@pytest.mark.parametrize("preset", PRESET_NAMES)
async def test_each_preset_stops_on_an_emergency_stop_and_stays_stopped(preset: str) -> None:
    async with sim_rig(preset_deck(preset)) as rig:
        await rig.session.start_profile("p2-retro-core")
        await rig.wait_for("segment_started")
        await asyncio.sleep(120.0)  # walking forward at 4 km/h
        assert rig.deck.model.belt_speed_kmh > 1.0
        outcome = await rig.session.emergency_stop()
        assert outcome in {StopOutcome.STOP_SENT, StopOutcome.BELT_STANDING}
        stopped_at = rig.clock.now()
        await rig.wait_for("stop_confirmed")
        await asyncio.sleep(300.0)
        later = [s for s in rig.belt if s.at > stopped_at + 30.0]
    assert later
    assert all(s.speed_kmh == 0.0 for s in later)
    assert not [r for r in rig.requests_after(stopped_at) if isinstance(r, StartOrResume)]


@pytest.mark.parametrize("preset", PRESET_NAMES)
async def test_each_preset_aborts_on_a_link_drop_and_never_resumes(preset: str) -> None:
    async with sim_rig(preset_deck(preset)) as rig:
        await rig.session.start_profile("p2-retro-core")
        await rig.wait_for("segment_started")
        await asyncio.sleep(240.0)  # into the first backward block
        dropped_at = rig.clock.now()
        await rig.deck.drop_link()
        assert aborted_within(rig, await rig.wait_for("workout_aborted"))
        await rig.connected()
        await rig.standing()
        await asyncio.sleep(600.0)
        assert rig.deck.model.running_state is not RunningState.RUNNING
        after = rig.requests_after(dropped_at)
    assert not [r for r in after if isinstance(r, StartOrResume | SetTargetSpeed)]
    assert rig.session.snapshot().phase is Phase.ABORTED


def aborted_within(rig: SimRig, event: object) -> bool:
    assert isinstance(event, WorkoutAborted)
    assert event.reason is AbortReason.LINK_LOST
    return aborted(rig) is event


async def test_a_horizon_deck_stopping_itself_after_30_minutes_ends_the_workout() -> None:
    # qdomyos-zwift#1128: Horizon decks stop on their own after 30 minutes. The daemon must take
    # it as a console stop: abort, never start the belt again.
    async with sim_rig(preset_deck("horizon"), sample_belt=False) as rig:
        await rig.session.start_profile("forward-walk")  # 45 minutes
        event = await rig.wait_for("workout_aborted")
        assert isinstance(event, WorkoutAborted)
        assert event.reason in {AbortReason.BELT_STOPPED, AbortReason.STOPPED_AT_CONSOLE}
        stopped_at = rig.clock.now()
        await asyncio.sleep(900.0)
        assert rig.deck.model.belt_speed_kmh == 0.0
        assert not [r for r in rig.requests_after(stopped_at) if isinstance(r, StartOrResume)]


def test_every_preset_is_driven_here() -> None:
    # A preset added to the simulator is driven by the tests above without a change here;
    # this pins that the list is not empty and names the families the compatibility table
    # (docs/decks.md) promises.
    assert set(PRESET_NAMES) >= {
        "urevo-e1l",
        "fitshow-bc11b7",
        "horizon",
        "kingsmith-mc21",
        "incline-table",
        "belt-first",
    }
    assert "p2-retro-core" in ProfileLibrary().names()


INCLINED = ProfileLibrary.from_profiles(
    [
        parse_profile(
            'name = "inclined"\ntitle = "inclined"\ndescription = "test"\nsuits = "tests"\n'
            'sources = ["test"]\n'
            '[[segments]]\ndirection = "forward"\nduration_s = 300\nspeed_kmh = 4.0\n'
            "incline_pct = 2.5\n",
            file="inclined.toml",
        )
    ]
)


async def test_an_incline_between_two_table_entries_settles_on_the_lower_one_once() -> None:
    # The incline-table deck has 2.0 and 3.0 % but nothing between: 2.5 % is set as 2.0 % (never
    # steeper than asked), and written once, not again on every tick of the segment.
    async with sim_rig(preset_deck("incline-table"), library=INCLINED) as rig:
        await rig.session.start_profile("inclined")
        await rig.wait_for("workout_finished")
        inclines = [r for _, r in rig.requests if isinstance(r, SetTargetInclination)]
        top = max(sample.incline_pct for sample in rig.belt)
    assert top == pytest.approx(2.0)
    # Flat before the start, the table index for 2.0 % once walking, flat again at the end.
    assert len(inclines) <= 4, inclines


@pytest.mark.parametrize("preset", ["urevo-e1l", "kingsmith-mc21"])
async def test_a_deck_without_incline_is_never_sent_one(preset: str) -> None:
    # Both say "no incline" with an all-zero Supported Inclination Range (the E1L's real bytes):
    # a profile asking for an incline walks flat and no incline request reaches the deck.
    async with sim_rig(preset_deck(preset), library=INCLINED) as rig:
        await rig.session.start_profile("inclined")
        await rig.wait_for("workout_finished")
    assert not [r for _, r in rig.requests if isinstance(r, SetTargetInclination)]
    assert rig.of_type("workout_aborted") == []


@pytest.mark.parametrize("press", ["pause", "stop", "safety_key"])
async def test_a_belt_first_deck_stopped_unreported_at_the_console_ends_as_belt_stopped(
    press: str,
) -> None:
    # The 3G Cardio style deck refuses a speed while its belt is not running. Paused, stopped or
    # key pulled at the console with no Machine Status, it refuses the next ramp write: the
    # workout must end as the stop it was (belt_stopped), never as a failed command, and the
    # belt must not start again (property soak seeds 400 and 600, here over the real link).
    async with sim_rig(
        preset_deck("belt-first").model_copy(update={"report_console_status": False})
    ) as rig:
        await rig.session.start_profile("p2-retro-core")
        await rig.wait_for("segment_started")
        # Mid ramp-up to 4 km/h, while speed writes still go out every tick.
        await asyncio.sleep(8.0)
        model = rig.deck.model
        {"pause": model.press_pause, "stop": model.press_stop, "safety_key": model.pull_safety_key}[
            press
        ]()
        pressed_at = rig.clock.now()
        event = await rig.wait_for("workout_aborted")
        assert isinstance(event, WorkoutAborted)
        assert event.reason is AbortReason.BELT_STOPPED, event
        await asyncio.sleep(300.0)
        assert rig.deck.model.belt_speed_kmh == 0.0
        assert not [r for r in rig.requests_after(pressed_at) if isinstance(r, StartOrResume)]
