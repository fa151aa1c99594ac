"""Heart rate in a running workout, in virtual time: a rider whose heart follows the work wears
a strap; the governor's ceilings, the missing-heart-rate pause and the zone controller act on
what the filter lets through."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st

from treadmilld.engine.api import (
    CommandRejectedError,
    Direction,
    HeartRateCeilingReached,
    HeartRateMissing,
    LimitApplied,
    Phase,
    SegmentStarted,
)
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import ProfileLimits
from treadmilld.engine.profile import parse_profile

from .doubles import Write
from .harness import Rig, rig, run_in_virtual_time
from .heart_doubles import Physiology, RiderWhoseHeartFollowsTheWork, StrapFaults

# The governor's stated reaction to the hard ceiling: the reading that crosses it pauses the
# workout at once; a jump faster than the filter's 25 bpm/s waits for one more reading.
REACTION_S = 2.0
HR_MAX = 180


def library(segments: str, *, limits: str = "") -> ProfileLibrary:
    text = (
        'name = "hr"\ntitle = "hr"\ndescription = "test"\nsuits = "tests"\nsources = ["test"]\n'
        f"[limits]\n{limits}\n{segments}"
    )
    return ProfileLibrary.from_profiles([parse_profile(text, file="hr.toml")])


ZONE_WALK = library(
    """
[[segments]]
direction = "forward"
duration_s = 1800
speed_kmh = 4.0
heart_rate_zone = [64, 76]
min_speed_kmh = 3.5
max_speed_kmh = 5.0
max_incline_pct = 15
""",
    limits="heart_rate_required = true",
)


@contextlib.asynccontextmanager
async def strapped(
    rider_limits: ProfileLimits,
    lib: ProfileLibrary,
    *,
    physiology: Physiology | None = None,
    faults: StrapFaults | None = None,
) -> AsyncIterator[tuple[Rig, RiderWhoseHeartFollowsTheWork]]:
    async with rig(library=lib) as r:
        rider = RiderWhoseHeartFollowsTheWork(
            r.treadmill, physiology or Physiology(), faults or StrapFaults()
        )
        strap = asyncio.create_task(rider.wear_strap(r.session, r.clock))
        try:
            await r.session.start_profile("hr", rider_limits=rider_limits)
            yield r, rider
        finally:
            strap.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await strap


def speed_writes(writes: list[Write]) -> list[Write]:
    return [w for w in writes if w.kind == "speed"]


async def test_a_thirty_minute_zone_walk_holds_the_rider_in_the_zone() -> None:
    async with strapped(ProfileLimits(hr_max_bpm=HR_MAX), ZONE_WALK) as (r, rider):
        await r.wait_for("workout_finished", within_s=3000)
        started = r.recorder.of_type("segment_started")[0]
        writes = list(r.treadmill.writes)
    assert isinstance(started, SegmentStarted)
    low, high = HR_MAX * 64 / 100, HR_MAX * 76 / 100
    # From 5 minutes in (the heart needs that to climb from rest) to 30 s before the segment's
    # end (where the belt ramps down for the finish).
    end = started.at + started.duration_s - 30
    judged = [
        s for s in rider.trace if started.at + 300 <= s.at <= end and s.phase is Phase.RUNNING
    ]
    inside = sum(1 for s in judged if low <= s.bpm <= high) / len(judged)
    assert inside >= 0.9
    # It got there by climbing: incline first, speed only within its bounds.
    inclines = [w.value for w in writes if w.kind == "incline" and w.value is not None]
    assert max(inclines) > 0
    steady = [
        w.value
        for w in speed_writes(writes)
        if judged[0].at <= w.at <= judged[-1].at and w.value is not None
    ]
    assert all(3.5 - 1e-6 <= v <= 5.0 + 1e-6 for v in steady), steady


HARD_WALK = library(
    """
[[segments]]
direction = "forward"
duration_s = 1200
speed_kmh = 5.0
incline_pct = 10
"""
)
SOFT_WALK = library(
    """
