"""The supervising TaskGroup: every treadmill's link and session, the MQTT bridge, the watchdog.

Failure policy:
- A treadmill's link or session task catches and logs its own errors and restarts with capped
  backoff, so one treadmill's trouble never stops the others. When a session fails, its belt is
  stopped first: nobody is driving it any more.
- Anything else that fails (the bridge, the watchdog, this module) is a bug: every belt is
  stopped, then the error propagates, the process exits non-zero and systemd restarts it.
- A stop request (SIGTERM, SIGINT, or SIGHUP: a closed terminal or SSH session) stops or
  pauses every moving belt within `stop_budget_s` (3 s), watches each belt stand still, then
  closes the bridge (final state, availability and bridge `offline`), closes the links and
  returns normally (exit code 0).
- History (one recorder per treadmill, the daily retention) runs in tasks of its own that
  log and restart with backoff when they fail: history never stops a belt. At shutdown the
  recorders get `history_drain_budget_s` to write what they hold, once the belts are stopped
  and confirmed, never before (treadmilld/app/history_tasks.py).
- READY=1 goes to systemd once the tasks are up, without waiting for any treadmill; WATCHDOG=1
  pings only while every treadmill session is alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog

from treadmilld.app.history_tasks import drain_history, keep_history_running
from treadmilld.app.restarts import RestartPolicy, Restarts
from treadmilld.app.sdnotify import SystemdNotifier
from treadmilld.app.settings import ShutdownMode
from treadmilld.ble.api import ConnectionState, TreadmillLink
from treadmilld.engine.api import Phase, TreadmillController
from treadmilld.runtime.clock import Clock, LoopClock
from treadmilld.runtime.waiting import wait_all

_log = structlog.get_logger(__name__)

# The promise: every moving belt stopped (or paused) within 3 s of SIGTERM.
STOP_BUDGET_S = 3.0
# Every signal that ends the daemon in normal use: systemd's stop (SIGTERM), Ctrl-C (SIGINT)
# and a closed terminal or SSH session (SIGHUP, whose default action would kill the process
# with the belt still running). SIGKILL cannot be caught: the safety key is the last resort.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class ManagedSession(TreadmillController, Protocol):
    """A workout session the supervisor can run and shut down (WorkoutSession)."""

    async def run(self) -> None: ...

    async def shutdown(self, mode: Literal["stop", "pause"] = "stop") -> None:
        """Stop (or pause) the belt if it moves and end any workout, as the daemon stops."""
        ...


class ManagedBridge(Protocol):
    """The MQTT bridge: runs until closed; `close` publishes `offline` and disconnects."""

    async def run(self) -> None: ...

    async def close(self) -> None: ...


@dataclass
class TreadmillUnit:
    """One treadmill's link and session, and how they are doing."""

    treadmill_id: str
    link: TreadmillLink
    session: ManagedSession
    # Clock time the session stopped running (crashed, backing off); None while it runs.
    session_down_since: float | None = None
    session_failures: int = 0
    link_failures: int = 0


