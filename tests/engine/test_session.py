"""WorkoutSession behaviour over in-process treadmills, in virtual time."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from structlog.testing import capture_logs

from treadmilld.ble.api import ConnectionState, LinkLostCause
from treadmilld.engine.api import (
    AbortReason,
    BeltState,
    CommandRejectedError,
    Direction,
    Phase,
    SegmentStarted,
    StateChanged,
    TreadmillController,
    TurnCountdown,
    TurnNow,
    WorkoutAborted,
    WorkoutFinished,
    WorkoutStarted,
    WorkoutStopped,
)
from treadmilld.engine.belt import deceleration_allowance_s
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import LimitSet, SafetyLimits
from treadmilld.engine.profile import parse_profile
from treadmilld.ftms import SpeedRange, StopKind
from treadmilld.runtime.clock import LoopClock

from .doubles import (
    DeckBehaviour,
    DropsLinkMidRun,
    GoesSilentMidRun,
    ObedientTreadmill,
    PausedAtConsoleMidRun,
    SafetyKeyPulledMidRun,
    SpeedRaisedAtConsoleMidRun,
    StartedAtConsoleMidRun,
)
from .harness import rig

SHORT_TURNS = """
name = "short-turns"
title = "Short turns"
description = "F 60, B 60, F 60"
suits = "tests"
sources = ["test"]
[[segments]]
direction = "forward"
duration_s = 60
speed_kmh = 4.0
[[segments]]
direction = "backward"
duration_s = 60
speed_kmh = 3.0
[[segments]]
direction = "forward"
duration_s = 60
speed_kmh = 4.0
"""


def belt_running(treadmill: ObedientTreadmill) -> bool:
    """Read afresh (mypy would otherwise narrow `running` across awaits)."""
    return treadmill.running


def short_library() -> ProfileLibrary:
    return ProfileLibrary.from_profiles([parse_profile(SHORT_TURNS, file="short-turns.toml")])


def test_session_implements_the_controller_seam() -> None:
    from treadmilld.engine.session import WorkoutSession

    clock = LoopClock()
    session = WorkoutSession(
        ObedientTreadmill(clock), library=short_library(), limits=SafetyLimits(), clock=clock
    )
    assert isinstance(session, TreadmillController)


async def test_the_belt_never_starts_on_connect() -> None:
    async with rig() as r:
        await asyncio.sleep(120)
        assert r.treadmill.writes == []
        assert r.session.snapshot().phase is Phase.IDLE
        assert r.session.snapshot().connection == "connected"


async def test_a_45_minute_profile_finishes_and_reports_measured_totals() -> None:
    async with rig() as r:
        await r.session.start_profile("forward-walk", body_weight_kg=80)
        await r.wait_for("workout_finished", within_s=3000)
        finished = r.recorder.of_type("workout_finished")[0]
        assert isinstance(finished, WorkoutFinished)
        assert 2700 <= finished.elapsed_s <= 2710
        # 5 min at 3.5 + 35 min at 5.0 + 5 min at 3.5 km/h, ramps aside: 3.5 km.
        assert finished.distance_forward_m == pytest.approx(3500, rel=0.01)
        assert finished.distance_backward_m == 0
        assert finished.calories_kcal > 0
        assert r.session.snapshot().phase is Phase.FINISHED
        assert r.treadmill.writes[-1].kind == "stop"
        assert not r.treadmill.running


async def test_a_turn_pauses_the_belt_counts_down_and_restarts_slowly() -> None:
    async with rig(library=short_library()) as r:
        await r.session.start_profile("short-turns")
        await r.wait_for("workout_finished")
        types = r.recorder.types()
        first_turn = types.index("turn_now")
        assert types[first_turn : first_turn + 4] == [
            "turn_now",
            "turn_countdown",
            "turn_countdown",
            "turn_countdown",
        ]
        countdown = [e for e in r.recorder.events if isinstance(e, TurnCountdown)][:3]
        assert [e.seconds_left for e in countdown] == [3, 2, 1]
        assert all(e.to_direction is Direction.BACKWARD for e in countdown)
        writes = r.treadmill.writes
        pauses = [w for w in writes if w.kind == "pause"]
        starts = [w for w in writes if w.kind == "start"]
        assert len(pauses) == 2
        assert len(starts) == 3
        for pause, start in zip(pauses, starts[1:], strict=True):
            assert start.at - pause.at >= 10.0
            speed_before_pause = [w for w in writes if w.kind == "speed" and w.at <= pause.at][-1]
            assert speed_before_pause.value is not None
            assert speed_before_pause.value <= 1.0
            speed_after_start = next(w for w in writes if w.kind == "speed" and w.at >= start.at)
            assert speed_after_start.value is not None
            assert speed_after_start.value <= 1.0
        backward = [e for e in r.recorder.events if isinstance(e, SegmentStarted)]
        assert [e.direction for e in backward] == [
            Direction.FORWARD,
            Direction.REST,
            Direction.BACKWARD,
            Direction.REST,
            Direction.FORWARD,
        ]
        assert r.session.snapshot().distance_backward_m > 0


async def test_clinical_turns_wait_for_the_confirm_command() -> None:
    async with rig(library=short_library()) as r:
        await r.session.start_profile("short-turns", clinical=True)
        await r.wait_for("turn_confirmation_needed")
        assert r.session.snapshot().phase is Phase.AWAITING_CONFIRMATION
        waiting_since = r.clock.now()
        starts_before = len([w for w in r.treadmill.writes if w.kind == "start"])
        await asyncio.sleep(600)  # nobody confirms: the belt stays paused
        assert len([w for w in r.treadmill.writes if w.kind == "start"]) == starts_before
        assert not r.treadmill.running
        waiting = r.session.snapshot()
        assert (waiting.target_speed_kmh, waiting.target_incline_pct) == (None, None)
        await r.session.confirm_turn()
        await r.wait_for("turn_countdown", count=3)
        await asyncio.sleep(4)
        restart = [w for w in r.treadmill.writes if w.kind == "start"][-1]
        assert restart.at >= waiting_since + 600 + 3
        pause = next(w for w in r.treadmill.writes if w.kind == "pause")
        assert restart.at - pause.at >= 20.0
        assert r.treadmill.running


async def test_safety_key_aborts_and_the_belt_stays_stopped() -> None:
    async with rig(lambda c: SafetyKeyPulledMidRun(c, pull_at=100.0)) as r:
        await r.session.start_profile("p2-retro-core")
        await r.wait_for("workout_aborted")
        aborted = r.recorder.of_type("workout_aborted")[0]
        assert isinstance(aborted, WorkoutAborted)
        assert aborted.reason is AbortReason.SAFETY_KEY
        abort_at = aborted.at
        await asyncio.sleep(1800)
        assert not [w for w in r.treadmill.writes if w.at > abort_at and w.kind != "stop"]
        assert not r.treadmill.running
        snapshot = r.session.snapshot()
        assert snapshot.phase is Phase.ABORTED
        assert snapshot.abort_reason is AbortReason.SAFETY_KEY
        with pytest.raises(CommandRejectedError) as rejected:
            await r.session.resume()
        assert rejected.value.code == "no_workout"


def _one_segment(name: str, direction: str) -> str:
    return f"""