[[segments]]
direction = "forward"
duration_s = 600
speed_kmh = 4.0
incline_pct = 7
"""
)


def over_ceiling_while_walking(rider: RiderWhoseHeartFollowsTheWork, ceiling: float) -> float:
    """The longest stretch the strap sent a rate above `ceiling` while the workout walked."""
    longest, since = 0.0, None
    for sample in rider.trace:
        above = sample.sent is not None and sample.contact and sample.sent > ceiling
        if above and sample.phase is Phase.RUNNING:
            since = sample.at if since is None else since
            longest = max(longest, sample.at - since)
        else:
            since = None
    return longest


async def test_the_soft_ceiling_eases_incline_first_and_the_hard_ceiling_pauses_for_good() -> None:
    # 70 % of 180: hard ceiling 126 bpm, soft 116. At 5 km/h and 10 % this rider heads for
    # about 151 bpm: easing one step each 15 s cannot catch a heart climbing that fast.
    limits = ProfileLimits(hr_max_bpm=HR_MAX, max_heart_rate_pct=70)
    async with strapped(limits, HARD_WALK) as (r, rider):
        event = await r.wait_for_event(HeartRateCeilingReached, within_s=1200)
        await r.wait_for("workout_paused")
        await asyncio.sleep(300)  # the rider does not resume: nothing moves the belt again
        writes = list(r.treadmill.writes)
        phase = r.session.phase
        snapshot = r.session.snapshot()
    ceiling = HR_MAX * 70 / 100
    assert event.bpm > ceiling
    assert event.ceiling_bpm == pytest.approx(ceiling)
    first_above = next(s.at for s in rider.trace if s.sent is not None and s.sent > ceiling)
    assert event.at - first_above <= REACTION_S
    assert over_ceiling_while_walking(rider, ceiling) <= REACTION_S
    assert phase is Phase.PAUSED
    assert snapshot.heart_rate_ceiling_bpm == pytest.approx(ceiling)
    # Eased before the hard ceiling: the incline came down, and the speed only once it was flat.
    soft_at = next(s.at for s in rider.trace if s.sent is not None and s.sent > ceiling - 10)
    eased = [w for w in writes if soft_at <= w.at < event.at and w.kind in {"speed", "incline"}]
    assert eased
    assert eased[0].kind == "incline"
    first_speed_cut = next((w for w in eased if w.kind == "speed"), None)
    if first_speed_cut is not None:
        inclines_before = [
            w.value for w in eased if w.kind == "incline" and w.at <= first_speed_cut.at
        ]
        assert inclines_before[-1] == 0.0
    values = [w.value or 0.0 for w in eased if w.kind == "incline"]
    assert values == sorted(values, reverse=True)  # never raised
    # Paused the turn-safe way (ramped down, then Pause), and never started again.
    after = [w for w in writes if w.at >= event.at]
    assert [w.kind for w in after if w.kind in {"pause", "start", "stop"}] == ["pause"]
    ramp = [w.value or 0 for w in after if w.kind == "speed"]
    assert ramp == sorted(ramp, reverse=True)


async def test_the_soft_ceiling_alone_holds_a_rider_below_the_hard_one() -> None:
    # At 4 km/h and 7 % this rider heads for about 123 bpm: above the 116 bpm soft ceiling, under
    # the 126 bpm hard one. Easing the incline keeps the heart under the hard ceiling throughout.
    limits = ProfileLimits(hr_max_bpm=HR_MAX, max_heart_rate_pct=70)
    async with strapped(limits, SOFT_WALK) as (r, rider):
        await r.wait_for("workout_finished", within_s=1200)
        writes = list(r.treadmill.writes)
    assert r.recorder.of_type("heart_rate_ceiling") == []
    assert max(s.bpm for s in rider.trace) < HR_MAX * 70 / 100
    walking = [w for w in writes if w.kind == "incline" and w.at > 20]
    assert min(w.value or 0 for w in walking) < 7
    assert any(
        isinstance(e, LimitApplied) and e.limit == "heart_rate_soft_bpm" for e in r.recorder.events
    )


RAMPING_WALK = library(
    """
