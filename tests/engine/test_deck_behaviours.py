"""Safety decided from the measured belt, on simulated decks that behave like real ones.

Every test runs the workout session over the real BleTreadmillLink (real bleak client) against
a simulated deck on Bumble, in virtual time. The decks' behaviours are the ones real treadmills
show (docs/simulator.md, "Deck behaviours"): no status for console buttons, slow deceleration,
resuming at the last target, left inclined, ignoring speed commands, starting on connect,
refusing Stop, dropping the link during a Stop, answering late, echoing their deceleration.
"""

from __future__ import annotations

import asyncio

import pytest
from treadmilld_sim import RunningState, SimulatedTreadmillConfig

from treadmilld.engine.api import (
    AbortReason,
    BeltState,
    Phase,
    StopConfirmed,
    StopOutcome,
    StopUnconfirmed,
    TurnCountdown,
    TurnNow,
    WorkoutAborted,
    WorkoutStopped,
)
from treadmilld.engine.belt import (
    INCLINE_TOLERANCE_PCT,
    SPEED_TOLERANCE_KMH,
    deceleration_allowance_s,
)
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.profile import Profile, parse_profile
from treadmilld.ftms import (
    ControlOpcode,
    RequestControl,
    Reset,
    ResultCode,
    SetTargetInclination,
    SetTargetSpeed,
    StartOrResume,
    StopKind,
    StopOrPause,
)

from .sim_rig import SimRig, sim_rig

TURN_S = 10.0  # the general turn time (docs/safety.md)
RESTART_KMH = 1.0


def parsed(name: str, *segments: tuple[str, float, float]) -> Profile:
    body = "".join(
        f'[[segments]]\ndirection = "{direction}"\nduration_s = {duration}\nspeed_kmh = {speed}\n'
        for direction, duration, speed in segments
    )
    text = (
        f'name = "{name}"\ntitle = "{name}"\ndescription = "test"\nsuits = "tests"\n'
        f'sources = ["test"]\n{body}'
    )
    return parse_profile(text, file=f"{name}.toml")


def profile(name: str, *segments: tuple[str, float, float]) -> ProfileLibrary:
    return ProfileLibrary.from_profiles([parsed(name, *segments)])


TURNS = profile("turns", ("forward", 60, 4.0), ("backward", 90, 3.0), ("forward", 60, 4.0))


def starts(rig: SimRig) -> list[float]:
    return [at for at, request in rig.requests if isinstance(request, StartOrResume)]


def deck(name: str, **behaviour: object) -> SimulatedTreadmillConfig:
    return SimulatedTreadmillConfig.model_validate({"name": name, **behaviour})


def aborted(rig: SimRig) -> WorkoutAborted:
    events = [e for e in rig.events if isinstance(e, WorkoutAborted)]
    assert len(events) == 1, events
    return events[0]


# ----------------------------------------------------------------------------- unreported stops