name = "{name}"
title = "{name}"
description = "{direction} 30 s"
suits = "tests"
sources = ["test"]
[[segments]]
direction = "{direction}"
duration_s = 30
speed_kmh = 1.0
"""


async def test_a_workout_aborted_before_any_start_was_sent_still_turns_the_next() -> None:
    """Soak seed 500: the first workout announces "forward" (the person steps on facing
    forward), waits for a deck left at 12 % to come down, and the safety key is pulled while
    the restart speed is on its way (answered 2 s late), so no Start is ever sent. A backward
    workout after it must still run the turn: "turn now", then 3-2-1, then Start."""
    library = ProfileLibrary.from_profiles(
        [
            parse_profile(_one_segment("fwd", "forward"), file="fwd.toml"),
            parse_profile(_one_segment("bwd", "backward"), file="bwd.toml"),
        ]
    )
    behaviour = DeckBehaviour(answer_delay_s=2.0, initial_incline_pct=12.0)
    async with rig(
        lambda c: SafetyKeyPulledMidRun(c, pull_at=5.0, behaviour=behaviour), library=library
    ) as r:
        await r.session.start_profile("fwd")
        await r.wait_for("workout_aborted")
        aborted = r.recorder.of_type("workout_aborted")[0]
        assert isinstance(aborted, WorkoutAborted)
        assert aborted.reason is AbortReason.SAFETY_KEY
        told = r.recorder.of_type("segment_started")[0]
        assert isinstance(told, SegmentStarted)
        assert told.direction is Direction.FORWARD
        assert told.at < aborted.at
        await asyncio.sleep(5.0)
        assert not [w for w in r.treadmill.writes if w.kind == "start"]
        await r.session.start_profile("bwd")
        await r.wait_for("workout_finished", within_s=600.0)
        start = next(w for w in r.treadmill.writes if w.kind == "start")
        turn_now = [e for e in r.recorder.events if isinstance(e, TurnNow)]
        assert [e.to_direction for e in turn_now] == [Direction.BACKWARD]
        assert turn_now[0].at < start.sent
        countdown = [e for e in r.recorder.events if isinstance(e, TurnCountdown)]
        assert [e.seconds_left for e in countdown] == [3, 2, 1]
        assert countdown[-1].at <= start.sent


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (StopKind.PAUSE, AbortReason.PAUSED_AT_CONSOLE),
        (StopKind.STOP, AbortReason.STOPPED_AT_CONSOLE),
    ],
)
async def test_console_stop_or_pause_aborts(kind: StopKind, reason: AbortReason) -> None:
    async with rig(lambda c: PausedAtConsoleMidRun(c, press_at=50.0, kind=kind)) as r:
        await r.session.start_profile("p2-retro-core")
        await r.wait_for("workout_aborted")
        aborted = r.recorder.of_type("workout_aborted")[0]
        assert isinstance(aborted, WorkoutAborted)
        assert aborted.reason is reason
        await asyncio.sleep(600)
        assert not [w for w in r.treadmill.writes if w.at > aborted.at and w.kind == "start"]


async def test_console_start_mid_workout_aborts_and_stops_the_belt() -> None:
    # Design choice: a console start during a profile (say, mid-turn) takes the belt out of the
    # profile's hands; the session aborts and stops it rather than fight the console.
    async with rig(lambda c: StartedAtConsoleMidRun(c, press_at=185.0)) as r:
        await r.session.start_profile("p2-retro-core")
        await r.wait_for("workout_aborted")
        aborted = r.recorder.of_type("workout_aborted")[0]
        assert isinstance(aborted, WorkoutAborted)
        assert aborted.reason is AbortReason.STARTED_AT_CONSOLE
        await asyncio.sleep(600)
        after = [w for w in r.treadmill.writes if w.at >= aborted.at]
        assert [w.kind for w in after] == ["stop"]
        assert not r.treadmill.running
        assert r.session.snapshot().phase is Phase.ABORTED


async def test_link_loss_aborts_and_the_belt_is_stopped_when_the_link_returns() -> None:
    dropping: list[DropsLinkMidRun] = []

    def make(clock: LoopClock) -> ObedientTreadmill:
        dropping.append(DropsLinkMidRun(clock, drop_at=100.0, back_after=30.0))
        return dropping[0]

    async with rig(make) as r:
        await r.session.start_profile("forward-walk")
        await r.wait_for("workout_aborted")
        aborted = r.recorder.of_type("workout_aborted")[0]
        assert isinstance(aborted, WorkoutAborted)
        assert aborted.reason is AbortReason.LINK_LOST
        assert r.treadmill.running  # the deck kept going on its own
        await asyncio.sleep(60)
        assert dropping[0].back
        assert r.treadmill.writes[-1].kind == "stop"
        assert not belt_running(r.treadmill)
        assert not [w for w in r.treadmill.writes if w.at > aborted.at and w.kind == "start"]
        assert r.session.snapshot().phase is Phase.ABORTED


async def test_no_data_aborts() -> None:
    async with rig(lambda c: GoesSilentMidRun(c, silent_at=100.0)) as r:
        await r.session.start_profile("forward-walk")
        await r.wait_for("workout_aborted")
        aborted = r.recorder.of_type("workout_aborted")[0]
        assert isinstance(aborted, WorkoutAborted)
        assert aborted.reason is AbortReason.NO_DATA
        assert aborted.at <= 100.0 + 5.0
        assert not r.treadmill.running


async def test_no_data_aborts_as_soon_as_the_silence_outlasts_the_timeout() -> None:
    """The abort comes when the deck has been silent for `telemetry_timeout_s`, not at some
    later look: 2.2 s falls between the records' whole seconds."""
    limits = SafetyLimits(general=LimitSet(telemetry_timeout_s=2.2))
    async with rig(lambda c: GoesSilentMidRun(c, silent_at=100.0), limits=limits) as r:
        await r.session.start_profile("forward-walk")
        await r.wait_for("workout_aborted")
        aborted = r.recorder.of_type("workout_aborted")[0]
        assert isinstance(aborted, WorkoutAborted)
        assert aborted.reason is AbortReason.NO_DATA
        last_record = max(s.at for s in r.treadmill.belt_trace if s.reported)
        assert 2.2 < aborted.at - last_record <= 2.2 + 0.01, (last_record, aborted.at)