[[segments]]
direction = "forward"
duration_s = 400
speed_kmh = 2.0
ramp = { to_speed_kmh = 6.5 }
"""
)


async def test_the_soft_ceiling_brings_the_speed_down_in_the_middle_of_a_ramp() -> None:
    # 60 % of 180: hard ceiling 108 bpm, soft 98. The ramp from 2 to 6.5 km/h on the flat takes
    # this rider past the soft ceiling before the ramp ends: with no incline to take away, the
    # speed comes down at once, not at the ramp's end.
    limits = ProfileLimits(hr_max_bpm=HR_MAX, max_heart_rate_pct=60)
    async with strapped(limits, RAMPING_WALK) as (r, rider):
        started = await r.wait_for_event(SegmentStarted)
        await r.wait_until(started.at + 400)
        writes = speed_writes(list(r.treadmill.writes))
    soft_at = next(
        s.at for s in rider.trace if s.sent is not None and s.sent > HR_MAX * 60 / 100 - 10
    )
    assert soft_at < started.at + 400
    lowered = next(
        later
        for earlier, later in itertools.pairwise(writes)
        if (later.value or 0) < (earlier.value or 0)
    )
    assert lowered.at <= soft_at + 1.0
    # And it stays below where it was when the soft ceiling was crossed.
    at_soft = [w.value or 0 for w in writes if w.at <= soft_at][-1]
    assert all((w.value or 0) <= at_soft for w in writes if w.at > soft_at)


CONTACT_WALK = library(
    """
[[segments]]
direction = "forward"
duration_s = 600
speed_kmh = 4.0
""",
    limits="heart_rate_required = true",
)


async def test_a_lost_strap_contact_pauses_a_workout_that_requires_heart_rate() -> None:
    lost_at, back_at = 200.0, 400.0
    faults = StrapFaults(contact_lost=((lost_at, back_at),))
    async with strapped(ProfileLimits(hr_max_bpm=HR_MAX), CONTACT_WALK, faults=faults) as (
        r,
        _rider,
    ):
        event = await r.wait_for_event(HeartRateMissing, within_s=lost_at + 60)
        await r.wait_until(event.at + 30)
        snapshot = r.session.snapshot()
        await r.wait_until(back_at + 5)
        held = [w for w in r.treadmill.writes if w.at > event.at]
        await r.session.resume()  # the rider, strap back on
        await r.wait_for("workout_finished", within_s=1200)
    assert lost_at + 15 - 1 <= event.at <= lost_at + 15 + 1
    assert event.missing_s == 15
    assert [w.kind for w in held if w.kind in {"pause", "start"}] == ["pause"]
    assert snapshot.phase is Phase.PAUSED
    assert snapshot.heart_rate_bpm is None  # no contact: no heart rate shown either
    assert [e.type for e in r.recorder.events].count("heart_rate_missing") == 1


SPIKY_ZONE = library(
    """
[[segments]]
direction = "forward"
duration_s = 900
speed_kmh = 4.0
heart_rate_zone = [64, 76]
max_speed_kmh = 5.0
max_incline_pct = 15
"""
)


async def test_spikes_never_change_a_setpoint() -> None:
    sent_spikes: list[int] = []

    async def run(faults: StrapFaults) -> list[tuple[float, str, float | None]]:
        limits = ProfileLimits(hr_max_bpm=HR_MAX, max_heart_rate_pct=85)
        async with strapped(limits, SPIKY_ZONE, faults=faults) as (r, rider):
            await r.wait_for("workout_finished", within_s=1500)
            assert r.recorder.of_type("heart_rate_ceiling") == []
            sent_spikes.append(
                sum(1 for s in rider.trace if s.sent is not None and s.sent - round(s.bpm) == 50)
            )
            # On the workout's own time: the second run starts later on the same clock.
            zero = r.recorder.of_type("workout_started")[0].at
            return [(round(w.at - zero, 6), w.kind, w.value) for w in r.treadmill.writes]

    # A +50 bpm single-sample spike every 37 s, each far above the 153 bpm ceiling (85 % of
    # 180) and far outside the zone.
    spikes = tuple(float(t) for t in range(20, 900, 37))
    plain = await run(StrapFaults())
    assert await run(StrapFaults(spikes_at=spikes)) == plain
    assert sent_spikes == [0, len(spikes)]
    assert any(kind == "incline" and (value or 0) > 0 for _, kind, value in plain)


# ----------------------------------------------------------------------------- the property

_EXAMPLES: dict[str, Any] = (
    {"max_examples": 20} if settings.get_current_profile_name() == "default" else {}
)


def _zone_library(low: float, high: float, start_incline: int) -> ProfileLibrary:
    zone = f"heart_rate_zone = [{low}, {high}]"
    return library(
        f"""