@pytest.mark.parametrize("action", ["press_stop", "pull_safety_key"])
async def test_a_stop_the_deck_does_not_report_aborts_and_the_belt_never_restarts(
    action: str,
) -> None:
    async with sim_rig(deck("SIM-QUIET", report_console_status=False), library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await asyncio.sleep(40.0)  # walking forward at 4 km/h
        assert rig.deck.model.belt_speed_kmh > 3.0
        getattr(rig.deck.model, action)()
        acted_at = rig.clock.now()
        await rig.wait_for("workout_aborted")
        assert aborted(rig).reason is AbortReason.BELT_STOPPED
        if action == "pull_safety_key":
            rig.deck.model.insert_safety_key()
        # Half an hour later nothing has asked the belt to move, turn or no turn.
        await asyncio.sleep(1800.0)
        moving = [
            r
            for r in rig.requests_after(acted_at)
            if isinstance(r, StartOrResume) or (isinstance(r, SetTargetSpeed) and r.speed_kmh > 0)
        ]
        assert moving == []
        assert max(s.speed_kmh for s in rig.belt if s.at > acted_at + 10.0) == 0.0
        assert rig.session.snapshot().phase is Phase.ABORTED


# ----------------------------------------------------------------------------- turns


@pytest.mark.parametrize("deceleration", [1.0, 0.25])
async def test_the_turn_counts_standing_time_from_measured_standstill(deceleration: float) -> None:
    config = deck("SIM-SLOW", deceleration_kmh_per_s=deceleration)
    async with sim_rig(config, library=TURNS) as rig:
        await rig.session.start_profile("turns")
        turn_now = await rig.wait_for("turn_now")
        restart = await rig.wait_requests(StartOrResume, 2)  # the backward walk
        stood_from = rig.last_moving_before(restart)
        # "Turn now" only once the belt stands, and the person stands the full turn time.
        assert rig.last_moving_before(turn_now.at) < turn_now.at
        assert [s.speed_kmh for s in rig.belt if turn_now.at <= s.at < restart] == [0.0] * len(
            [s for s in rig.belt if turn_now.at <= s.at < restart]
        )
        assert restart - stood_from >= TURN_S
        countdown = [e for e in rig.events if isinstance(e, TurnCountdown)][:3]
        assert [e.seconds_left for e in countdown] == [3, 2, 1]
        assert countdown[0].at >= turn_now.at


async def test_a_pause_during_the_countdown_runs_the_whole_countdown_again() -> None:
    async with sim_rig(deck("SIM-PAUSE"), library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await rig.wait_for("turn_countdown", count=2)  # "2"
        await rig.session.pause()
        await asyncio.sleep(0.4)
        await rig.session.resume()
        resumed_at = rig.clock.now()
        restart = await rig.wait_requests(StartOrResume, 2)
        after = [e.seconds_left for e in rig.events if isinstance(e, TurnCountdown)]
        after_resume = [
            e.seconds_left
            for e in rig.events
            if isinstance(e, TurnCountdown) and e.at >= resumed_at
        ]
        assert after_resume == [3, 2, 1]
        assert after[:2] == [3, 2]
        assert restart - resumed_at >= 3.0 - 1e-6


async def test_after_an_emergency_stop_forward_a_backward_profile_turns_first() -> None:
    library = ProfileLibrary.from_profiles(
        [parsed("fwd", ("forward", 600, 4.0)), parsed("backward-first", ("backward", 120, 2.0))]
    )
    async with sim_rig(deck("SIM-ESTOP-TURN"), library=library) as rig:
        await rig.session.start_profile("fwd")
        await asyncio.sleep(60.0)
        sent_at = rig.clock.now()
        assert await rig.session.emergency_stop() is StopOutcome.STOP_SENT
        await rig.wait_for("stop_confirmed")
        # One Stop, accepted, was enough: verification watched the belt and sent nothing more.
        assert [r for r in rig.requests_after(sent_at - 1e-6) if isinstance(r, StopOrPause)] == [
            StopOrPause(kind=StopKind.STOP)
        ]
        await rig.session.start_profile("backward-first")
        restart = await rig.wait_requests(StartOrResume, 2)
        turn_now = [e for e in rig.events if isinstance(e, TurnNow)]
        assert len(turn_now) == 1
        assert turn_now[0].at < restart
        countdown = [e for e in rig.events if isinstance(e, TurnCountdown)]
        assert [e.seconds_left for e in countdown] == [3, 2, 1]
        assert restart - rig.last_moving_before(restart) >= TURN_S


async def test_a_start_while_the_belt_still_coasts_is_refused() -> None:
    from treadmilld.engine.api import CommandRejectedError

    config = deck("SIM-COAST", deceleration_kmh_per_s=0.25)
    async with sim_rig(config, library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await asyncio.sleep(40.0)
        await rig.session.emergency_stop()
        await asyncio.sleep(2.0)
        with pytest.raises(CommandRejectedError) as refused:
            await rig.session.start_profile("turns")
        assert refused.value.code == "belt_moving"


# ----------------------------------------------------------------------------- restarts


async def test_a_deck_that_resumes_at_its_last_target_restarts_at_the_restart_speed() -> None:
    config = deck("SIM-RESUME", resume_at_last_target=True, acceleration_kmh_per_s=2.0)
    async with sim_rig(config, library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await asyncio.sleep(40.0)
        await rig.session.pause()
        await rig.wait_for("workout_paused")
        await asyncio.sleep(15.0)
        await rig.session.resume()
        await rig.wait_for("workout_resumed")
        await asyncio.sleep(8.0)
        restart = starts(rig)[-1]
        # The restart speed reached the deck before Start did.
        before = [r for at, r in rig.requests if at <= restart]
        speeds_before = [r for r in before if isinstance(r, SetTargetSpeed)]
        assert speeds_before[-1].speed_kmh <= RESTART_KMH
        # From there the belt ramps at the ramp rate (0.5 km/h/s); a deck jumping back to its
        # old 4 km/h target at 2 km/h/s would leave this envelope within a second.
        for sample in rig.belt:
            if restart <= sample.at <= restart + 3.0:
                envelope = RESTART_KMH + SPEED_TOLERANCE_KMH + 0.5 * (sample.at - restart)
                assert sample.speed_kmh <= envelope, (sample, restart)


@pytest.mark.parametrize("resets", [True, False])
async def test_a_belt_first_deck_is_reset_after_an_emergency_stop_before_it_restarts(
    resets: bool,
) -> None:
    """A deck that takes no speed while standing and resumes at its last target, stopped at
    4 km/h: Start cannot be preceded by the restart speed, so the old target is cleared with
    FTMS Reset first and the belt comes back at its minimum. A deck refusing Reset is started
    as before and aborted the moment it heads above the restart speed."""
    config = deck(
        "SIM-BELT-FIRST-ESTOP",
        require_start_before_speed=True,
        resume_at_last_target=True,
        acceleration_kmh_per_s=2.0,
        min_speed_kmh=0.8,
        # Each answer takes 1.5 s: a belt heading back to 4 km/h at 2 km/h/s is above the
        # restart speed long before a restart speed written after Start could land.
        response_delay_s=1.5,
        forced_results={} if resets else {ControlOpcode.RESET: ResultCode.NOT_SUPPORTED},
    )
    library = ProfileLibrary.from_profiles([parsed("fwd", ("forward", 600, 4.0))])
    async with sim_rig(config, library=library) as rig:
        await rig.session.start_profile("fwd")
        await asyncio.sleep(60.0)
        assert rig.deck.model.belt_speed_kmh > 3.5
        await rig.session.emergency_stop()
        await rig.wait_for("stop_confirmed")
        stopped_at = rig.clock.now()
        await rig.session.start_profile("fwd")
        await rig.wait_requests(StartOrResume, 2)
        await asyncio.sleep(10.0)
        restart = starts(rig)[-1]
        after_stop = [
            r for r in rig.requests_after(stopped_at - 1e-6) if not isinstance(r, RequestControl)
        ]
        assert isinstance(after_stop[0], Reset)
        if resets:
            assert isinstance(after_stop[1], StartOrResume)
            for sample in rig.belt:
                if restart <= sample.at <= restart + 3.0:
                    envelope = RESTART_KMH + SPEED_TOLERANCE_KMH + 0.5 * (sample.at - restart)
                    assert sample.speed_kmh <= envelope, (sample, restart)
            # Our own Reset (and the status the deck echoes for it) is no loss of control.
            assert [e for e in rig.of_type("workout_aborted") if e.at > stopped_at] == []
            assert rig.session.snapshot().phase is Phase.RUNNING
        else:
            ends = [e for e in rig.events if isinstance(e, WorkoutAborted) and e.at > stopped_at]
            assert [e.reason for e in ends] == [AbortReason.OVERSPEED]
            await rig.wait_for("stop_confirmed", count=2)


async def test_a_deck_left_inclined_is_measured_flat_before_the_belt_moves_backward() -> None:
    config = deck("SIM-INCLINED", initial_incline_pct=14.0, incline_rate_pct_per_s=0.5)
    backward = profile("backward-first", ("backward", 120, 2.0))
    async with sim_rig(config, library=backward) as rig:
        await rig.standing()
        await rig.session.start_profile("backward-first")
        await rig.wait_for("segment_started")
        async with asyncio.timeout(120):
            while not starts(rig):  # noqa: ASYNC110 - virtual time
                await asyncio.sleep(0.5)
        start = starts(rig)[0]
        inclines = [r for at, r in rig.requests if at <= start]
        assert any(
            isinstance(r, SetTargetInclination) and r.inclination_pct <= 5.0 for r in inclines
        )
        incline_at_start = [s.incline_pct for s in rig.belt if s.at <= start][-1]
        assert incline_at_start <= 5.0 + INCLINE_TOLERANCE_PCT + 0.05
        assert rig.session.snapshot().phase is Phase.RUNNING


# ----------------------------------------------------------------------------- decks that disobey


async def test_a_deck_that_ignores_speed_commands_is_stopped() -> None:
    config = deck("SIM-DEAF", ignores_speed_commands=True)
    async with sim_rig(config, library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await rig.wait_for("workout_aborted")
        assert aborted(rig).reason is AbortReason.TARGET_NOT_FOLLOWED
        await rig.wait_for("stop_confirmed")
        assert rig.deck.model.belt_speed_kmh == 0.0
        assert rig.deck.model.running_state is not RunningState.RUNNING


async def test_a_deck_that_starts_on_connect_is_stopped_and_nothing_starts() -> None:
    config = deck("SIM-EAGER", starts_on_connect=True, starts_on_connect_kmh=2.0)
    async with sim_rig(config, library=TURNS) as rig:
        await asyncio.sleep(30.0)
        assert rig.deck.model.belt_speed_kmh == 0.0
        requests = [r for _, r in rig.requests]
        assert any(isinstance(r, StopOrPause) for r in requests)
        assert not any(isinstance(r, StartOrResume) for r in requests)
        assert rig.session.snapshot().phase is Phase.IDLE
        assert rig.of_type("stop_confirmed")


async def test_deceleration_echoes_are_not_console_actions() -> None:
    config = deck("SIM-ECHO", echo_target_while_decelerating=True)
    async with sim_rig(config, library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await rig.wait_for("workout_finished")
        assert rig.of_type("workout_aborted") == []
        assert len(starts(rig)) == 3


async def test_late_control_point_answers_still_run_the_workout() -> None:
    async with sim_rig(deck("SIM-LATE", response_delay_s=1.0), library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await rig.wait_for("workout_finished")
        assert rig.of_type("workout_aborted") == []
        await rig.wait_for("stop_confirmed")


# ----------------------------------------------------------------------------- verified stops


async def test_an_emergency_stop_the_deck_refuses_falls_back_to_pause_and_is_confirmed() -> None:
    config = deck("SIM-NOSTOP", refuses_stop=ResultCode.OPERATION_FAILED)
    async with sim_rig(config, library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await asyncio.sleep(40.0)
        sent_at = rig.clock.now()
        outcome = await rig.session.emergency_stop()
        assert outcome is StopOutcome.STOP_SENT  # the Pause went through
        kinds = [r.kind for r in rig.requests_after(sent_at - 1e-6) if isinstance(r, StopOrPause)]
        assert kinds[:2] == [StopKind.STOP, StopKind.PAUSE]
        confirmed = await rig.wait_for("stop_confirmed")
        assert isinstance(confirmed, StopConfirmed)
        assert rig.deck.model.belt_speed_kmh == 0.0


@pytest.mark.parametrize("refusal", [ResultCode.OPERATION_FAILED, ResultCode.CONTROL_NOT_PERMITTED])
async def test_an_emergency_stop_refused_outright_is_not_confirmed_and_raises_the_alarm(
    refusal: ResultCode,
) -> None:
    config = deck("SIM-STUBBORN", refuses_stop=refusal, refuses_pause=refusal)
    async with sim_rig(config, library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await asyncio.sleep(40.0)
        speed = rig.deck.model.belt_speed_kmh
        sent_at = rig.clock.now()
        assert await rig.session.emergency_stop() is StopOutcome.NOT_CONFIRMED
        alarm = await rig.wait_for("stop_unconfirmed")
        assert isinstance(alarm, StopUnconfirmed)
        assert alarm.at - sent_at <= deceleration_allowance_s(speed) + 1.0
        # treadmilld keeps asking: once the deck gives in, the stop is confirmed.
        await asyncio.sleep(10.0)
        asked = [r for r in rig.requests_after(sent_at) if isinstance(r, StopOrPause)]
        assert len(asked) >= 4
        rig.deck.model.faults.refuses_stop = None
        await rig.wait_for("stop_confirmed")
        assert rig.deck.model.belt_speed_kmh == 0.0


async def test_an_emergency_stop_whose_link_drops_sends_stop_first_after_reconnecting() -> None:
    config = deck("SIM-DROPPY", drops_link_on_stop=True)
    async with sim_rig(config, library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await asyncio.sleep(40.0)
        assert rig.deck.model.belt_speed_kmh > 3.0
        sent_at = rig.clock.now()

        stops_heard: list[object] = []

        def lose_only_the_first_stop(request: object, _at: float) -> None:
            # Listeners hear a request before the deck acts on it.
            if isinstance(request, StopOrPause):
                stops_heard.append(request)
                if len(stops_heard) > 1:
                    rig.deck.model.faults.drops_link_on_stop = False

        rig.deck.add_control_listener(lose_only_the_first_stop)
        assert await rig.session.emergency_stop() is StopOutcome.NOT_CONFIRMED
        await rig.wait_for("stop_confirmed")
        after = [r for r in rig.requests_after(sent_at - 1e-6) if not isinstance(r, RequestControl)]
        # The lost Stop, then (after the reconnect) Stop again before anything else.
        assert isinstance(after[0], StopOrPause)
        assert isinstance(after[1], StopOrPause)
        assert rig.deck.model.belt_speed_kmh == 0.0
        assert aborted(rig).reason is AbortReason.EMERGENCY_STOP


# ----------------------------------------------------------------------------- mph decks


async def test_an_mph_deck_keeps_the_backward_cap_and_its_console_speed_arrives_in_kmh() -> None:
    from treadmilld.ble.api import MachineStatusReceived
    from treadmilld.ftms import TargetSpeedChanged

    fast_backward = profile("fast-backward", ("backward", 120, 6.0))
    async with sim_rig(SimulatedTreadmillConfig.tm11gy(), library=fast_backward) as rig:
        heard: list[float] = []
        events = rig.link.events()

        async def listen() -> None:
            async for event in events:
                if isinstance(event, MachineStatusReceived) and isinstance(
                    event.status, TargetSpeedChanged
                ):
                    heard.append(event.status.speed_kmh)

        listener = asyncio.create_task(listen())
        await rig.standing()
        await rig.session.start_profile("fast-backward")
        await asyncio.sleep(60.0)
        # The 5.0 km/h backward cap reaches the deck as 3.10 mph (4.99 km/h), never 3.11
        # (5.005 km/h): the cap holds after the conversion.
        written = [r.speed_kmh for _, r in rig.requests if isinstance(r, SetTargetSpeed)]
        assert max(written) == pytest.approx(3.10)
        assert max(s.speed_kmh for s in rig.belt) <= 5.0
        rig.deck.model.set_speed_at_console(3.0)
        await asyncio.sleep(1.0)
        assert heard
        assert heard[-1] == pytest.approx(3.0, abs=0.02)
        listener.cancel()


# ----------------------------------------------------------------------------- every abort reason


async def test_a_belt_that_moves_during_a_turn_aborts_as_unexpected_motion() -> None:
    """Someone presses Start at the console of a deck that reports nothing, while the person
    stands for the turn: the belt moving on its own ends the workout and is stopped."""
    config = deck("SIM-TURN-START", report_console_status=False)
    async with sim_rig(config, library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await rig.wait_for("turn_now")
        await asyncio.sleep(2.0)
        assert rig.deck.model.press_start()
        await rig.wait_for("workout_aborted")
        assert aborted(rig).reason is AbortReason.UNEXPECTED_MOTION
        await rig.wait_for("stop_confirmed")
        assert rig.deck.model.belt_speed_kmh == 0.0
        assert len(starts(rig)) == 1  # the belt was never told to start again


async def test_a_console_speed_change_takes_control_and_aborts_as_control_lost() -> None:
    async with sim_rig(deck("SIM-CONSOLE"), library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await asyncio.sleep(40.0)
        rig.deck.model.set_speed_at_console(6.0)  # raises 0x05, then 0xFF
        await rig.wait_for("workout_aborted")
        assert aborted(rig).reason is AbortReason.CONTROL_LOST
        # The stop asks for control again and is carried out.
        await rig.wait_for("stop_confirmed")
        assert rig.deck.model.belt_speed_kmh == 0.0


async def test_a_refused_speed_write_aborts_as_command_failed_and_stops() -> None:
    from treadmilld.ftms import ControlOpcode

    async with sim_rig(deck("SIM-REFUSES-SPEED"), library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await asyncio.sleep(3.0)
        rig.deck.model.faults.forced_results[ControlOpcode.SET_TARGET_SPEED] = (
            ResultCode.OPERATION_FAILED
        )
        await rig.wait_for("workout_aborted")
        assert aborted(rig).reason is AbortReason.COMMAND_FAILED
        await rig.wait_for("stop_confirmed")
        assert rig.deck.model.belt_speed_kmh == 0.0


async def test_a_user_stop_ramps_down_stops_and_is_confirmed() -> None:
    async with sim_rig(deck("SIM-USER-STOP"), library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await asyncio.sleep(40.0)
        await rig.session.stop()
        stopped = await rig.wait_for("workout_stopped")
        # The person's own stop is not an abort: a summary, the phase `stopped`.
        assert isinstance(stopped, WorkoutStopped)
        assert rig.of_type("workout_aborted") == []
        assert stopped.distance_forward_m > 0
        assert stopped.calories_kcal > 0
        assert rig.session.snapshot().phase is Phase.STOPPED
        assert rig.session.snapshot().outcome == "stopped"
        await rig.wait_for("stop_confirmed")
        assert rig.session.snapshot().belt is BeltState.STANDING
        stop_at = next(
            at for at, r in rig.requests if isinstance(r, StopOrPause) and r.kind is StopKind.STOP
        )
        speeds = [r.speed_kmh for at, r in rig.requests if isinstance(r, SetTargetSpeed)]
        # Ramped down to the restart speed before Stop, never stopped from 4 km/h.
        last_before_stop = [
            r.speed_kmh for at, r in rig.requests if isinstance(r, SetTargetSpeed) and at <= stop_at
        ][-1]
        assert last_before_stop <= RESTART_KMH
        assert max(speeds) == pytest.approx(4.0)
        assert rig.deck.model.belt_speed_kmh == 0.0


async def test_an_incline_that_never_comes_down_keeps_the_belt_standing() -> None:
    config = deck("SIM-STUCK-INCLINE", initial_incline_pct=14.0, incline_rate_pct_per_s=0.02)
    backward = profile("backward-first", ("backward", 120, 2.0))
    async with sim_rig(config, library=backward) as rig:
        await rig.standing()
        await rig.session.start_profile("backward-first")
        await rig.wait_for("workout_aborted")
        assert aborted(rig).reason is AbortReason.TARGET_NOT_FOLLOWED
        assert "incline" in aborted(rig).detail
        assert starts(rig) == []
        assert max(s.speed_kmh for s in rig.belt) == 0.0


async def test_shutdown_on_a_deck_that_refuses_stop_and_pause_tries_both() -> None:
    config = deck(
        "SIM-REFUSES-ALL",
        refuses_stop=ResultCode.OPERATION_FAILED,
        refuses_pause=ResultCode.OPERATION_FAILED,
    )
    async with sim_rig(config, library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await asyncio.sleep(40.0)
        asked_at = rig.clock.now()
        await rig.session.shutdown()
        kinds = [r.kind for r in rig.requests_after(asked_at - 1e-6) if isinstance(r, StopOrPause)]
        assert kinds[:2] == [StopKind.STOP, StopKind.PAUSE]
        assert aborted(rig).reason is AbortReason.SHUTDOWN


async def test_a_deck_that_needs_start_first_and_resumes_at_its_last_target_restarts_slowly() -> (
    None
):
    """It refuses a target while standing, so Start goes first and the restart speed right
    after it; the measured belt never heads for the old target."""
    config = deck(
        "SIM-BELT-FIRST",
        require_start_before_speed=True,
        resume_at_last_target=True,
        acceleration_kmh_per_s=2.0,
    )
    async with sim_rig(config, library=TURNS) as rig:
        await rig.session.start_profile("turns")
        await asyncio.sleep(40.0)
        await rig.session.pause()
        await rig.wait_for("workout_paused")
        await asyncio.sleep(15.0)
        await rig.session.resume()
        await rig.wait_for("workout_resumed")
        await asyncio.sleep(8.0)
        restart = starts(rig)[-1]
        requests = [r for _, r in rig.requests]
        start_index = max(i for i, r in enumerate(requests) if isinstance(r, StartOrResume))
        # Start, then the restart speed at once. The deck refused a target while standing
        # once (the first Start), so none is written to a standing belt after that.
        start, restart_speed = requests[start_index : start_index + 2]
        assert isinstance(start, StartOrResume)
        assert isinstance(restart_speed, SetTargetSpeed)
        assert restart_speed.speed_kmh <= RESTART_KMH
        # Before the first Start: the restart speed, refused; the target the deck may resume
        # at is unknown since connecting, so Reset (FTMS §4.16.2.2) clears it, and control,
        # which Reset takes away, is asked for again.
        first_start = min(i for i, r in enumerate(requests) if isinstance(r, StartOrResume))
        assert [type(r) for r in requests[:first_start]] == [
            RequestControl,
            SetTargetSpeed,
            Reset,
            RequestControl,
        ]
        assert not isinstance(requests[start_index - 1], SetTargetSpeed)
        for sample in rig.belt:
            if restart <= sample.at <= restart + 3.0:
                envelope = RESTART_KMH + SPEED_TOLERANCE_KMH + 0.5 * (sample.at - restart)
                assert sample.speed_kmh <= envelope, (sample, restart)
        assert rig.of_type("workout_aborted") == []