async def test_a_deck_reporting_just_within_the_timeout_is_not_aborted() -> None:
    """Records 2.9 s apart under the 3 s no-data timeout: the workout runs on."""
    async with rig(lambda c: ObedientTreadmill(c, telemetry_interval_s=2.9)) as r:
        await r.session.start_profile("forward-walk")
        await asyncio.sleep(300.0)
        assert r.recorder.of_type("workout_aborted") == []
        assert r.session.snapshot().phase is Phase.RUNNING


@pytest.mark.parametrize(
    ("cause", "text", "reason"),
    [
        # The reason text says the opposite of the cause: only the cause may decide.
        (LinkLostCause.NO_DATA, "peer disconnected", AbortReason.NO_DATA),
        (LinkLostCause.DROPPED, "no treadmill data for 3 s", AbortReason.LINK_LOST),
        (LinkLostCause.FAILED, "silent liveness data", AbortReason.LINK_LOST),
    ],
)
async def test_the_abort_reason_follows_the_link_lost_cause_not_its_text(
    cause: LinkLostCause, text: str, reason: AbortReason
) -> None:
    class LosesItsLink(ObedientTreadmill):
        def on_tick(self, now: float) -> None:
            if now >= 100.0 and self.connection_state is ConnectionState.CONNECTED:
                self.drop_link(text, cause)

    async with rig(LosesItsLink) as r:
        await r.session.start_profile("forward-walk")
        await r.wait_for("workout_aborted")
        aborted = r.recorder.of_type("workout_aborted")[0]
        assert isinstance(aborted, WorkoutAborted)
        assert aborted.reason is reason


async def test_an_emergency_stop_after_an_unconfirmed_stop_keeps_its_alarm_time() -> None:
    """Property counterexample (soak seed 300): the deck goes silent while the belt runs at
    2 km/h; the workout aborts (no_data) and its Stop cannot be confirmed. An emergency stop
    pressed 5 s later must not push the `stop_unconfirmed` alarm back: it is still due when
    the slowest deck would have stopped from 2 km/h counted from the first stop."""
    walk = parse_profile(
        'name = "walk"\ntitle = "Walk"\ndescription = "F"\nsuits = "tests"\n'
        'sources = ["test"]\n[[segments]]\ndirection = "forward"\nduration_s = 120\n'
        "speed_kmh = 2.0\n",
        file="walk.toml",
    )
    library = ProfileLibrary.from_profiles([walk])
    async with rig(lambda c: GoesSilentMidRun(c, silent_at=30.0), library=library) as r:
        await r.session.start_profile("walk")
        await r.wait_for("workout_aborted")
        aborted = r.recorder.of_type("workout_aborted")[0]
        await asyncio.sleep(5.0)
        await r.session.emergency_stop()
        await r.wait_for("stop_unconfirmed")
        alarm = r.recorder.of_type("stop_unconfirmed")[0]
        due = deceleration_allowance_s(2.0)
        assert alarm.at - aborted.at <= due + 1.0, (aborted.at, alarm.at, due)


async def test_no_workout_starts_on_a_silent_deck_while_a_stop_is_unconfirmed() -> None:
    """Property counterexample (soak seed 300): after a no_data abort the deck's belt was last
    measured moving and nothing can confirm it stands. A new start_profile is refused (as for
    a moving belt), and the stop ladder keeps sending Stop: an accepted workout used to
    silence it for good."""
    async with rig(lambda c: GoesSilentMidRun(c, silent_at=100.0)) as r:
        await r.session.start_profile("forward-walk")
        await r.wait_for("workout_aborted")
        aborted = r.recorder.of_type("workout_aborted")[0]
        with pytest.raises(CommandRejectedError) as refused:
            await r.session.start_profile("forward-walk")
        assert refused.value.code == "belt_moving"
        await r.wait_for("stop_unconfirmed")
        await asyncio.sleep(20.0)
        later = [w for w in r.treadmill.writes if w.kind == "stop" and w.at > aborted.at + 10.0]
        assert len(later) >= 5, later  # every 2 s once the deck's stopping time is over
        assert len(r.recorder.of_type("workout_started")) == 1


async def test_emergency_stop_stops_at_once_and_never_resumes() -> None:
    async with rig() as r:
        await r.session.start_profile("forward-walk")
        await asyncio.sleep(200)
        await r.session.emergency_stop()
        stop_at = r.clock.now()
        assert r.treadmill.writes[-1].kind == "stop"
        assert r.treadmill.writes[-1].at == stop_at
        await asyncio.sleep(600)
        assert [w for w in r.treadmill.writes if w.at > stop_at] == []
        assert r.session.snapshot().abort_reason is AbortReason.EMERGENCY_STOP
        await r.session.emergency_stop()  # twice is harmless and does not raise


async def test_a_new_start_is_the_only_way_out_of_aborted() -> None:
    async with rig() as r:
        await r.session.start_profile("forward-walk")
        await asyncio.sleep(30)
        await r.session.emergency_stop()
        await asyncio.sleep(30)
        for command in (r.session.pause, r.session.resume, r.session.skip_segment):
            with pytest.raises(CommandRejectedError):
                await command()
        assert r.session.snapshot().phase is Phase.ABORTED
        await r.session.start_profile("forward-walk")
        await asyncio.sleep(30)
        assert r.session.snapshot().phase is Phase.RUNNING
        assert r.treadmill.running


