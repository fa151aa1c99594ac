"""Property tests: random profiles x random limits x random treadmills x random commands and
faults, run in virtual time; every governor invariant is checked on what reached the belt.

The expected limits are computed here from the inputs (not read back from the engine), so a
wrong combination in the engine shows up as a violation.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from treadmilld.clock import LoopClock
from treadmilld.engine.api import (
    AbortReason,
    CommandRejectedError,
    Direction,
    SegmentStarted,
    TurnCountdown,
    TurnNow,
    WorkoutAborted,
)
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import LimitSet, ProfileLimits, SafetyLimits
from treadmilld.engine.profile import Profile, RepeatBlock, Segment
from treadmilld.ftms import InclinationRange, SpeedRange, StopKind

from .doubles import (
    DropsLinkMidRun,
    GoesSilentMidRun,
    ObedientTreadmill,
    PausedAtConsoleMidRun,
    SafetyKeyPulledMidRun,
    Write,
)
from .harness import rig, run_in_virtual_time

TOLERANCE = 1e-6

# ----------------------------------------------------------------------------- strategies


def walking(directions: list[Direction]) -> st.SearchStrategy[Segment]:
    return st.builds(
        Segment,
        direction=st.sampled_from(directions),
        duration_s=st.integers(5, 150).map(float),
        speed_kmh=st.floats(0.3, 8.0).map(lambda v: round(v, 2)),
        incline_pct=st.floats(-2.0, 15.0).map(lambda v: round(v, 1)),
    )


moving = walking([Direction.FORWARD, Direction.BACKWARD])
rest = st.builds(
    Segment, direction=st.just(Direction.REST), duration_s=st.integers(1, 60).map(float)
)
plain = st.one_of(moving, moving, rest)
item = st.one_of(
    plain,
    st.builds(
        RepeatBlock, repeat=st.integers(1, 3), segments=st.lists(plain, min_size=1, max_size=3)
    ),
)


@st.composite
def profiles(draw: st.DrawFn) -> Profile:
    # Start forward, then backward at least once, so turns are always exercised.
    first = draw(walking([Direction.FORWARD]))
    second = draw(walking([Direction.BACKWARD]))
    segments = [first, second, *draw(st.lists(item, min_size=1, max_size=4))]
    limits = ProfileLimits(
        turn_pause_s=draw(st.none() | st.floats(5.0, 30.0)),
        ramp_rate_kmh_per_s=draw(st.none() | st.floats(0.1, 1.0)),
        max_backward_speed_kmh=draw(st.none() | st.floats(1.0, 6.0)),
    )
    return Profile(
        name="random",
        title="Random",
        description="generated",
        suits="tests",
        sources=["hypothesis"],
        clinical=draw(st.booleans()),
        limits=limits,
        segments=segments,
    )


limit_sets = st.builds(
    LimitSet,
    max_forward_speed_kmh=st.floats(2.0, 10.0),
    max_backward_speed_kmh=st.floats(1.5, 6.0),
    backward_jog_unlocked=st.booleans(),
    max_backward_jog_speed_kmh=st.floats(6.0, 8.0),
    max_backward_incline_pct=st.floats(0.0, 15.0),
    ramp_rate_kmh_per_s=st.floats(0.1, 0.5),
    turn_pause_s=st.floats(10.0, 25.0),
    max_backward_s=st.floats(30.0, 1800.0),
)


@dataclass(frozen=True)
class Treadmill:
    min_speed: float
    max_speed: float
    increment: float
    incline: InclinationRange | None


treadmills = st.builds(
    Treadmill,
    min_speed=st.sampled_from([0.1, 0.5, 0.8, 1.0]),
    max_speed=st.sampled_from([6.0, 12.0, 20.0]),
    increment=st.sampled_from([0.1, 0.05, 0.2]),
    incline=st.sampled_from(
        [None, InclinationRange(0.0, 15.0, 0.5), InclinationRange(-3.0, 10.0, 1.0)]
    ),
)

# Stops end the run early, so they are drawn less often than the other commands.
COMMANDS = [
    *["pause", "resume", "skip", "confirm", "speed", "incline"] * 4,
    "stop",
    "emergency_stop",
]
commands = st.lists(
    st.tuples(
        st.floats(0.0, 240.0),
        st.sampled_from(COMMANDS),
        st.floats(-1.0, 12.0),
    ),
    max_size=6,
)
FAULTS = ["none", "safety_key", "console_pause", "console_stop", "link_drop", "silent"]
faults = st.tuples(st.sampled_from(["none"] * 5 + FAULTS), st.floats(5.0, 900.0))

# ----------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Expected:
    max_forward: float
    max_backward: float
    ramp: float
    turn_pause: float
    restart: float
    max_backward_s: float
    max_backward_incline: float
    turn_incline: float
    increment: float


def expected_limits(
    limits: SafetyLimits, profile: Profile, clinical: bool, treadmill: Treadmill
) -> Expected:
    sets = [limits.general, limits.clinical] if clinical or profile.clinical else [limits.general]
    backward = [
        s.max_backward_jog_speed_kmh if s.backward_jog_unlocked else s.max_backward_speed_kmh
        for s in sets
    ]
    p = profile.limits
    return Expected(
        max_forward=min([*(s.max_forward_speed_kmh for s in sets), treadmill.max_speed]),
        max_backward=min([*backward, p.max_backward_speed_kmh or math.inf, treadmill.max_speed]),
        ramp=min([*(s.ramp_rate_kmh_per_s for s in sets), p.ramp_rate_kmh_per_s or math.inf]),
        turn_pause=max([*(s.turn_pause_s for s in sets), p.turn_pause_s or 0.0]),
        restart=min(s.restart_speed_kmh for s in sets),
        max_backward_s=min(s.max_backward_s for s in sets),
        max_backward_incline=min(s.max_backward_incline_pct for s in sets),
        turn_incline=min(s.max_turn_incline_pct for s in sets),
        increment=treadmill.increment,
    )


def make_treadmill(
    fault: str, at: float, spec: Treadmill
) -> Callable[[LoopClock], ObedientTreadmill]:
    speed = SpeedRange(spec.min_speed, spec.max_speed, spec.increment)
    incline = spec.incline

    def build(clock: LoopClock) -> ObedientTreadmill:
        ranges: dict[str, Any] = {"speed_range": speed, "inclination_range": incline}
        if fault == "safety_key":
            return SafetyKeyPulledMidRun(clock, pull_at=at, **ranges)
        if fault == "console_pause":
            return PausedAtConsoleMidRun(clock, press_at=at, kind=StopKind.PAUSE, **ranges)
        if fault == "console_stop":
            return PausedAtConsoleMidRun(clock, press_at=at, kind=StopKind.STOP, **ranges)
        if fault == "link_drop":
            return DropsLinkMidRun(clock, drop_at=at, back_after=20.0, **ranges)
        if fault == "silent":
            return GoesSilentMidRun(clock, silent_at=at, **ranges)
        return ObedientTreadmill(clock, speed_range=speed, inclination_range=incline)

    return build


# ----------------------------------------------------------------------------- the property


def facing_at(events: Sequence[object], write: Write) -> Direction | None:
    """The way the user faces at a write: the last walking segment started by then."""
    facing = None
    for event in events:
        walking = isinstance(event, SegmentStarted) and event.direction is not Direction.REST
        if walking and isinstance(event, SegmentStarted) and event.at <= write.at + TOLERANCE:
            facing = event.direction
    return facing


@dataclass(frozen=True)
class Case:
    profile: Profile
    limits: SafetyLimits
    clinical: bool
    spec: Treadmill
    fault: tuple[str, float]
    script: list[tuple[float, str, float]]


async def scenario(case: Case) -> None:
    profile, limits, clinical, spec = case.profile, case.limits, case.clinical, case.spec
    fault, script = case.fault, case.script
    library = ProfileLibrary.from_profiles([profile], limits=limits)
    async with rig(make_treadmill(fault[0], fault[1], spec), limits=limits, library=library) as r:
        session = r.session
        refused: CommandRejectedError | None = None
        try:
            await session.start_profile("random", clinical=clinical)
        except CommandRejectedError as error:
            refused = error
        if refused is not None:
            # Only a treadmill that cannot restart gently may be refused.
            assert refused.code == "limit_exceeded"
            note("refused: treadmill cannot restart gently")
            return
        plan = session.plan
        assert plan is not None

        async def confirmer() -> None:
            while True:
                await asyncio.sleep(7.0)
                with contextlib.suppress(CommandRejectedError):
                    await session.confirm_turn()

        helper = asyncio.create_task(confirmer())
        for delay, command, value in script:
            await asyncio.sleep(delay)
            with contextlib.suppress(CommandRejectedError):
                if command == "pause":
                    await session.pause()
                elif command == "resume":
                    await session.resume()
                elif command == "skip":
                    await session.skip_segment()
                elif command == "confirm":
                    await session.confirm_turn()
                elif command == "speed":
                    await session.set_speed(value)
                elif command == "incline":
                    await session.set_incline(value * 2)
                elif command == "stop":
                    await session.stop()
                else:
                    await session.emergency_stop()
        # Let anything paused carry on, then run the workout out.
        with contextlib.suppress(CommandRejectedError):
            await session.resume()
        deadline = r.clock.now() + plan.total_s * 2 + 7200
        while session.snapshot().phase.value not in {"finished", "aborted"} and (
            r.clock.now() < deadline
        ):
            await asyncio.sleep(5.0)
            with contextlib.suppress(CommandRejectedError):
                await session.resume()
        helper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await helper
        await asyncio.sleep(60.0)  # anything that would wrongly resume has time to do so
        aborted = [e for e in r.recorder.events if isinstance(e, WorkoutAborted)]
        note(f"ended {aborted[0].reason.value if aborted else 'finished'}")
        note(f"writes: {'<50' if len(r.treadmill.writes) < 50 else '>=50'}")
        note(f"turns: {plan.turn_count > 0}")
        check_invariants(
            r.treadmill.writes,
            r.recorder.events,
            expected_limits(limits, profile, clinical, spec),
            session.snapshot().phase.value,
        )


def check_invariants(  # noqa: PLR0912 - one list of invariants, read top to bottom
    writes: Sequence[Write], events: Sequence[object], expected: Expected, final_phase: str
) -> None:
    assert final_phase in {"finished", "aborted"}, f"workout did not end: {final_phase}"
    aborts = [e for e in events if isinstance(e, WorkoutAborted)]
    assert not [a for a in aborts if a.reason is AbortReason.COMMAND_FAILED], aborts
    assert len(aborts) <= 1

    abort_at = aborts[0].at if aborts else math.inf
    last_speed: Write | None = None
    moving = False
    facing: Direction | None = None
    last_facing: Direction | None = None
    stopped_at = -math.inf
    moving_since = 0.0
    backward_s = 0.0
    last_incline = 0.0
    for write in writes:
        if write.kind == "start":
            new_facing = facing_at(events, write)
            assert new_facing is not None
            if last_facing is not None and new_facing is not last_facing:
                # A change of direction: paused long enough, with a countdown in between.
                assert write.at - stopped_at >= expected.turn_pause - TOLERANCE, (
                    write,
                    stopped_at,
                    expected.turn_pause,
                )
                turn_events = [
                    e
                    for e in events
                    if isinstance(e, TurnNow | TurnCountdown)
                    and stopped_at - TOLERANCE <= e.at <= write.at + TOLERANCE
                ]
                assert isinstance(turn_events[0], TurnNow)
                assert turn_events[0].to_direction is new_facing
                countdown = [e.seconds_left for e in turn_events if isinstance(e, TurnCountdown)]
                assert countdown[-3:] == [3, 2, 1]
            assert last_incline <= expected.turn_incline + TOLERANCE or not moving
            moving = True
            facing = last_facing = new_facing
            moving_since = write.at
            last_speed = None
        elif write.kind in {"pause", "stop"}:
            if moving and facing is Direction.BACKWARD:
                # After an abort the belt is the deck's (e.g. still running with the link
                # down until the stop can be sent); the budget is the engine's until then.
                backward_s += min(write.at, abort_at) - moving_since
            if write.kind == "pause" and moving:
                assert last_speed is not None
                assert last_speed.value is not None
                assert last_speed.value <= expected.restart + TOLERANCE, "paused from speed"
            if moving:
                stopped_at = write.at
            moving = False
        elif write.kind == "speed":
            assert write.value is not None
            assert moving, "speed written while the belt was paused"
            cap = expected.max_backward if facing is Direction.BACKWARD else expected.max_forward
            assert write.value <= cap + TOLERANCE, (write, facing, cap)
            if last_speed is None:
                assert write.value <= expected.restart + TOLERANCE, "restart above the cap"
            else:
                assert last_speed.value is not None
                window = min(write.at - last_speed.at, max(1.0, expected.increment / expected.ramp))
                assert abs(write.value - last_speed.value) <= expected.ramp * window + TOLERANCE, (
                    last_speed,
                    write,
                    expected.ramp,
                )
            last_speed = write
        elif write.kind == "incline":
            assert write.value is not None
            if moving and facing is Direction.BACKWARD:
                assert write.value <= expected.max_backward_incline + TOLERANCE
            last_incline = write.value
    assert backward_s <= expected.max_backward_s + TOLERANCE

    # Never a resume after an abort.
    for abort in aborts:
        assert not [w for w in writes if w.at > abort.at and w.kind in {"start", "speed"}], abort


@settings(
    max_examples=100,
    deadline=None,
    # The explain phase re-runs whole workouts thousands of times; shrinking is enough here.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    case=st.builds(
        Case,
        profile=profiles(),
        limits=limit_sets.map(lambda general: SafetyLimits(general=general)),
        clinical=st.booleans(),
        spec=treadmills,
        fault=faults,
        script=commands,
    )
)
def test_every_governor_invariant_holds(case: Case) -> None:
    run_in_virtual_time(lambda: scenario(case))
