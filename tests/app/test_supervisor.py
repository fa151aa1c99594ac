"""The supervising TaskGroup, driven through our own seams with behaviour-named doubles."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.app.doubles import (
    CrashesWhileRunning,
    CrashingBridge,
    DrivesItsBelt,
    FailsFirstRuns,
    FrozenClock,
    HangsOnShutdown,
    ObedientLink,
    RecordingBridge,
)
from treadmilld.app.sdnotify import SystemdNotifier
from treadmilld.app.settings import ShutdownMode
from treadmilld.app.supervisor import RestartPolicy, Supervisor, TreadmillUnit

QUICK_RESTART = RestartPolicy(initial_s=0.01, maximum_s=0.05, healthy_after_s=60.0)


def unit(session: DrivesItsBelt) -> TreadmillUnit:
    return TreadmillUnit(session.treadmill_id, session.link, session)


async def eventually(condition: Callable[[], bool]) -> None:
    """Poll a condition the doubles expose no event for; bounded by the test's own timeout."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - the doubles have no event to wait on
            await asyncio.sleep(0.005)


async def test_stop_request_stops_every_belt_then_publishes_offline_then_returns() -> None:
    links = [ObedientLink("tm01", moving_kmh=3.0), ObedientLink("tm02", moving_kmh=2.0)]
    sessions = [DrivesItsBelt(link) for link in links]
    journal: list[str] = []
    bridge = RecordingBridge(journal, links)
    supervisor = Supervisor([unit(s) for s in sessions], bridge, restart=QUICK_RESTART)
    async with asyncio.timeout(10):
        runner = asyncio.create_task(supervisor.run())
        await eventually(lambda: journal == ["bridge running"])
        supervisor.request_stop("test")
        await runner
    assert [s.shutdown_modes for s in sessions] == [["stop"], ["stop"]]
    assert bridge.speeds_at_close == [0.0, 0.0]
    assert journal == ["bridge running", "offline published"]
    assert all(link.commands == ["stop", "close"] for link in links)


async def test_pause_mode_pauses_instead_of_stopping() -> None:
    link = ObedientLink("tm01", moving_kmh=3.0)
    session = DrivesItsBelt(link)
    supervisor = Supervisor(
        [unit(session)], None, shutdown_mode=ShutdownMode.PAUSE, restart=QUICK_RESTART
    )
    async with asyncio.timeout(10):
        runner = asyncio.create_task(supervisor.run())
        await eventually(lambda: session.runs == 1)
        supervisor.request_stop()
        await runner
    assert link.commands == ["pause", "close"]


async def test_a_crashing_session_has_its_belt_stopped_and_spares_the_others() -> None:
    broken_link = ObedientLink("tm01", moving_kmh=3.0)
    broken = CrashesWhileRunning(broken_link)
    healthy_link = ObedientLink("tm02", moving_kmh=2.5)
    healthy = DrivesItsBelt(healthy_link)
    supervisor = Supervisor([unit(broken), unit(healthy)], None, restart=QUICK_RESTART)
    async with asyncio.timeout(10):
        runner = asyncio.create_task(supervisor.run())
        await eventually(lambda: broken.runs >= 3)
        # The healthy treadmill kept walking throughout.
        assert healthy.runs == 1
        assert healthy_link.speed_kmh == 2.5
        assert broken_link.commands[0] == "stop"
        supervisor.request_stop()
        await runner
    assert healthy_link.commands == ["stop", "close"]


async def test_a_failing_link_is_restarted_without_disturbing_the_others() -> None:
    flaky = FailsFirstRuns("tm01", failures=3)
    steady = ObedientLink("tm02")
    supervisor = Supervisor(
        [unit(DrivesItsBelt(flaky)), unit(DrivesItsBelt(steady))], None, restart=QUICK_RESTART
    )
    async with asyncio.timeout(10):
        runner = asyncio.create_task(supervisor.run())
        await eventually(lambda: flaky.runs == 4)
        assert steady.runs == 1
        supervisor.request_stop()
        await runner


async def test_a_session_stuck_in_shutdown_gets_its_belt_stopped_through_the_link() -> None:
    link = ObedientLink("tm01", moving_kmh=4.0)
    session = HangsOnShutdown(link)
    supervisor = Supervisor([unit(session)], None, restart=QUICK_RESTART, stop_budget_s=0.5)
    async with asyncio.timeout(10):
        runner = asyncio.create_task(supervisor.run())
        await eventually(lambda: session.runs == 1)
        supervisor.request_stop()
        await runner
    assert link.commands == ["stop", "close"]


async def test_an_unexpected_failure_stops_every_belt_then_crashes_loudly() -> None:
    links = [ObedientLink("tm01", moving_kmh=3.0), ObedientLink("tm02", moving_kmh=3.0)]
    sessions = [DrivesItsBelt(link) for link in links]
    supervisor = Supervisor([unit(s) for s in sessions], CrashingBridge([]), restart=QUICK_RESTART)
    with pytest.raises(ExceptionGroup) as caught:
        async with asyncio.timeout(10):
            await supervisor.run()
    assert caught.group_contains(ValueError, match="bridge bug")
    assert all(link.speed_kmh == 0.0 for link in links)
    assert [s.shutdown_modes for s in sessions] == [["stop"], ["stop"]]