async def test_pause_ramps_down_and_resume_restarts_slowly() -> None:
    async with rig() as r:
        await r.session.start_profile("forward-walk")
        await asyncio.sleep(600)
        await r.session.pause()
        with pytest.raises(CommandRejectedError) as again:
            await r.session.pause()
        assert again.value.code == "invalid_state"
        await asyncio.sleep(60)
        assert r.session.snapshot().phase is Phase.PAUSED
        assert not r.treadmill.running
        pause = [w for w in r.treadmill.writes if w.kind == "pause"][-1]
        before = [w for w in r.treadmill.writes if w.kind == "speed" and w.at <= pause.at]
        assert before[-1].value == 1.0
        remaining_paused = r.session.snapshot().remaining_s
        elapsed_paused = r.session.snapshot().elapsed_s
        await asyncio.sleep(120)
        # The workout's clock stands still while paused: both what is left and what was done.
        assert r.session.snapshot().remaining_s == remaining_paused
        assert r.session.snapshot().elapsed_s == elapsed_paused
        await r.session.resume()
        await asyncio.sleep(30)
        assert r.session.snapshot().phase is Phase.RUNNING
        start = [w for w in r.treadmill.writes if w.kind == "start"][-1]
        after = [w for w in r.treadmill.writes if w.kind == "speed" and w.at >= start.at]
        assert after[0].value == 1.0
        assert r.treadmill.target_speed == 5.0
        await r.wait_for("workout_finished")
        finished = r.recorder.of_type("workout_finished")[0]
        assert isinstance(finished, WorkoutFinished)
        # More than three minutes paused, yet the summary counts only the walking: the 45
        # minutes of the plan (and the few seconds the first Start takes).
        assert finished.at >= 2700 + 180
        assert 2700 <= finished.elapsed_s <= 2710
        assert r.session.snapshot().elapsed_s == finished.elapsed_s


async def test_skip_moves_to_the_next_segment() -> None:
    async with rig(library=short_library()) as r:
        await r.session.start_profile("short-turns")
        await asyncio.sleep(20)
        await r.session.skip_segment()
        await r.wait_for("turn_now")
        assert r.recorder.of_type("segment_skipped")
        assert r.clock.now() < 45  # well before the 60 s segment would have ended
        with pytest.raises(CommandRejectedError) as during_turn:
            await r.session.skip_segment()
        assert during_turn.value.code == "invalid_state"


async def test_manual_nudges_stay_within_the_limits() -> None:
    async with rig(library=short_library()) as r:
        await r.session.start_profile("short-turns")
        await asyncio.sleep(20)
        assert await r.session.set_speed(4.5) == 4.5
        await asyncio.sleep(5)
        assert r.treadmill.target_speed == 4.5
        assert await r.session.set_speed(30) == 8.0  # general forward cap
        await asyncio.sleep(0.1)
        assert r.recorder.of_type("limit_applied")
        await r.wait_for("segment_started", count=3)  # the backward segment
        await asyncio.sleep(15)
        assert await r.session.set_speed(9.0) == 5.0  # backward cap
        assert await r.session.set_incline(14.0) == 10.0  # backward incline cap
        await asyncio.sleep(20)
        assert max(w.value or 0 for w in r.treadmill.writes if w.kind == "speed") <= 8.0
        backward_speeds = [
            w.value for w in r.treadmill.writes if w.kind == "speed" and 75 <= w.at <= 125
        ]
        assert max(v or 0 for v in backward_speeds) <= 5.0


async def test_rejected_commands_change_nothing() -> None:
    async with rig(library=short_library()) as r:
        with pytest.raises(CommandRejectedError) as unknown:
            await r.session.start_profile("no-such-profile")
        assert unknown.value.code == "unknown_profile"
        with pytest.raises(CommandRejectedError) as heavy:
            await r.session.start_profile("short-turns", body_weight_kg=5000)
        assert heavy.value.code == "invalid_argument"
        for command in (
            r.session.pause,
            r.session.resume,
            r.session.skip_segment,
            r.session.confirm_turn,
        ):
            with pytest.raises(CommandRejectedError) as idle:
                await command()
            assert idle.value.code == "no_workout"
        with pytest.raises(CommandRejectedError) as nudge:
            await r.session.set_speed(3.0)
        assert nudge.value.code == "no_workout"
        assert r.treadmill.writes == []
        assert r.session.snapshot().phase is Phase.IDLE
        await r.session.start_profile("short-turns")
        with pytest.raises(CommandRejectedError) as running:
            await r.session.start_profile("short-turns")
        assert running.value.code == "workout_running"
        with pytest.raises(CommandRejectedError) as confirm:
            await r.session.confirm_turn()
        assert confirm.value.code == "invalid_state"


async def test_start_is_refused_while_disconnected() -> None:
    async with rig(lambda c: DropsLinkMidRun(c, drop_at=5.0, back_after=1000.0)) as r:
        await asyncio.sleep(10)
        with pytest.raises(CommandRejectedError) as rejected:
            await r.session.start_profile("forward-walk")
        assert rejected.value.code == "not_connected"
        assert r.treadmill.writes == []


async def test_a_treadmill_that_cannot_go_slow_enough_is_refused() -> None:
    def stiff(clock: LoopClock) -> ObedientTreadmill:
        return ObedientTreadmill(clock, speed_range=SpeedRange(1.6, 16.0, 0.1))

    async with rig(stiff) as r:
        with pytest.raises(CommandRejectedError) as rejected:
            await r.session.start_profile("forward-walk")
        assert rejected.value.code == "limit_exceeded"
        assert "restart" in rejected.value.message


async def test_shutdown_stops_the_belt() -> None:
    async with rig() as r:
        await r.session.start_profile("forward-walk")
        await asyncio.sleep(100)
        await r.session.shutdown()
        assert r.treadmill.writes[-1].kind == "stop"
        assert r.session.snapshot().abort_reason is AbortReason.SHUTDOWN


class SlipsBelt(ObedientTreadmill):
    """A slipping deck: the belt only ever reaches `share` of the target."""

    share = 0.95

    def _advance(self, now: float) -> None:
        super()._advance(now)
        self.belt_speed = min(self.belt_speed, self.target_speed * self.share)


async def test_distance_comes_from_the_measured_belt_not_the_target() -> None:
    async with rig(SlipsBelt) as r:
        await r.session.start_profile("forward-walk")
        await r.wait_for("workout_finished", within_s=3000)
        finished = r.recorder.of_type("workout_finished")[0]
        assert isinstance(finished, WorkoutFinished)
        assert finished.distance_forward_m == pytest.approx(3500 * 0.95, rel=0.01)


