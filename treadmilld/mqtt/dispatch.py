"""One treadmill's commands, from the MQTT side to its controller.

A *worker* runs the treadmill's commands one at a time, in arrival order. Emergency stop
skips the worker: it runs at once in its own task and discards whatever was still queued for
that treadmill (asked for before the emergency, so it must not run after it).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, assert_never

import structlog

from treadmilld.engine.api import (
    CommandRejectedError,
    ProfileCatalog,
    SessionSnapshot,
    StopOutcome,
    TreadmillController,
)
from treadmilld.history.riders import StrapChoice
from treadmilld.mqtt.commands import (
    Command,
    ConfirmTurn,
    EmergencyStop,
    Pause,
    QueuedCommand,
    Resume,
    SelectProfile,
    SetBodyWeight,
    SetIncline,
    SetSpeed,
    Skip,
    Start,
    Stop,
)
from treadmilld.mqtt.replies import Replies, Route
from treadmilld.mqtt.rider_requests import RiderRequests

_log = structlog.get_logger(__name__)

# The error code of an emergency stop the treadmill did not confirm (StopOutcome.NOT_CONFIRMED).
STOP_NOT_CONFIRMED = "stop_not_confirmed"


class StrapAssignment(Protocol):
    """Which heart-rate strap a treadmill's workout hears (the daemon's strap switch)."""

    def assign(self, strap: StrapChoice | None) -> None:
        """The workout just accepted hears `strap` until it ends (None: the treadmill's own)."""
        ...


@dataclass(frozen=True, slots=True)
class _Job:
    command: QueuedCommand
    route: Route


def _nudge_scope(snapshot: SessionSnapshot) -> dict[str, Any]:
    """What an accepted speed or incline nudge applies to: the current walk segment, until it
    ends (the next segment brings its own planned values)."""
    remaining = snapshot.segment_remaining_s
    return {
        "applies_until": "segment_end",
        "segment_index": snapshot.segment_index,
        "segment_remaining_s": round(remaining, 1) if remaining is not None else None,
    }


class TreadmillCommands:
    """Runs one treadmill's commands against its controller and answers each."""

    def __init__(
        self,
        treadmill_id: str,
        controller: TreadmillController,
        *,
        catalog: ProfileCatalog,
        replies: Replies,
        profiles_topic: str,
        on_selection: Callable[[], None],
        riders: RiderRequests | None = None,
        strap: StrapAssignment | None = None,
    ) -> None:
        """`profiles_topic` is named in an unknown profile's error; `on_selection` is called
        when the selected profile changes (it shows in the state); `riders` prepares a start
        for a rider (None: this daemon keeps no riders); `strap` is told which strap a
        started workout hears (None: starts cannot name one)."""
        self._id = treadmill_id
        self._controller = controller
        self._catalog = catalog
        self._replies = replies
        self._profiles_topic = profiles_topic
        self._on_selection = on_selection
        self._riders = riders
        self._strap = strap
        self._pending: deque[_Job] = deque()
        self._work_ready = asyncio.Event()
        self._emergency_stops: set[asyncio.Task[None]] = set()
        self._selection: SelectProfile | None = None  # chosen via `set {"profile": ...}`

    @property
    def selected_profile(self) -> str | None:
        return self._selection.profile if self._selection is not None else None

    @property
    def emergency_stops(self) -> list[asyncio.Task[None]]:
        return list(self._emergency_stops)

    def submit(self, command: Command, route: Route) -> None:
        if isinstance(command, EmergencyStop):
            # Priority path: anything still queued was asked for before the emergency and
            # must not run after it.
            discarded = list(self._pending)
            self._pending.clear()
            task = asyncio.create_task(
                self._emergency_stop(route, discarded), name=f"mqtt-estop-{self._id}"
            )
            self._emergency_stops.add(task)
            task.add_done_callback(self._emergency_stops.discard)
            return
        self._pending.append(_Job(command, route))
        self._work_ready.set()

    def drop_pending(self) -> None:
        """Commands accepted on a connection but not started yet do not survive it."""
        if self._pending:
            _log.warning(
                "mqtt_commands_dropped_on_disconnect",
                treadmill_id=self._id,
                count=len(self._pending),
            )
        self._pending.clear()

    async def work(self) -> None:
        """The worker: runs for the bridge's lifetime."""
        # This task runs only this treadmill's commands: everything logged while it runs them
        # (the session, the governor, the link) is about it.
        structlog.contextvars.bind_contextvars(treadmill_id=self._id)
        while True:
            await self._work_ready.wait()
            self._work_ready.clear()
            while self._pending:
                job = self._pending.popleft()
                await self._run_job(job)

    async def _run_job(self, job: _Job) -> None:
        try:
            data = await self._execute(job.command)
        except CommandRejectedError as error:
            _log.info(
                "mqtt_command_rejected",
                treadmill_id=self._id,
                command=job.command.kind,
                code=error.code,
                error=error.message,
            )
            await self._replies.refuse(job.route, error.code, error.message)
        except Exception as error:  # noqa: BLE001 - logged with its traceback below
            _log.exception("mqtt_command_failed", treadmill_id=self._id, command=job.command.kind)
            await self._replies.refuse(
                job.route, "internal_error", f"{type(error).__name__}: {error}; see the daemon log"
            )
        else:
            _log.info("mqtt_command_done", treadmill_id=self._id, command=job.command.kind)
            await self._replies.succeed(job.route, data)

    async def _execute(self, command: QueuedCommand) -> dict[str, Any]:
        controller = self._controller
        match command:
            case Start():
                return await self._start(command)
            case SelectProfile():
                return self._select(command)
            case SetSpeed(speed_kmh=wanted):
                speed = await controller.set_speed(wanted)
                return {"speed_kmh": speed, **_nudge_scope(controller.snapshot())}
            case SetIncline(incline_pct=wanted):
                incline = await controller.set_incline(wanted)
                return {"incline_pct": incline, **_nudge_scope(controller.snapshot())}
            case SetBodyWeight(body_weight_kg=weight):
                await controller.set_body_weight(weight)
                return {"body_weight_kg": weight}
            case Pause():
                await controller.pause()
            case Resume():
                await controller.resume()
            case Stop():
                await controller.stop()
            case Skip():
                await controller.skip_segment()
            case ConfirmTurn():
                await controller.confirm_turn()
            case _:
                assert_never(command)
        return {}

    async def _start(self, command: Start) -> dict[str, Any]:
        if command.heart_rate_strap is not None and self._strap is None:
            raise CommandRejectedError(
                "straps_unavailable",
                "this daemon cannot connect heart-rate straps for a start; leave "
                "heart_rate_strap out",
            )
        if command.rider is not None:
            return await self._start_for_rider(command, command.rider)
        selection = self._selection
        profile = command.profile or (selection.profile if selection else None)
        if profile is None:
            raise CommandRejectedError(
                "profile_required",
                'no profile to start: send {"command": "start", "profile": ...} '
                'or select one first with {"profile": ...}',
            )
        weight = command.body_weight_kg
        clinical = command.clinical
        if command.profile is None and selection is not None:
            weight = weight if weight is not None else selection.body_weight_kg
            clinical = clinical or selection.clinical
        await self._controller.start_profile(profile, body_weight_kg=weight, clinical=clinical)
        return {"profile": profile, **self._wear(command.heart_rate_strap)}

    async def _start_for_rider(self, command: Start, rider_id: str) -> dict[str, Any]:
        """The rider's program's next session (or the profile given), their weight (or the
        one given) and their personal limits; the selection is not used."""
        if self._riders is None:
            raise CommandRejectedError(
                "riders_unavailable",
                "this daemon keeps no riders; start with a profile, or configure [database]",
            )
        start = await self._riders.prepare_start(
            self._id, rider_id, profile=command.profile, body_weight_kg=command.body_weight_kg
        )
        try:
            await self._controller.start_profile(
                start.profile,
                body_weight_kg=start.body_weight_kg,
                clinical=start.clinical or command.clinical,
                rider_limits=start.rider_limits,
            )
        except BaseException:
            self._riders.start_refused(self._id)
            raise
        strap = command.heart_rate_strap or start.heart_rate_strap
        return {**start.to_json_dict(), **self._wear(strap)}

    def _wear(self, strap: StrapChoice | None) -> dict[str, Any]:
        """The accepted workout hears `strap` (None: the treadmill's own); the reply says so.
        Told only after the session accepted the start: a refused one changes no strap."""
        if self._strap is None:
            return {}
        self._strap.assign(strap)
        return {"heart_rate_strap": strap.to_json() if strap is not None else None}

    def _select(self, command: SelectProfile) -> dict[str, Any]:
        known = [summary.name for summary in self._catalog.summaries()]
        if command.profile not in known:
            raise CommandRejectedError(
                "unknown_profile", f"no profile {command.profile!r}; see {self._profiles_topic}"
            )
        self._selection = command
        self._on_selection()
        return {"selected_profile": command.profile}

    async def _emergency_stop(self, route: Route, discarded: list[_Job]) -> None:
        structlog.contextvars.bind_contextvars(treadmill_id=self._id)  # its own task
        _log.warning("mqtt_emergency_stop", treadmill_id=self._id, discarded=len(discarded))
        try:
            outcome = await self._controller.emergency_stop()
        except Exception as error:  # noqa: BLE001 - the seam says it never raises; logged if so
            _log.exception("mqtt_emergency_stop_failed", treadmill_id=self._id)
            await self._stop_not_confirmed(
                route, f"treadmilld failed ({type(error).__name__}: {error}; see the daemon log)"
            )
        else:
            if outcome is StopOutcome.NOT_CONFIRMED:
                _log.error(
                    "mqtt_emergency_stop_not_confirmed",
                    treadmill_id=self._id,
                    hint="pull the safety key or stop the belt at the console",
                )
                await self._stop_not_confirmed(
                    route,
                    "the treadmill refused the Stop or could not be reached "
                    "(treadmilld keeps retrying it)",
                )
            else:
                _log.info("mqtt_emergency_stop_done", treadmill_id=self._id, belt=outcome.value)
                await self._replies.succeed(route, {"belt": outcome.value}, belt=outcome.value)
        for job in discarded:
            await self._replies.refuse(
                job.route,
                "superseded_by_emergency_stop",
                f"{job.command.kind} was dropped: an emergency stop arrived before it ran",
            )

    async def _stop_not_confirmed(self, route: Route, why: str) -> None:
        """The emergency stop's error reply: the belt may still be moving."""
        await self._replies.refuse(
            route,
            STOP_NOT_CONFIRMED,
            f"emergency stop NOT confirmed: {why}. The belt may still be moving: pull the "
            "safety key now",
            belt=StopOutcome.NOT_CONFIRMED.value,
        )