[[segments]]
direction = "forward"
duration_s = 240
speed_kmh = 4.0
incline_pct = {start_incline}
{zone}
max_speed_kmh = 5.0
max_incline_pct = 12
[[segments]]
direction = "backward"
duration_s = 240
speed_kmh = 2.5
{zone}
min_speed_kmh = 2.0
max_speed_kmh = 3.5
max_incline_pct = 8
[[segments]]
direction = "forward"
duration_s = 60
speed_kmh = 3.0
"""
    )


async def _resume_after_each_heart_rate_pause(r: Rig) -> None:
    """The rider waits a minute after each heart-rate pause, then resumes."""
    handled = 0
    while True:
        await asyncio.sleep(1.0)
        pauses = r.recorder.of_type("heart_rate_ceiling") + r.recorder.of_type("heart_rate_missing")
        if len(pauses) > handled and r.session.phase is Phase.PAUSED:
            handled = len(pauses)
            await asyncio.sleep(60.0)
            with contextlib.suppress(CommandRejectedError):
                await r.session.resume()


@settings(
    **_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    physiology=st.builds(
        Physiology,
        resting_bpm=st.floats(50, 85),
        max_bpm=st.floats(160, 200),
        vo2max=st.floats(25, 50),
        tau_s=st.floats(15, 60),
        drift_bpm_per_min=st.floats(0, 0.5),
    ),
    low=st.integers(50, 70),
    width=st.integers(8, 16),
    ceiling_pct=st.integers(55, 95),
    start_incline=st.integers(0, 12),
)
def test_heart_rate_control_keeps_every_limit_whatever_the_heart_does(
    physiology: Physiology, low: int, width: int, ceiling_pct: int, start_incline: int
) -> None:
    lib = _zone_library(low, low + width, start_incline)
    rider_limits = ProfileLimits(
        hr_max_bpm=round(physiology.max_bpm), max_heart_rate_pct=ceiling_pct
    )

    async def scenario() -> tuple[Rig, RiderWhoseHeartFollowsTheWork, float]:
        async with strapped(rider_limits, lib, physiology=physiology) as (r, rider):
            resumer = asyncio.create_task(_resume_after_each_heart_rate_pause(r))
            with contextlib.suppress(TimeoutError):
                await r.wait_for("workout_finished", within_s=2400)
            resumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await resumer
            plan = r.session.plan
            assert plan is not None
            ceiling = plan.limits.heart_rate_ceiling_bpm
            assert ceiling is not None
            return r, rider, ceiling

    r, rider, ceiling = run_in_virtual_time(scenario)
    plan = r.session.plan
    assert plan is not None
    limits = plan.limits
    walks = [
        (e.at, e.direction)
        for e in r.recorder.events
        if isinstance(e, SegmentStarted) and e.direction is not Direction.REST
    ]

    def facing_at(t: float) -> Direction:
        return [d for at, d in walks if at <= t][-1]

    moving = False
    last_speed: Write | None = None
    for write in r.treadmill.writes:
        if write.kind == "start":
            moving = True
        elif write.kind in {"pause", "stop"}:
            moving = False
        elif write.kind == "speed" and write.value is not None:
            assert write.value <= limits.max_speed_kmh(facing_at(write.at)) + 1e-6, write
            if not moving:  # in a turn or a pause: at most the restart speed, never a change up
                assert write.value <= limits.restart_speed_kmh + 1e-6, write
            if last_speed is not None and moving:
                allowance = limits.ramp_rate_kmh_per_s * max(write.at - last_speed.at, 1.0)
                step = abs(write.value - (last_speed.value or 0.0))
                assert step <= allowance + limits.speed_increment_kmh + 1e-6, (last_speed, write)
            last_speed = write
        elif write.kind == "incline" and write.value is not None:
            cap = (
                limits.max_incline_pct(facing_at(write.at))
                if moving
                else limits.max_turn_incline_pct
            )
            assert write.value <= cap + 1e-6, write
    assert over_ceiling_while_walking(rider, ceiling) <= REACTION_S
    # Seen in the statistics (--hypothesis-show-statistics): how often a ceiling paused.
    hypothesis_event(f"ceiling pauses: {min(len(r.recorder.of_type('heart_rate_ceiling')), 2)}")