async def test_a_belt_that_does_not_follow_its_target_aborts_and_stops() -> None:
    class HalfSpeedBelt(SlipsBelt):
        share = 0.5

    async with rig(HalfSpeedBelt) as r:
        await r.session.start_profile("forward-walk")
        await r.wait_for("workout_aborted", within_s=600)
        aborted = r.recorder.of_type("workout_aborted")[0]
        assert isinstance(aborted, WorkoutAborted)
        assert aborted.reason is AbortReason.TARGET_NOT_FOLLOWED
        # Caught while ramping up, well before the steady 3.5 km/h: at 1.75 km/h measured.
        assert max(speed for _, speed in r.treadmill.speed_trace) < 2.5
        await r.wait_for("stop_confirmed", within_s=60)
        assert r.treadmill.belt_speed == 0.0
        assert r.treadmill.writes[-1].kind == "stop"


async def test_the_backward_budget_is_kept() -> None:
    limits = SafetyLimits(general=LimitSet(max_backward_s=120.0))
    async with rig(limits=limits) as r:
        await r.session.start_profile("p2-retro-core")
        await r.wait_for("workout_finished", within_s=3000)
        assert r.session.governor.backward_used_s() <= 120.0 + 1.0
        assert r.session.snapshot().backward_s <= 121.0


async def test_a_speed_raised_at_the_console_is_brought_back_within_the_limits() -> None:
    # short-turns walks backward at 3.0 km/h from 70 s; at 100 s the console asks for 8.
    def make(clock: LoopClock) -> ObedientTreadmill:
        return SpeedRaisedAtConsoleMidRun(clock, press_at=100.0, speed_kmh=8.0)

    async with rig(make, library=short_library()) as r:
        await r.session.start_profile("short-turns")
        await r.wait_until(115.0)
        assert r.treadmill.target_speed == 3.0
        after = [
            w.value or 0.0 for w in r.treadmill.writes if w.kind == "speed" and 100 <= w.at <= 115
        ]
        # Straight back under the 5.0 km/h backward cap, then ramped to the planned 3.0.
        assert after[0] == 5.0
        assert after == sorted(after, reverse=True)
        assert after[-1] == 3.0
        assert r.session.snapshot().phase is Phase.RUNNING


# ----------------------------------------------------------------------------- supervision


class RaisesOnFastSpeed(ObedientTreadmill):
    """A link whose speed write raises an error no link should raise (a bug somewhere below
    the engine) once the belt is asked for more than 2 km/h."""

    def __init__(self, clock: LoopClock, **kwargs: Any) -> None:
        super().__init__(clock, **kwargs)

    async def set_target_speed(self, speed_kmh: float) -> float:
        if speed_kmh > 2.0:
            raise RuntimeError("a bug below the engine")
        return await super().set_target_speed(speed_kmh)


async def test_a_bug_in_the_workout_aborts_it_stops_the_belt_and_is_reported_once() -> None:
    async with rig(RaisesOnFastSpeed) as r:
        await r.session.start_profile("forward-walk")
        await r.wait_for("workout_aborted", within_s=120)
        await r.wait_for("stop_confirmed", within_s=60)
        aborts = r.recorder.of_type("workout_aborted")
        assert len(aborts) == 1
        assert isinstance(aborts[0], WorkoutAborted)
        assert aborts[0].reason is AbortReason.INTERNAL_ERROR
        assert "a bug below the engine" in aborts[0].detail
        assert r.treadmill.belt_speed == 0.0
        assert r.treadmill.writes[-1].kind == "stop"
        assert r.session.snapshot().phase is Phase.ABORTED
        # Nothing resumes: the belt is still standing ten minutes later.
        await asyncio.sleep(600)
        assert not [w for w in r.treadmill.writes if w.at > aborts[0].at and w.kind == "start"]


async def test_a_crashed_watchdog_stops_the_belt_before_the_session_fails() -> None:
    from treadmilld.engine.session import WorkoutSession

    class BrokenWatchdogSession(WorkoutSession):
        async def _watchdog(self) -> None:
            await self._clock.sleep(30.0)
            raise RuntimeError("watchdog bug")

    clock = LoopClock()
    treadmill = ObedientTreadmill(clock)
    session = BrokenWatchdogSession(
        treadmill, library=ProfileLibrary(), limits=SafetyLimits(), clock=clock
    )
    link_task = asyncio.create_task(treadmill.run())
    run_task = asyncio.create_task(session.run())
    await asyncio.sleep(2.0)
    await session.start_profile("forward-walk")
    with pytest.raises(ExceptionGroup) as failed:
        await run_task
    assert failed.group_contains(RuntimeError, match="watchdog bug")
    # By the time the error surfaced, Stop had been sent and the workout had ended.
    assert treadmill.writes[-1].kind == "stop"
    assert session.snapshot().phase is Phase.ABORTED
    assert session.snapshot().abort_reason is AbortReason.INTERNAL_ERROR
    await treadmill.close()
    with contextlib.suppress(asyncio.CancelledError):
        await link_task


class RunsFasterThanTold(ObedientTreadmill):
    """A deck whose belt settles 1.5 km/h above every target (a faulty speed sensor loop)."""

    def _advance(self, now: float) -> None:
        super()._advance(now)
        if self.running and self.belt_speed >= self.target_speed - 1e-9:
            self.belt_speed = self.target_speed + 1.5


async def test_a_belt_faster_than_its_target_aborts_as_overspeed_and_stops() -> None:
    async with rig(RunsFasterThanTold) as r:
        await r.session.start_profile("forward-walk")
        await r.wait_for("workout_aborted", within_s=120)
        aborts = r.recorder.of_type("workout_aborted")
        assert isinstance(aborts[0], WorkoutAborted)
        assert aborts[0].reason is AbortReason.OVERSPEED
        # Caught within a few records of the first Start: the belt never got far.
        first_start = next(w.at for w in r.treadmill.writes if w.kind == "start")
        assert aborts[0].at - first_start <= 5.0
        await r.wait_for("stop_confirmed", within_s=60)
        assert r.treadmill.belt_speed == 0.0


# ----------------------------------------------------------------------------- belt-first decks

WALK_AT_3 = """
name = "walk-at-3"
title = "Walk at 3"
description = "F 60 at 3 km/h"
suits = "tests"
sources = ["test"]
[[segments]]
direction = "forward"
duration_s = 60
speed_kmh = 3.0
"""