async def test_ready_before_any_treadmill_connects_watchdog_pings_and_stopping(
    tmp_path: Path,
) -> None:
    path = tmp_path / "notify.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.setblocking(False)  # noqa: FBT003
    loop = asyncio.get_running_loop()
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "100000"})
    link = ObedientLink("tm01")
    session = DrivesItsBelt(link)
    supervisor = Supervisor([unit(session)], None, notifier=notifier, restart=QUICK_RESTART)
    received: list[str] = []
    try:
        async with asyncio.timeout(10):
            runner = asyncio.create_task(supervisor.run())
            while received.count("WATCHDOG=1") < 2:
                received.append((await loop.sock_recv(receiver, 4096)).decode())
            supervisor.request_stop()
            await runner
            while not received[-1].startswith("STOPPING=1"):
                received.append((await loop.sock_recv(receiver, 4096)).decode())
    finally:
        receiver.close()
        notifier.close()
    assert received[0] == "READY=1\nSTATUS=tm01 connected"
    assert received[-1].startswith("STOPPING=1\nSTATUS=stopping")


async def test_watchdog_is_withheld_while_a_session_stays_down() -> None:
    clock = FrozenClock(100.0)
    link = ObedientLink("tm01")
    broken = CrashesWhileRunning(link)
    notifier = SystemdNotifier({"WATCHDOG_USEC": "30000000"})
    supervisor = Supervisor(
        [unit(broken)],
        None,
        notifier=notifier,
        restart=RestartPolicy(initial_s=5.0, maximum_s=5.0),
        clock=clock,
    )
    async with asyncio.timeout(10):
        runner = asyncio.create_task(supervisor.run())
        await eventually(lambda: broken.runs == 1)
        assert supervisor.sessions_alive()  # just failed: give it a chance to recover
        clock.now_s += 29.0
        assert supervisor.sessions_alive()
        clock.now_s += 2.0  # down for longer than the 30 s watchdog interval
        assert not supervisor.sessions_alive()
        supervisor.request_stop()
        await runner


async def test_shutdown_waits_for_each_belt_to_read_zero() -> None:
    class CoastsToAStop(ObedientLink):
        """A deck that keeps reporting speed for a moment after Stop, like a real belt."""

        async def stop_belt(self) -> None:
            self.commands.append("stop")
            asyncio.get_running_loop().call_later(0.2, setattr, self, "speed_kmh", 0.0)

    link = CoastsToAStop("tm01", moving_kmh=3.0)
    journal: list[str] = []
    bridge = RecordingBridge(journal, [link])
    supervisor = Supervisor([unit(DrivesItsBelt(link))], bridge, restart=QUICK_RESTART)
    async with asyncio.timeout(10):
        runner = asyncio.create_task(supervisor.run())
        await eventually(lambda: journal == ["bridge running"])
        with capture_logs() as logs:
            supervisor.request_stop()
            await runner
    # `offline` went out only once the treadmill itself reported the belt standing still.
    assert bridge.speeds_at_close == [0.0]
    # Confirmed by the treadmill's own reading, not given up on after the watch.
    [confirmed] = [entry for entry in logs if entry["event"] == "belt_stop_confirmed"]
    assert confirmed["speed_kmh"] == 0.0
    assert not [entry for entry in logs if entry["event"] == "belt_still_moving"]


async def test_a_failing_history_task_restarts_and_never_stops_a_belt() -> None:
    link = ObedientLink("tm01", moving_kmh=3.0)
    session = DrivesItsBelt(link)
    attempts: list[int] = []

    async def recorder_that_fails_twice() -> None:
        attempts.append(1)
        if len(attempts) <= 2:
            raise RuntimeError("history bug (test)")
        await asyncio.Event().wait()

    supervisor = Supervisor(
        [unit(session)],
        None,
        restart=QUICK_RESTART,
        history_tasks=[("history:tm01", recorder_that_fails_twice)],
    )
    with capture_logs() as logs:
        async with asyncio.timeout(10):
            runner = asyncio.create_task(supervisor.run())
            await eventually(lambda: len(attempts) == 3)
            assert link.speed_kmh == 3.0  # the belt walked on throughout
            assert link.commands == []
            supervisor.request_stop()
            await runner
    failures = [line for line in logs if line["event"] == "history_task_failed"]
    assert [line["task"] for line in failures] == ["history:tm01", "history:tm01"]
    assert link.commands == ["stop", "close"]


async def test_history_is_drained_after_the_belts_stand_and_never_holds_up_the_stop() -> None:
    link = ObedientLink("tm01", moving_kmh=3.0)
    session = DrivesItsBelt(link)
    speeds_when_drained: list[float] = []

    async def drain_that_never_ends() -> None:
        speeds_when_drained.append(link.speed_kmh)
        await asyncio.Event().wait()  # a database that does not answer

    supervisor = Supervisor(
        [unit(session)],
        None,
        restart=QUICK_RESTART,
        history_drain=drain_that_never_ends,
        history_drain_budget_s=0.2,
    )
    with capture_logs() as logs:
        async with asyncio.timeout(10):
            runner = asyncio.create_task(supervisor.run())
            await eventually(lambda: session.runs == 1)
            supervisor.request_stop()
            await runner
    assert speeds_when_drained == [0.0]  # the belt was stopped first
    assert link.commands == ["stop", "close"]
    assert [line["event"] for line in logs if line["event"] == "history_not_drained"] == [
        "history_not_drained"
    ]
