"""Riders over MQTT: `<base>/bridge/<instance>/request/rider_*`, `feedback`,
`program_confirm`, `program_decline`, `history_get` (docs/mqtt.md, "Riders"), a start for a
rider, and each rider's retained progress on `<base>/riders/<id>/progress` with its Home
Assistant device.

The rider service talks to a database, which may be slow or away: its requests run in this
module's own worker, one at a time, never in the listener (which must stay free for an
emergency stop). A payload that fails its checks is refused before it is queued, and the
service checks everything before it writes, so a refused request changes nothing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from treadmilld.engine.api import (
    CommandRejectedError,
    SessionEvent,
    TreadmillController,
    WorkoutAborted,
    WorkoutFinished,
    WorkoutStopped,
)
from treadmilld.history.recorder import RiderContext
from treadmilld.history.records import HistoryUnavailableError
from treadmilld.mqtt.discovery import rider_discovery_config
from treadmilld.mqtt.inbound_checks import refuse_retained
from treadmilld.mqtt.link import MqttLink
from treadmilld.mqtt.messages import IncomingMessage
from treadmilld.mqtt.outgoing import compact_json
from treadmilld.mqtt.payloads import (
    RIDER_REQUEST_MODELS,
    FeedbackRequest,
    HistoryGetRequest,
    PayloadError,
    ProgramConfirmRequest,
    RiderCreateRequest,
    RiderIdRequest,
    RiderUpdateRequest,
    parse_request,
    transaction_of,
)
from treadmilld.mqtt.replies import Replies, Route
from treadmilld.mqtt.topics import Topics
from treadmilld.riders.api import (
    RiderDesk,
    RiderError,
    RiderStart,
    feedback_json,
    progress_json,
    rider_json,
)

_log = structlog.get_logger(__name__)


def _unavailable(error: HistoryUnavailableError) -> str:
    return (
        f"the riders' database does not answer ({error}); nothing was changed. Try again once "
        "it is back (workouts without a rider can be started meanwhile)"
    )


# Requests waiting for the worker; more are refused with `busy` (a client retrying in a loop
# must not grow the daemon's memory while the database is away).
MAX_QUEUED_REQUESTS = 64
# The code of a rider request or a rider's start refused because the database does not answer.
DATABASE_UNAVAILABLE = "database_unavailable"
# How many times a follower lets the event loop run before it reads a workout's ending back:
# the recorder handles its own copy of the same event in its own task, and queues the write
# then (see `_after_workout`).
_RECORDER_TURNS = 20


class WorkoutRecorderSeam(Protocol):
    """What this module needs of a treadmill's `WorkoutRecorder`."""

    def for_rider(self, context: RiderContext | None) -> None: ...

    @property
    def workout_id(self) -> str | None: ...

    async def drained(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Job:
    action: str
    request: Any
    route: Route | None  # None: progress published after a workout, nobody to answer


class RiderRequests:
    """Answers rider requests, prepares starts for riders, publishes their progress."""

    def __init__(
        self,
        desk: RiderDesk,
        link: MqttLink,
        topics: Topics,
        replies: Replies,
        *,
        recorders: Mapping[str, WorkoutRecorderSeam],
        ha_discovery: bool,
        version: str,
    ) -> None:
        """`recorders`: each treadmill's workout recorder, told whose workout starts next."""
        self._desk = desk
        self._link = link
        self._topics = topics
        self._replies = replies
        self._recorders = recorders
        self._ha_discovery = ha_discovery
        self._version = version
        self._pending: deque[_Job] = deque()
        self._ready = asyncio.Event()
        # The rider of the workout running on each treadmill, for their progress at its end.
        self._riding: dict[str, str] = {}

    @staticmethod
    def handles(action: str) -> bool:
        return action in RIDER_REQUEST_MODELS

    # -- requests ----------------------------------------------------------------------

    async def handle(self, action: str, message: IncomingMessage) -> None:
        """Check a request and queue it for the worker; refuse it at once if it is bad."""
        route = Route.of(
            message,
            treadmill_id=None,
            reply_topic=self._topics.bridge(f"response/{action}"),
            transaction=transaction_of(message.payload),
        )
        try:
            refuse_retained(message)
            request = parse_request(action, message.payload, RIDER_REQUEST_MODELS)
        except PayloadError as error:
            _log.info("rider_request_refused", action=action, code=error.code)
            await self._replies.refuse(route, error.code, error.message)
            return
        if len(self._pending) >= MAX_QUEUED_REQUESTS:
            await self._replies.refuse(
                route,
                "busy",
                f"{MAX_QUEUED_REQUESTS} rider requests are waiting for the database; try again "
                "in a moment",
            )
            return
        self._queue(_Job(action, request, route))

    def _queue(self, job: _Job) -> None:
        self._pending.append(job)
        self._ready.set()

    async def work(self) -> None:
        """The worker: runs for the bridge's lifetime."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._pending:
                await self._run(self._pending.popleft())

    async def _run(self, job: _Job) -> None:
        try:
            data = await self._execute(job)
        except RiderError as error:
            _log.info("rider_request_refused", action=job.action, code=error.code)
            if job.route is not None:
                await self._replies.refuse(job.route, error.code, error.message)
        except HistoryUnavailableError as error:
            _log.warning("rider_request_refused", action=job.action, code=DATABASE_UNAVAILABLE)
            if job.route is not None:
                await self._replies.refuse(job.route, DATABASE_UNAVAILABLE, _unavailable(error))
        except Exception as error:  # noqa: BLE001 - logged with its traceback below
            _log.exception("rider_request_failed", action=job.action)
            if job.route is not None:
                await self._replies.refuse(
                    job.route,
                    "internal_error",
                    f"{type(error).__name__}: {error}; see the daemon log",
                )
        else:
            if job.route is not None:
                await self._replies.succeed(job.route, data)

    async def _execute(self, job: _Job) -> Any:  # noqa: PLR0911, PLR0912 (one case per request)
        desk, request = self._desk, job.request
        match job.action:
            case "rider_create" if isinstance(request, RiderCreateRequest):
                rider = await desk.create(request)
                await self.publish_progress(rider.rider_id)
                return rider_json(rider)
            case "rider_update" if isinstance(request, RiderUpdateRequest):
                rider = await desk.update(request.rider_id, request)
                await self.publish_progress(rider.rider_id)
                return rider_json(rider)
            case "rider_get" if isinstance(request, RiderIdRequest):
                return rider_json(await desk.get(request.rider_id))
            case "rider_list":
                return [rider_json(rider) for rider in await desk.list_riders()]
            case "rider_delete" if isinstance(request, RiderIdRequest):
                workouts = await desk.delete(request.rider_id)
                await self._clear_rider(request.rider_id)
                return {"rider_id": request.rider_id, "deleted_workouts": workouts}
            case "rider_export" if isinstance(request, RiderIdRequest):
                return await desk.export(request.rider_id)
            case "rider_progress" if isinstance(request, RiderIdRequest):
                return await self.publish_progress(request.rider_id)
            case "feedback" if isinstance(request, FeedbackRequest):
                result = await desk.feedback(
                    request.workout_id, effort=request.effort, pain=request.pain
                )
                await self._publish(
                    result.rider_id, progress_json(result.rider_id, result.progress)
                )
                return feedback_json(result)
            case "program_confirm" | "program_decline" if isinstance(
                request, ProgramConfirmRequest
            ):
                answer = desk.confirm if job.action == "program_confirm" else desk.decline
                answered = await answer(request.rider_id, therapist=request.therapist)
                return await self._publish(
                    request.rider_id, progress_json(request.rider_id, answered)
                )
            case "history_get" if isinstance(request, HistoryGetRequest):
                return await desk.workout_summary(request.workout_id)
            case "progress_after_workout" if isinstance(request, str):
                await self.publish_progress(request)
                return None
            case "progress_all":
                for rider in await desk.list_riders():
                    await self.publish_progress(rider.rider_id)
                return None
            case _:
                raise RiderError("unknown_action", f"no rider request {job.action!r}")

    # -- starts ------------------------------------------------------------------------

    async def prepare_start(
        self,
        treadmill_id: str,
        rider_id: str,
        *,
        profile: str | None,
        body_weight_kg: float | None,
    ) -> RiderStart:
        """What a start for `rider_id` runs; the treadmill's recorder is told the next workout
        is theirs. Call `start_refused` if the engine then refuses the start."""
        try:
            start = await self._desk.start_for(
                rider_id, profile=profile, body_weight_kg=body_weight_kg
            )
        except RiderError as error:
            raise CommandRejectedError(error.code, error.message) from None
        except HistoryUnavailableError as error:
            raise CommandRejectedError(DATABASE_UNAVAILABLE, _unavailable(error)) from None
        recorder = self._recorders.get(treadmill_id)
        if recorder is not None:
            recorder.for_rider(start.context)
        self._riding[treadmill_id] = rider_id
        return start

    def start_refused(self, treadmill_id: str) -> None:
        recorder = self._recorders.get(treadmill_id)
        if recorder is not None:
            recorder.for_rider(None)
        self._riding.pop(treadmill_id, None)

    async def follow(self, treadmill_id: str, controller: TreadmillController) -> None:
        """Publishes a rider's progress when their workout on this treadmill ends."""
        async for event in controller.events():
            if self._ends_workout(event) and (rider := self._riding.pop(treadmill_id, None)):
                await self._after_workout(treadmill_id)
                self._queue(_Job("progress_after_workout", rider, None))

    @staticmethod
    def _ends_workout(event: SessionEvent) -> bool:
        return isinstance(event, WorkoutFinished | WorkoutStopped | WorkoutAborted)

    async def _after_workout(self, treadmill_id: str) -> None:
        """Until the recorder has written the ending this follower saw. Both read the same
        session's fan-out, each in its own task; the recorder queues the write when its task
        handles the event (no await in between), so a few turns of the loop suffice, and
        `drained` then waits for the write itself."""
        recorder = self._recorders.get(treadmill_id)
        if recorder is None:
            return
        for _ in range(_RECORDER_TURNS):
            if recorder.workout_id is None:
                break
            await asyncio.sleep(0)
        await recorder.drained()

    def connected(self) -> None:
        """A new broker connection: every rider's progress again, from the worker (the
        broker may be a new one without the retained topics)."""
        self._queue(_Job("progress_all", None, None))

    # -- progress topics ---------------------------------------------------------------

    async def publish_progress(self, rider_id: str) -> dict[str, Any]:
        progress = await self._desk.progress(rider_id)
        return await self._publish(rider_id, progress_json(rider_id, progress))

    async def _publish(self, rider_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._ha_discovery:
            config = rider_discovery_config(
                base_topic=self._topics.base,
                bridge_state_topic=self._topics.bridge("state"),
                rider_id=rider_id,
                version=self._version,
            )
            await self._link.publish(
                self._topics.rider_discovery(rider_id), compact_json(config), qos=1, retain=True
            )
        await self._link.publish(
            self._topics.rider(rider_id, "progress"), compact_json(body), qos=1, retain=True
        )
        _log.info("rider_progress_published", rider_id=rider_id)
        return body

    async def _clear_rider(self, rider_id: str) -> None:
        """An empty retained payload clears a retained topic (MQTT 3.1.1 section 3.3.1.3), and
        an empty discovery config removes the device from Home Assistant."""
        await self._link.publish(self._topics.rider(rider_id, "progress"), "", qos=1, retain=True)
        await self._link.publish(self._topics.rider_discovery(rider_id), "", qos=1, retain=True)
        _log.info("rider_topics_cleared", rider_id=rider_id)