def belt_first_deck(
    *,
    answer_delay_s: float,
    resumes_at_last_target: bool,
    acceleration_kmh_per_s: float,
    deceleration_kmh_per_s: float,
    refuses_reset: bool = False,
) -> Any:
    """A 3G Cardio-like deck (the simulator's `belt-first` preset): Set Target Speed refused
    while the belt stands, 0.8 km/h minimum, every write answered late."""

    def make(clock: LoopClock) -> ObedientTreadmill:
        return ObedientTreadmill(
            clock,
            speed_range=SpeedRange(0.8, 19.0, 0.1),
            acceleration_kmh_per_s=acceleration_kmh_per_s,
            behaviour=DeckBehaviour(
                deceleration_kmh_per_s=deceleration_kmh_per_s,
                answer_delay_s=answer_delay_s,
                reports_console_status=False,
                resumes_at_last_target=resumes_at_last_target,
                refuses_speed_while_standing=True,
                refuses_reset=refuses_reset,
            ),
        )

    return make


async def test_a_belt_first_deck_at_its_minimum_before_a_late_restart_speed_is_no_overspeed() -> (
    None
):
    """Soak seed 501: Start goes first and the restart speed (1.0 km/h) lands 2.56 s later;
    meanwhile the deck runs at its own minimum, 0.8 km/h, as it does when Start comes with no
    target. That is the deck doing what it was told, not an overspeed."""
    library = ProfileLibrary.from_profiles([parse_profile(WALK_AT_3, file="walk-at-3.toml")])
    make = belt_first_deck(
        answer_delay_s=2.5625,
        resumes_at_last_target=False,
        acceleration_kmh_per_s=1.0,
        deceleration_kmh_per_s=0.25,
    )
    async with rig(make, library=library) as r:
        await r.session.start_profile("walk-at-3")
        await r.wait_for("stop_confirmed", within_s=300)  # the workout's end, either way
        assert r.recorder.of_type("workout_aborted") == []
        assert len(r.recorder.of_type("workout_finished")) == 1
        writes = r.treadmill.writes
        start = next(w for w in writes if w.kind == "start")
        restart = next(w for w in writes if w.kind == "speed")
        assert restart.value == 1.0
        # The case it pins: the belt ran at the deck's minimum for more than the 2.4 s the
        # restart ceiling took to decay below it.
        at_minimum = [
            s.at
            for s in r.treadmill.belt_trace
            if start.at < s.at < restart.at and abs(s.speed_kmh - 0.8) < 1e-9
        ]
        assert at_minimum, "the belt never ran at the deck's minimum before the restart speed"
        assert restart.at - start.at > 2.4


async def test_a_belt_first_deck_resuming_an_old_target_is_reset_before_the_next_start() -> None:
    """A belt-first deck that keeps its target over a Stop: an emergency stop at 3 km/h, then a
    new workout. Start must go first (no speed while standing), so the old target is cleared
    with FTMS Reset before it, and the belt comes back at its minimum, never near 3 km/h."""
    library = ProfileLibrary.from_profiles([parse_profile(WALK_AT_3, file="walk-at-3.toml")])
    make = belt_first_deck(
        answer_delay_s=3.0,
        resumes_at_last_target=True,
        acceleration_kmh_per_s=2.0,
        deceleration_kmh_per_s=1.0,
    )
    async with rig(make, library=library) as r:
        await r.session.start_profile("walk-at-3")
        while r.treadmill.belt_speed < 3.0 - 1e-9:  # noqa: ASYNC110 - virtual time
            await asyncio.sleep(0.5)
        await r.session.emergency_stop()
        await r.wait_for("stop_confirmed", within_s=60)
        assert r.treadmill.target_speed == 3.0  # kept over the Stop
        stopped_at = r.clock.now()
        await asyncio.sleep(5.0)
        await r.session.start_profile("walk-at-3")
        await r.wait_for("segment_started", count=2, within_s=120)
        await asyncio.sleep(20.0)
        after = [w for w in r.treadmill.writes if w.at > stopped_at]
        assert [w.kind for w in after][:3] == ["reset", "start", "speed"]
        start = after[1]
        restart_speed = after[2].value
        assert restart_speed is not None
        first_seconds = [
            s.speed_kmh for s in r.treadmill.belt_trace if start.at <= s.at <= start.at + 3.0
        ]
        assert max(first_seconds) <= restart_speed + 1e-6, first_seconds
        assert r.recorder.of_type("workout_aborted")[1:] == []


async def test_a_belt_first_deck_refusing_reset_is_caught_before_the_restart_speed() -> None:
    """The same deck without Reset: nothing can clear its old target, so Start goes first and
    the belt heads back for 3 km/h; that is an overspeed on the measured belt, caught against
    the restart speed while the restart speed is still on its way (3 s), not only once it
    lands."""
    library = ProfileLibrary.from_profiles([parse_profile(WALK_AT_3, file="walk-at-3.toml")])
    make = belt_first_deck(
        answer_delay_s=3.0,
        resumes_at_last_target=True,
        acceleration_kmh_per_s=2.0,
        deceleration_kmh_per_s=1.0,
        refuses_reset=True,
    )
    async with rig(make, library=library) as r:
        await r.session.start_profile("walk-at-3")
        while r.treadmill.belt_speed < 3.0 - 1e-9:  # noqa: ASYNC110 - virtual time
            await asyncio.sleep(0.5)
        await r.session.emergency_stop()
        await r.wait_for("stop_confirmed", within_s=60)
        assert r.treadmill.target_speed == 3.0  # kept over the Stop
        await asyncio.sleep(5.0)
        await r.session.start_profile("walk-at-3")
        await r.wait_for("workout_aborted", count=2, within_s=120)
        abort = r.recorder.of_type("workout_aborted")[-1]
        assert isinstance(abort, WorkoutAborted)
        assert abort.reason is AbortReason.OVERSPEED
        await r.wait_for("stop_confirmed", count=2, within_s=60)
        start = [w for w in r.treadmill.writes if w.kind == "start"][-1]
        restart = next(w for w in r.treadmill.writes if w.kind == "speed" and w.at > start.at)
        assert restart.sent == start.at  # sent the moment Start was answered
        assert abort.at < restart.at, (start.at, abort.at, restart.at)


async def test_body_weight_set_anytime_is_used_from_then_on() -> None:
    """Set between workouts: the next start without a weight uses it. Set during one: its
    calories count with it from that moment, and what was counted stays."""
    async with rig() as r:
        await r.session.set_body_weight(90)
        assert r.session.snapshot().body_weight_kg == 90
        await r.session.start_profile("forward-walk")
        await r.wait_for("workout_started")
        started = r.recorder.of_type("workout_started")[0]
        assert isinstance(started, WorkoutStarted)
        assert started.body_weight_kg == 90
        await asyncio.sleep(900)  # into the 35 minutes at 5.0 km/h
        first = r.session.snapshot().calories_kcal
        await asyncio.sleep(300)
        second = r.session.snapshot().calories_kcal
        await r.session.set_body_weight(45)
        assert r.session.snapshot().body_weight_kg == 45
        await asyncio.sleep(300)
        third = r.session.snapshot().calories_kcal
        assert third - second == pytest.approx((second - first) / 2, rel=0.02)
        with pytest.raises(CommandRejectedError) as refused:
            await r.session.set_body_weight(12)
        assert refused.value.code == "invalid_argument"
        assert r.session.snapshot().body_weight_kg == 45