@dataclass
class Supervisor:
    units: Sequence[TreadmillUnit]
    bridge: ManagedBridge | None
    notifier: SystemdNotifier = field(default_factory=SystemdNotifier)
    shutdown_mode: ShutdownMode = ShutdownMode.STOP
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    stop_budget_s: float = STOP_BUDGET_S
    # After the stop commands, how long to watch the belts slow down before going offline.
    confirm_budget_s: float = 5.0
    status_interval_s: float = 5.0
    # Called once the tasks are up (the demo starts its profile from here).
    on_ready: Callable[[], Awaitable[None]] | None = None
    # More named tasks that run as long as the daemon does (the profile folder watcher).
    # They handle their own expected errors; one that raises is a bug, like the bridge.
    services: Sequence[tuple[str, Callable[[], Awaitable[None]]]] = ()
    # History's named tasks (the recorders, retention): restarted when they fail, never fatal.
    history_tasks: Sequence[tuple[str, Callable[[], Awaitable[None]]]] = ()
    # Writes what the recorders still hold (the workouts' endings); awaited at shutdown after
    # the belts, for at most `history_drain_budget_s`.
    history_drain: Callable[[], Awaitable[None]] | None = None
    history_drain_budget_s: float = 2.0
    # Backoff, watchdog and the stop budgets: real time (a `LoopClock`), also in the demo,
    # whose sped-up clock is the engine's: the 3 s stop promise is in seconds a person lives.
    clock: Clock = field(default_factory=LoopClock)
    _stop: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _restarts: Restarts = field(init=False)
    _stopping: bool = field(default=False, init=False)
    _belts_stopped: bool = field(default=False, init=False)
    _stop_requested_at: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._restarts = Restarts(self.restart, self.clock)

    def is_stopping(self) -> bool:
        return self._stopping

    def request_stop(self, reason: str = "requested") -> None:
        if not self._stop.is_set():
            _log.info("stop_requested", reason=reason)
            self._stop_requested_at = self.clock.now()
        self._stop.set()

    async def run(self) -> None:
        """Run until `request_stop` (or a signal); raises only on an unexpected failure."""
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for signum in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self.request_stop, signum.name)
                installed.append(signum)
        try:
            await self._run_tasks()
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    async def _run_tasks(self) -> None:
        tasks: list[asyncio.Task[None]] = []
        async with asyncio.TaskGroup() as group:

            def start(name: str, coroutine: Coroutine[Any, Any, None]) -> None:
                tasks.append(group.create_task(coroutine, name=name))

            for unit in self.units:
                start(f"link:{unit.treadmill_id}", self._keep_link_running(unit))
                start(f"session:{unit.treadmill_id}", self._keep_session_running(unit))
            if self.bridge is not None:
                start("mqtt", self._fatal_on_error("mqtt", self.bridge.run))
            for name, service in self.services:
                start(name, self._fatal_on_error(name, service))
            for name, body in self.history_tasks:
                start(
                    name,
                    keep_history_running(
                        name, body, restarts=self._restarts, is_stopping=self.is_stopping
                    ),
                )
            # Let every task take its first step before telling systemd we are up.
            await asyncio.sleep(0)
            self.notifier.ready(self._status_line())
            start("watchdog", self._fatal_on_error("watchdog", self._watchdog))
            start("status", self._fatal_on_error("status", self._report_status))
            _log.info("daemon_ready", treadmills=[u.treadmill_id for u in self.units])
            if self.on_ready is not None:
                start("on_ready", self._fatal_on_error("on_ready", self.on_ready))
            await self._stop.wait()
            await self._shut_down()
            for task in tasks:
                task.cancel()

    # -- a treadmill's tasks: log, stop the belt if needed, back off, try again --------------

    async def _keep_link_running(self, unit: TreadmillUnit) -> None:
        structlog.contextvars.bind_contextvars(treadmill_id=unit.treadmill_id)
        while not self.is_stopping():
            started = self.clock.now()
            try:
                await unit.link.run()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - one treadmill's failure stays its own
                unit.link_failures = self._restarts.count_failure(unit.link_failures, started)
                delay = self._restarts.delay(unit.link_failures)
                _log.error(
                    "link_task_failed",
                    error=repr(error),
                    retry_in_s=round(delay, 1),
                    hint="check the treadmill is powered and in range; it restarts by itself",
                    exc_info=error,
                )
            else:
                if self.is_stopping():
                    return
                unit.link_failures = self._restarts.count_failure(unit.link_failures, started)
                delay = self._restarts.delay(unit.link_failures)
                _log.warning("link_task_returned", retry_in_s=round(delay, 1))
            await self.clock.sleep(delay)

    async def _keep_session_running(self, unit: TreadmillUnit) -> None:
        structlog.contextvars.bind_contextvars(treadmill_id=unit.treadmill_id)
        while not self.is_stopping():
            started = self.clock.now()
            unit.session_down_since = None
            try:
                await unit.session.run()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - one treadmill's failure stays its own
                unit.session_down_since = self.clock.now()
                unit.session_failures = self._restarts.count_failure(unit.session_failures, started)
                delay = self._restarts.delay(unit.session_failures)
                _log.error(
                    "session_task_failed",
                    error=repr(error),
                    retry_in_s=round(delay, 1),
                    hint="the belt is being stopped; the session restarts idle by itself",
                    exc_info=error,
                )
                # Nobody drives this belt now: stop it before anything else.
                await self._stop_belt_directly(unit, ShutdownMode.STOP)
                await self.clock.sleep(delay)
            else:
                if self.is_stopping():
                    return
                unit.session_down_since = self.clock.now()
                unit.session_failures = self._restarts.count_failure(unit.session_failures, started)
                delay = self._restarts.delay(unit.session_failures)
                _log.warning("session_task_returned", retry_in_s=round(delay, 1))
                await self.clock.sleep(delay)

    # -- everything else failing is a bug: stop the belts, then crash ----------------------

    async def _fatal_on_error(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        try:
            await body()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            _log.critical("task_crashed", task=name, error=repr(error), exc_info=error)
            self._stopping = True
            await self._stop_all_belts()
            self.notifier.stopping(f"crashed: {name} failed: {error!r}")
            raise

    # -- shutdown ---------------------------------------------------------------------------

    async def _shut_down(self) -> None:
        self._stopping = True
        self.notifier.stopping(f"stopping: belts {self.shutdown_mode.value}")
        _log.info("daemon_stopping", mode=self.shutdown_mode.value)
        await self._stop_all_belts()
        _log.info(
            "belts_stop_commanded",
            seconds_since_stop_request=round(self.clock.now() - self._stop_requested_at, 3),
            budget_s=self.stop_budget_s,
        )
        await self._confirm_belts_stopped()
        if self.bridge is not None:
            try:
                async with asyncio.timeout(self.stop_budget_s):
                    await self.bridge.close()
            except TimeoutError:
                _log.warning("mqtt_close_timed_out", hint="the broker publishes our Will instead")
            except Exception as error:  # noqa: BLE001 - shutting down; report and carry on
                _log.warning("mqtt_close_failed", error=repr(error))
        await drain_history(self.history_drain, self.history_drain_budget_s)
        await asyncio.gather(*(self._close_link(unit) for unit in self.units))
        _log.info("daemon_stopped")

    async def _stop_all_belts(self) -> None:
        """Every session stops (or pauses) its belt, all at once, within the stop budget."""
        if self._belts_stopped:
            return
        self._belts_stopped = True
        await asyncio.gather(*(self._shut_down_session(unit) for unit in self.units))

    async def _confirm_belts_stopped(self) -> None:
        """Watch the treadmills' own speed readings until every belt stands still (a deck
        decelerates over a few seconds), and say in the log what each one did."""
        watchers = {
            unit.treadmill_id: asyncio.create_task(
                self._confirm_belt_stopped(unit), name=f"confirm-stop:{unit.treadmill_id}"
            )
            for unit in self.units
        }
        try:
            await wait_all(watchers.values(), seconds=self.confirm_budget_s, clock=self.clock)
        finally:
            for watcher in watchers.values():
                watcher.cancel()
            await asyncio.gather(*watchers.values(), return_exceptions=True)
        for unit in self.units:
            watcher = watchers[unit.treadmill_id]
            if watcher.cancelled() or watcher.exception() is not None or not watcher.result():
                _log.critical(
                    "belt_still_moving",
                    treadmill_id=unit.treadmill_id,
                    speed_kmh=unit.link.telemetry.data.instantaneous_speed_kmh,
                    hint="stop it at the console or pull the safety key",
                )

    async def _confirm_belt_stopped(self, unit: TreadmillUnit) -> bool:
        """Wait for this treadmill's belt to stand still, judged again on each of its link's
        events (every Treadmill Data record, a lost connection); False if the link closed
        with the belt still moving."""
        events = unit.link.events()  # subscribed before the first look: no reading is missed
        if self._belt_settled(unit):
            return True
        async for _ in events:
            if self._belt_settled(unit):
                return True
        return self._belt_settled(unit)

    def _belt_settled(self, unit: TreadmillUnit) -> bool:
        """Whether there is nothing more to wait for on this belt; logs what it did."""
        if unit.link.capabilities is None:
            # Never connected in this run: we never moved this belt.
            _log.info("belt_never_connected", treadmill_id=unit.treadmill_id)
        elif unit.link.connection_state is not ConnectionState.CONNECTED:
            _log.warning(
                "belt_state_unknown",
                treadmill_id=unit.treadmill_id,
                hint="the treadmill is not connected; check it stopped at the console",
            )
        elif not unit.link.telemetry.belt_moving:
            _log.info(
                "belt_stop_confirmed",
                treadmill_id=unit.treadmill_id,
                speed_kmh=unit.link.telemetry.data.instantaneous_speed_kmh,
                seconds_since_stop_request=round(self.clock.now() - self._stop_requested_at, 3),
            )
        else:
            return False
        return True

    async def _shut_down_session(self, unit: TreadmillUnit) -> None:
        log = _log.bind(treadmill_id=unit.treadmill_id)
        # Leave room for the direct fallback inside the overall budget.
        session_budget = self.stop_budget_s * 0.6
        try:
            async with asyncio.timeout(session_budget):
                await unit.session.shutdown(self.shutdown_mode.ftms_literal)
        except TimeoutError:
            # A timeout has no useful traceback: the event and budget say it all.
            log.error("session_shutdown_timed_out", budget_s=session_budget)  # noqa: TRY400
        except Exception:
            # Fall back to telling the link directly, below.
            log.exception("session_shutdown_failed")
        else:
            return
        await self._stop_belt_directly(unit, self.shutdown_mode)

    async def _stop_belt_directly(self, unit: TreadmillUnit, mode: ShutdownMode) -> None:
        """The last resort: tell the treadmill itself, bypassing the session."""
        log = _log.bind(treadmill_id=unit.treadmill_id)
        if not unit.link.telemetry.belt_moving:
            return
        try:
            async with asyncio.timeout(self.stop_budget_s * 0.4):
                if mode is ShutdownMode.PAUSE:
                    await unit.link.pause_belt()
                else:
                    await unit.link.stop_belt()
        except Exception as error:  # noqa: BLE001 - nothing more we can do from here
            log.critical(
                "belt_stop_failed",
                error=repr(error),
                hint="the belt may still be moving: stop it at the console or pull the safety key",
            )
        else:
            log.warning("belt_stopped_directly", mode=mode.value)

    async def _close_link(self, unit: TreadmillUnit) -> None:
        try:
            async with asyncio.timeout(self.stop_budget_s):
                await unit.link.close()
        except Exception as error:  # noqa: BLE001 - shutting down; report and carry on
            _log.warning("link_close_failed", treadmill_id=unit.treadmill_id, error=repr(error))

    # -- systemd watchdog and status ----------------------------------------------------------

    def sessions_alive(self) -> bool:
        """Whether every session runs, or was restarted recently enough to recover.

        A session that stays down (crash loop) for a whole watchdog interval stops the pings,
        so systemd restarts the daemon.
        """
        interval = self.notifier.watchdog_interval_s or 30.0
        now = self.clock.now()
        return all(
            unit.session_down_since is None or now - unit.session_down_since < interval
            for unit in self.units
        )

    async def _watchdog(self) -> None:
        interval = self.notifier.watchdog_interval_s
        if interval is None:
            return
        # sd_watchdog_enabled(3): ping at half the interval.
        while True:
            if self.sessions_alive() and not self._stopping:
                self.notifier.watchdog()
            else:
                _log.warning("watchdog_ping_withheld", hint="a treadmill session keeps failing")
            await self.clock.sleep(interval / 2)

    def _status_line(self) -> str:
        parts = []
        for unit in self.units:
            snapshot = unit.session.snapshot()
            text = f"{unit.treadmill_id} {snapshot.connection}"
            if snapshot.phase is not Phase.IDLE:
                text += f" {snapshot.phase.value}"
                if snapshot.profile:
                    text += f" {snapshot.profile}"
            parts.append(text)
        return "; ".join(parts) if parts else "no treadmills"

    async def _report_status(self) -> None:
        last = ""
        while True:
            await self.clock.sleep(self.status_interval_s)
            line = self._status_line()
            if line != last:
                self.notifier.status(line)
                last = line


__all__ = [
    "STOP_BUDGET_S",
    "STOP_SIGNALS",
    "ManagedBridge",
    "ManagedSession",
    "RestartPolicy",
    "Supervisor",
    "TreadmillUnit",
]