TURNS_AND_REST = """
name = "turns-and-rest"
title = "Turns and a rest"
description = "F 60, rest 30, F 60, B 60"
suits = "tests"
sources = ["test"]
[[segments]]
direction = "forward"
duration_s = 60
speed_kmh = 4.0
incline_pct = 2.0
[[segments]]
direction = "rest"
duration_s = 30
[[segments]]
direction = "forward"
duration_s = 60
speed_kmh = 4.0
[[segments]]
direction = "backward"
duration_s = 60
speed_kmh = 3.0
"""


async def test_a_stop_command_ends_the_workout_as_stopped_with_its_summary() -> None:
    async with rig() as r:
        await r.session.start_profile("forward-walk", body_weight_kg=80)
        await asyncio.sleep(600)
        await r.session.pause()
        await asyncio.sleep(300)
        await r.session.stop()
        await r.wait_for("workout_stopped")
        await r.wait_for("stop_confirmed")
        [stopped] = r.recorder.of_type("workout_stopped")
        assert isinstance(stopped, WorkoutStopped)
        snapshot = r.session.snapshot()
        # The person's own choice, not a fault: a summary like a finish, no abort.
        assert r.recorder.of_type("workout_aborted") == []
        assert snapshot.phase is Phase.STOPPED
        assert snapshot.outcome == "stopped"
        assert snapshot.abort_reason is None
        assert stopped.profile == "forward-walk"
        # Ten minutes walked, five paused: the time is the walking only.
        assert stopped.elapsed_s == pytest.approx(600, abs=1)
        assert snapshot.elapsed_s == stopped.elapsed_s
        assert stopped.distance_forward_m == snapshot.distance_forward_m
        assert stopped.distance_forward_m > 500
        assert stopped.distance_backward_m == 0
        assert stopped.calories_kcal == snapshot.calories_kcal
        assert stopped.calories_kcal > 0
        # Stopped as at any ending: measured standing, no target, and nothing moves until a
        # new start.
        assert snapshot.belt is BeltState.STANDING
        assert (snapshot.target_speed_kmh, snapshot.target_incline_pct) == (None, None)
        assert r.treadmill.writes[-1].kind == "stop"
        assert snapshot.progress_pct is not None
        assert 0 < snapshot.progress_pct < 100
        await asyncio.sleep(300)
        assert not r.treadmill.running
        for command in (r.session.pause, r.session.resume, r.session.skip_segment):
            with pytest.raises(CommandRejectedError):
                await command()
        assert r.session.snapshot().phase is Phase.STOPPED
        assert r.session.snapshot().progress_pct == snapshot.progress_pct
        await r.session.start_profile("forward-walk")
        assert r.session.snapshot().outcome is None
        assert r.session.snapshot().phase is Phase.RUNNING


async def test_a_stop_while_walking_ramps_down_before_the_belt_stops() -> None:
    async with rig() as r:
        await r.session.start_profile("forward-walk")
        await asyncio.sleep(600)
        await r.session.stop()
        await r.wait_for("workout_stopped")
        await r.wait_for("stop_confirmed")
        stop = next(w for w in r.treadmill.writes if w.kind == "stop")
        speeds = [w.value for w in r.treadmill.writes if w.kind == "speed" and w.at <= stop.at]
        assert speeds[-1] == 1.0  # never a Stop from walking speed
        assert r.session.snapshot().belt is BeltState.STANDING
        assert r.session.snapshot().phase is Phase.STOPPED


async def test_outcome_and_progress_say_how_far_the_last_workout_got() -> None:
    async with rig(library=short_library()) as r:
        idle = r.session.snapshot()
        assert (idle.outcome, idle.progress_pct) == (None, None)
        await r.session.start_profile("short-turns")
        await asyncio.sleep(30)
        early = r.session.snapshot()
        assert early.outcome is None
        assert early.progress_pct is not None
        assert 0 < early.progress_pct < 50
        await r.wait_for("workout_finished")
        finished = r.session.snapshot()
        assert (finished.outcome, finished.progress_pct) == ("finished", 100.0)
        assert (finished.target_speed_kmh, finished.target_incline_pct) == (None, None)
        await asyncio.sleep(30)
        await r.session.start_profile("short-turns")
        assert r.session.snapshot().outcome is None
        await asyncio.sleep(30)
        await r.session.emergency_stop()
        aborted = r.session.snapshot()
        assert aborted.outcome == AbortReason.EMERGENCY_STOP.value
        assert aborted.progress_pct is not None
        assert 0 < aborted.progress_pct < 50


async def test_targets_are_shown_only_while_the_workout_drives_the_belt() -> None:
    library = ProfileLibrary.from_profiles(
        [parse_profile(TURNS_AND_REST, file="turns-and-rest.toml")]
    )
    async with rig(library=library) as r:
        r.recorder.keep_state = True
        assert r.session.snapshot().target_speed_kmh is None  # idle
        await r.session.start_profile("turns-and-rest")
        await asyncio.sleep(40)
        walking = r.session.snapshot()
        assert walking.phase is Phase.RUNNING
        assert walking.target_speed_kmh is not None
        await r.session.pause()
        await asyncio.sleep(20)
        await r.session.resume()
        await r.wait_for("turn_now")  # through the rest, into the turn before backward
        await asyncio.sleep(5)
        turning = r.session.snapshot()
        assert turning.phase is Phase.TURNING
        await asyncio.sleep(30)
        await r.session.emergency_stop()
        await r.wait_for("stop_confirmed")
        seen = {
            e.snapshot.phase
            for e in r.recorder.events
            if isinstance(e, StateChanged) and e.snapshot.target_speed_kmh is not None
        }
        phases = {e.snapshot.phase for e in r.recorder.events if isinstance(e, StateChanged)}
        # Every phase was shown, and only walking ever showed a target.
        assert {Phase.PAUSED, Phase.RESTING, Phase.TURNING, Phase.ABORTED} <= phases
        assert seen == {Phase.RUNNING}
        for event in r.recorder.events:
            if isinstance(event, StateChanged) and event.snapshot.phase is not Phase.RUNNING:
                assert event.snapshot.target_incline_pct is None, event.snapshot
        assert r.session.snapshot().target_speed_kmh is None
        assert r.session.snapshot().target_incline_pct is None


BACKWARD_FIRST = """
name = "backward-first"
title = "Backward first"
description = "B 60, F 60"
suits = "tests"
sources = ["test"]
[[segments]]
direction = "backward"
duration_s = 60
speed_kmh = 2.0
[[segments]]
direction = "forward"
duration_s = 60
speed_kmh = 3.0
"""


async def test_a_turn_before_the_first_walk_is_workout_time_but_not_plan_progress() -> None:
    library = ProfileLibrary.from_profiles(
        [
            parse_profile(SHORT_TURNS, file="short-turns.toml"),
            parse_profile(BACKWARD_FIRST, file="backward-first.toml"),
        ]
    )
    async with rig(library=library) as r:
        await r.session.start_profile("short-turns")  # ends facing forward
        await r.wait_for("workout_finished")
        turns_before = len(r.recorder.of_type("turn_now"))
        await asyncio.sleep(30)
        await r.session.start_profile("backward-first")
        await r.wait_for("turn_now", count=turns_before + 1)
        turning = r.session.snapshot()
        assert turning.phase is Phase.TURNING
        await r.session.pause()  # a pause inside that turn is counted once, not twice
        await asyncio.sleep(30)
        await r.session.resume()
        await asyncio.sleep(1)  # inside the 3-2-1 that follows a pause in a turn
        still = r.session.snapshot()
        # The person turns round before the plan begins: nothing of it is done yet.
        assert still.phase is Phase.TURNING
        plan = r.session.plan
        assert plan is not None
        assert still.remaining_s == turning.remaining_s == plan.total_s
        assert still.progress_pct == turning.progress_pct == 0.0
        await r.wait_for("workout_finished", count=2)
        [_, finished] = r.recorder.of_type("workout_finished")
        assert isinstance(finished, WorkoutFinished)
        # The turn is workout time (the person was on the belt), the pause is not.
        started = r.recorder.of_type("workout_started")[-1].at
        assert finished.elapsed_s == pytest.approx(finished.at - started - 30, abs=1)
        assert finished.elapsed_s > plan.total_s + 3  # the turn's 3-2-1 at least


TWO_FORWARD = """
name = "two-forward"
title = "Two forward segments"
description = "F 60 at 4.0, F 60 at 5.0, no turn between"
suits = "tests"
sources = ["test"]
[[segments]]
direction = "forward"
duration_s = 60
speed_kmh = 4.0
incline_pct = 1.0
[[segments]]
direction = "forward"
duration_s = 60
speed_kmh = 5.0
incline_pct = 2.0
"""


def two_forward_library() -> ProfileLibrary:
    return ProfileLibrary.from_profiles([parse_profile(TWO_FORWARD, file="two-forward.toml")])


def segment_start(r: Any, index: int) -> float:
    started = [e for e in r.recorder.events if isinstance(e, SegmentStarted) and e.index == index]
    return started[0].at


async def test_a_nudge_holds_until_its_segment_ends_then_the_plan_takes_over() -> None:
    async with rig(library=two_forward_library()) as r:
        await r.session.start_profile("two-forward")
        await r.wait_for("segment_started")
        first = segment_start(r, 0)
        await r.wait_until(first + 30)
        assert await r.session.set_incline(3.0) == 3.0
        await r.wait_until(first + 59)
        assert r.treadmill.target_incline == 3.0
        await r.wait_for("segment_started", count=2)
        await r.wait_until(segment_start(r, 1) + 10)
        # The next segment brings its own planned incline: the nudge ended at the boundary.
        assert r.treadmill.target_incline == 2.0


async def test_a_nudge_in_the_last_moment_of_a_segment_is_refused_not_lost() -> None:
    async with rig(library=two_forward_library()) as r:
        await r.session.start_profile("two-forward")
        await r.wait_for("segment_started")
        await r.wait_until(segment_start(r, 0) + 59.6)
        writes_before = list(r.treadmill.writes)
        for nudge in (r.session.set_incline(6.0), r.session.set_speed(6.0)):
            with pytest.raises(CommandRejectedError) as refused:
                await nudge
            assert refused.value.code == "segment_boundary"
            assert "segment 1 ends in 0.4 s" in refused.value.message
            assert "segment 2" in refused.value.message
        await asyncio.sleep(0)
        assert r.treadmill.writes == writes_before
        # Once the next segment has started, the same nudge is carried out.
        await r.wait_for("segment_started", count=2)
        await r.wait_until(segment_start(r, 1) + 5)
        assert await r.session.set_incline(6.0) == 6.0
        await asyncio.sleep(3)
        assert r.treadmill.target_incline == 6.0


async def test_a_speed_nudge_while_ramping_down_into_a_turn_is_refused() -> None:
    async with rig(library=short_library()) as r:
        await r.session.start_profile("short-turns")
        await r.wait_for("segment_started")
        await r.wait_until(segment_start(r, 0) + 59)
        assert r.session.snapshot().phase is Phase.RUNNING
        with pytest.raises(CommandRejectedError) as refused:
            await r.session.set_speed(5.0)
        assert refused.value.code == "segment_boundary"
        assert "ramping down" in refused.value.message
        assert max(w.value or 0 for w in r.treadmill.writes if w.kind == "speed") <= 4.0


async def test_every_log_line_of_a_workout_names_its_treadmill() -> None:
    # The session, its executor and its governor each log; the MQTT worker calls the session
    # from a task of its own, so the id must be bound in them, not only in the task context.
    with capture_logs() as logs:
        async with rig(library=short_library()) as r:
            await r.session.start_profile("short-turns")
            await r.wait_for("turn_now")
            await r.wait_for("segment_started", count=3)
            await r.session.pause()
            await r.wait_for("workout_paused")
            await r.session.resume()
            await asyncio.sleep(5)
            await r.session.emergency_stop()
            await asyncio.sleep(10)
    assert {entry["event"] for entry in logs} >= {
        "segment_started",
        "belt_started",
        "emergency_stop_sent",
        "workout_aborted",
    }
    unnamed = [entry for entry in logs if entry.get("treadmill_id") != "tm-1"]
    assert unnamed == []
