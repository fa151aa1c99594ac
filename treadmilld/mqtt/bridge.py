"""The MQTT bridge: publishes every treadmill's state and turns MQTT messages into commands.

Topic contract: docs/mqtt.md. Three kinds of task:

- per treadmill, a *follower* reading the controller's events. It never touches the network:
  it marks state dirty and queues events, so a slow or absent broker can never hold up the
  engine;
- per treadmill, a *worker* running that treadmill's commands one at a time, in arrival order.
  Emergency stop skips the worker: it runs at once in its own task and discards whatever was
  still queued for that treadmill;
- per broker connection, a *listener* (validates, refuses, queues; never waits on the
  engine) and a *publisher* (state on change, rate-limited, heartbeat, events, discovery).

Several daemons may share one broker and base topic (a gym's Pis): each owns the bridge
topics of its own instance, `<base>/bridge/<instance>/...`, and the topics of its own
treadmills, `<base>/<id>/...`; it reads the other instances' retained `devices` only to warn
about a treadmill id served twice.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, assert_never

import structlog

from treadmilld.engine.api import (
    MAX_PROFILE_BYTES,
    CommandRejectedError,
    ProfileCatalog,
    ProfileReload,
    ProfileStore,
    ProfileUploadRefusedError,
    SessionSnapshot,
    StateChanged,
    StopOutcome,
    TreadmillController,
)
from treadmilld.mqtt.config import RESERVED_INSTANCE_NAMES, MqttSettings
from treadmilld.mqtt.discovery import discovery_config, discovery_topic
from treadmilld.mqtt.link import IncomingMessage, MqttLink, OutgoingMessage
from treadmilld.mqtt.payloads import (
    BRIDGE_REQUEST_MODELS,
    COMMAND_NAMES,
    PLAIN_SET_FIELDS,
    TREADMILL_REQUESTS,
    Command,
    ConfirmTurn,
    EmergencyStop,
    Pause,
    PayloadError,
    QueuedCommand,
    Resume,
    SelectProfile,
    SetBodyWeight,
    SetIncline,
    SetSpeed,
    Skip,
    Start,
    Stop,
    UploadProfileRequest,
    command_age_s,
    parse_plain_set,
    parse_request,
    parse_set,
    request_command,
    transaction_of,
)
from treadmilld.mqtt.state import display_state
from treadmilld.runtime.clock import Clock, LoopClock
from treadmilld.runtime.waiting import sleep_until_set

_log = structlog.get_logger(__name__)

# Events produced while the broker is away are dropped beyond this many (they are not
# retained; the retained state says where things stand when the broker returns).
EVENT_BACKLOG = 256
# How long close() waits for an emergency stop that is still being sent to the treadmill.
ESTOP_FINISH_TIMEOUT_S = 5.0
# The error code of an emergency stop the treadmill did not confirm (StopOutcome.NOT_CONFIRMED).
STOP_NOT_CONFIRMED = "stop_not_confirmed"
_RESERVED_IDS = frozenset({"bridge"})
_BAD_ID_CHARS = frozenset("/+#\x00 ")
_BAD_TOPIC_CHARS = frozenset("+#\x00")
# The single-daemon layout before instances (`<base>/bridge/state` etc.): cleared at start-up
# when it is provably this daemon's own leftover (see `_on_legacy_bridge`).
LEGACY_BRIDGE_LEAVES = ("state", "info", "devices", "profiles")
# An upload's whole MQTT payload may be this large: the profile's own limit (checked exactly
# on its text) plus room for JSON escaping. Anything larger is refused before it is parsed.
MAX_UPLOAD_PAYLOAD_BYTES = 4 * MAX_PROFILE_BYTES


class BridgeConfigError(ValueError):
    """The bridge cannot run with this configuration; the message says what to change."""


@dataclass(frozen=True, slots=True)
class _Route:
    """Where the outcome of one message goes."""

    treadmill_id: str | None
    reply_topic: str | None  # request/<action> -> response/<action>; None for `set`
    transaction: str | int | None
    response_topic: str | None = None  # MQTT v5 ResponseTopic: wins over reply_topic
    correlation_data: bytes | None = None
    request: str | None = None  # topic, named in error events


@dataclass(slots=True)
class _Job:
    command: QueuedCommand
    route: _Route


@dataclass(slots=True)
class _Treadmill:
    id: str
    controller: TreadmillController
    pending: deque[_Job] = field(default_factory=deque)
    work_ready: asyncio.Event = field(default_factory=asyncio.Event)
    selection: SelectProfile | None = None  # chosen via `set {"profile": ...}`
    dirty: bool = True
    last_state_at: float | None = None
    # The last state published on this connection, as JSON without `ts`: a change that does
    # not show in the rounded payload is not published (only the heartbeat repeats it).
    last_state_body: str | None = None
    # What this connection has already told the broker (reset on every connect).
    published_availability: str | None = None
    # The ranges last in `bridge/<instance>/devices`, and what the last discovery config was
    # built from: discovery is sent again only when that changes.
    devices_ranges: tuple[object, object] | None = None
    announced: tuple[object, ...] | None = None


def _availability(snapshot: SessionSnapshot) -> str:
    return "online" if snapshot.connection == "connected" else "offline"


def _event_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """An event as published: `type`, and the same value as `event_type`, the key Home
    Assistant's event entity reads (https://www.home-assistant.io/integrations/event.mqtt/);
    every other key becomes an attribute of the HA event."""
    kind = payload["type"]
    return {"type": kind, "event_type": kind, **payload}


def _nudge_scope(snapshot: SessionSnapshot) -> dict[str, Any]:
    """What an accepted speed or incline nudge applies to: the current walk segment, until it
    ends (the next segment brings its own planned values)."""
    remaining = snapshot.segment_remaining_s
    return {
        "applies_until": "segment_end",
        "segment_index": snapshot.segment_index,
        "segment_remaining_s": round(remaining, 1) if remaining is not None else None,
    }


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)


class MqttBridge:
    """Runs as one named task in the daemon's TaskGroup: `await bridge.run()`.

    `run()` returns after `close()` and raises only on cancellation or a fatal configuration
    error; a broker outage is retried forever and never reaches the engine.
    """

    def __init__(
        self,
        settings: MqttSettings,
        controllers: Mapping[str, TreadmillController],
        catalog: ProfileCatalog,
        *,
        version: str,
        clock: Clock | None = None,
        wall_time: Callable[[], float] = time.time,
        names: Mapping[str, str] | None = None,
    ) -> None:
        """`names`: each treadmill's display name (config `name`), for Home Assistant's
        device; the id where none is given."""
        for treadmill_id in controllers:
            if (
                not treadmill_id
                or treadmill_id in _RESERVED_IDS
                or _BAD_ID_CHARS.intersection(treadmill_id)
            ):
                raise BridgeConfigError(
                    f"treadmill id {treadmill_id!r} cannot be an MQTT topic level; use a slug "
                    "like 'tm01' (no '/', '+', '#', spaces, and not 'bridge')"
                )
        self._settings = settings
        self._catalog = catalog
        self._version = version
        self._clock: Clock = clock or LoopClock()
        self._wall_time = wall_time
        self._base = settings.base_topic
        self._treadmills = {
            treadmill_id: _Treadmill(treadmill_id, controller)
            for treadmill_id, controller in controllers.items()
        }
        self._names = {
            treadmill_id: (names or {}).get(treadmill_id) or treadmill_id
            for treadmill_id in controllers
        }
        self._instance = settings.instance
        # (other instance, treadmill id) pairs already warned about, so a republished
        # `devices` does not repeat the warning.
        self._duplicates_warned: set[tuple[str, str]] = set()
        # The other instances on this base topic, from their retained `bridge/<instance>/...`:
        # the treadmills each announces and whether it is up. A command for a treadmill this
        # daemon does not serve is left to a live instance that does (see `_on_unknown_treadmill`).
        self._fleet_devices: dict[str, frozenset[str]] = {}
        self._fleet_online: dict[str, bool] = {}
        self._legacy_state: bytes | None = None
        self._events: deque[tuple[str, dict[str, Any]]] = deque(maxlen=EVENT_BACKLOG)
        self._wake = asyncio.Event()
        self._estop_tasks: set[asyncio.Task[None]] = set()
        self._subscribed = asyncio.Event()
        # The profile list as last published (retained), to re-announce only on a change.
        self._published_profiles: list[dict[str, Any]] | None = None
        # One reload (or upload) at a time: the folder watcher and MQTT requests both ask.
        self._profiles_lock = asyncio.Lock()
        self._offline = OutgoingMessage(self._bridge_topic("state"), "offline", qos=1, retain=True)
        self._link = MqttLink(settings, will=self._offline, goodbye=self._goodbye)

    # -- topics ---------------------------------------------------------------------------

    def _bridge_topic(self, suffix: str) -> str:
        return f"{self._base}/bridge/{self._instance}/{suffix}"

    def _legacy_bridge_topic(self, leaf: str) -> str:
        return f"{self._base}/bridge/{leaf}"

    def _treadmill_topic(self, treadmill_id: str, suffix: str) -> str:
        return f"{self._base}/{treadmill_id}/{suffix}"

    @property
    def _ha_status_topic(self) -> str:
        return f"{self._settings.ha_discovery_prefix}/status"

    def _subscriptions(self) -> list[str]:
        topics = [
            self._bridge_topic("request/+"),
            # Every instance's retained device list and state: a treadmill id served twice is a
            # misconfiguration two Pis cannot see otherwise, and a command for a treadmill no
            # live instance serves gets an answer.
            f"{self._base}/bridge/+/devices",
            f"{self._base}/bridge/+/state",
            # The old single-daemon layout, state before info (retained messages come in
            # subscription order), to clear our own leftovers once.
            self._legacy_bridge_topic("state"),
            self._legacy_bridge_topic("info"),
        ]
        # Commands for every treadmill id, ours or not, so an unknown id gets an answer. One
        # wildcard each and no per-treadmill filter beside it: overlapping subscriptions may
        # deliver a message once per match (mosquitto does), which would run a command twice.
        # Under a per-Pi ACL the broker delivers only the treadmills this daemon may read.
        topics += [
            f"{self._base}/+/set",
            f"{self._base}/+/set/+",
            f"{self._base}/+/request/+",
        ]
        topics += [self._treadmill_topic(treadmill_id, "get") for treadmill_id in self._treadmills]
        if self._settings.ha_discovery:
            topics.append(self._ha_status_topic)
        return topics

    @property
    def connected(self) -> bool:
        """Whether the bridge is connected to its broker right now."""
        return self._link.online

    async def wait_ready(self) -> None:
        """Return once connected, announced and subscribed (e.g. before sd_notify READY)."""
        await self._subscribed.wait()

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        background: list[asyncio.Task[None]] = []
        async with asyncio.TaskGroup() as group:
            for treadmill in self._treadmills.values():
                background.append(
                    group.create_task(self._follow(treadmill), name=f"mqtt-follow-{treadmill.id}")
                )
                background.append(
                    group.create_task(self._work(treadmill), name=f"mqtt-work-{treadmill.id}")
                )
            try:
                await self._link.run(self._session)
            finally:
                for task in background:
                    task.cancel()
        _log.info("mqtt_bridge_stopped")

    async def close(self) -> None:
        """Say goodbye (`_goodbye`), disconnect cleanly and let `run()` return. The daemon
        calls it once the sessions have shut down, so the final state is the last word."""
        await self._link.close()
        if self._estop_tasks:
            # Let an emergency stop that is under way finish (without swallowing our own
            # cancellation, which `await task` inside a suppress would).
            await asyncio.wait(list(self._estop_tasks), timeout=ESTOP_FINISH_TIMEOUT_S)

    def _goodbye(self) -> list[OutgoingMessage]:
        """What a clean stop publishes, in this order: events not yet sent (the shutdown's
        `workout_aborted`, `stop_confirmed`), each treadmill's final state (retained, QoS 1,
        so the last retained state is the one after the shutdown), each availability
        `offline` (the daemon no longer speaks for the treadmill), then bridge `offline`."""
        messages = [
            OutgoingMessage(self._treadmill_topic(treadmill_id, "event"), _json(payload), qos=1)
            for treadmill_id, payload in self._events
        ]
        self._events.clear()
        for treadmill in self._treadmills.values():
            try:
                state = _json(self._state_payload(treadmill))
            except Exception:  # noqa: BLE001 - a bug, logged; the offline messages still go out
                _log.exception("mqtt_final_state_failed", treadmill_id=treadmill.id)
            else:
                messages.append(
                    OutgoingMessage(
                        self._treadmill_topic(treadmill.id, "state"), state, qos=1, retain=True
                    )
                )
            messages.append(
                OutgoingMessage(
                    self._treadmill_topic(treadmill.id, "availability"),
                    "offline",
                    qos=1,
                    retain=True,
                )
            )
        messages.append(self._offline)
        return messages

    # -- engine side: never waits on the network -----------------------------------------

    async def _follow(self, treadmill: _Treadmill) -> None:
        async for event in treadmill.controller.events():
            if isinstance(event, StateChanged):
                treadmill.dirty = True
            else:
                self._events.append((treadmill.id, _event_payload(event.payload())))
            self._wake.set()

    async def _work(self, treadmill: _Treadmill) -> None:
        # This task runs only this treadmill's commands: everything logged while it runs them
        # (the session, the governor, the link) is about it.
        structlog.contextvars.bind_contextvars(treadmill_id=treadmill.id)
        while True:
            await treadmill.work_ready.wait()
            treadmill.work_ready.clear()
            while treadmill.pending:
                job = treadmill.pending.popleft()
                await self._run_job(treadmill, job)

    async def _run_job(self, treadmill: _Treadmill, job: _Job) -> None:
        try:
            data = await self._execute(treadmill, job.command)
        except CommandRejectedError as error:
            _log.info(
                "mqtt_command_rejected",
                treadmill_id=treadmill.id,
                command=job.command.kind,
                code=error.code,
                error=error.message,
            )
            await self._refuse(job.route, error.code, error.message)
        except Exception as error:  # noqa: BLE001 - logged with its traceback below
            _log.exception(
                "mqtt_command_failed", treadmill_id=treadmill.id, command=job.command.kind
            )
            await self._refuse(
                job.route, "internal_error", f"{type(error).__name__}: {error}; see the daemon log"
            )
        else:
            _log.info("mqtt_command_done", treadmill_id=treadmill.id, command=job.command.kind)
            await self._succeed(job.route, data)

    async def _execute(self, treadmill: _Treadmill, command: QueuedCommand) -> dict[str, Any]:
        controller = treadmill.controller
        match command:
            case Start():
                return await self._start(treadmill, command)
            case SelectProfile():
                return self._select(treadmill, command)
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

    async def _start(self, treadmill: _Treadmill, command: Start) -> dict[str, Any]:
        selection = treadmill.selection
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
        await treadmill.controller.start_profile(profile, body_weight_kg=weight, clinical=clinical)
        return {"profile": profile}

    def _select(self, treadmill: _Treadmill, command: SelectProfile) -> dict[str, Any]:
        known = [summary.name for summary in self._catalog.summaries()]
        if command.profile not in known:
            raise CommandRejectedError(
                "unknown_profile",
                f"no profile {command.profile!r}; see {self._bridge_topic('profiles')}",
            )
        treadmill.selection = command
        treadmill.dirty = True
        self._wake.set()
        return {"selected_profile": command.profile}

    def _submit(self, treadmill: _Treadmill, command: Command, route: _Route) -> None:
        if isinstance(command, EmergencyStop):
            # Priority path: anything still queued was asked for before the emergency and
            # must not run after it.
            discarded = list(treadmill.pending)
            treadmill.pending.clear()
            task = asyncio.create_task(
                self._emergency_stop(treadmill, route, discarded),
                name=f"mqtt-estop-{treadmill.id}",
            )
            self._estop_tasks.add(task)
            task.add_done_callback(self._estop_tasks.discard)
            return
        treadmill.pending.append(_Job(command, route))
        treadmill.work_ready.set()

    async def _emergency_stop(
        self, treadmill: _Treadmill, route: _Route, discarded: list[_Job]
    ) -> None:
        structlog.contextvars.bind_contextvars(treadmill_id=treadmill.id)  # its own task
        _log.warning("mqtt_emergency_stop", treadmill_id=treadmill.id, discarded=len(discarded))
        try:
            outcome = await treadmill.controller.emergency_stop()
        except Exception as error:  # noqa: BLE001 - the seam says it never raises; logged if so
            _log.exception("mqtt_emergency_stop_failed", treadmill_id=treadmill.id)
            await self._stop_not_confirmed(
                route, f"treadmilld failed ({type(error).__name__}: {error}; see the daemon log)"
            )
        else:
            if outcome is StopOutcome.NOT_CONFIRMED:
                _log.error(
                    "mqtt_emergency_stop_not_confirmed",
                    treadmill_id=treadmill.id,
                    hint="pull the safety key or stop the belt at the console",
                )
                await self._stop_not_confirmed(
                    route,
                    "the treadmill refused the Stop or could not be reached "
                    "(treadmilld keeps retrying it)",
                )
            else:
                _log.info("mqtt_emergency_stop_done", treadmill_id=treadmill.id, belt=outcome.value)
                await self._succeed(route, {"belt": outcome.value}, belt=outcome.value)
        for job in discarded:
            await self._refuse(
                job.route,
                "superseded_by_emergency_stop",
                f"{job.command.kind} was dropped: an emergency stop arrived before it ran",
            )

    async def _stop_not_confirmed(self, route: _Route, why: str) -> None:
        """The emergency stop's error reply: the belt may still be moving."""
        await self._refuse(
            route,
            STOP_NOT_CONFIRMED,
            f"emergency stop NOT confirmed: {why}. The belt may still be moving: pull the "
            "safety key now",
            belt=StopOutcome.NOT_CONFIRMED.value,
        )

    # -- broker side ----------------------------------------------------------------------

    async def _session(self) -> None:
        """One broker connection: announce, subscribe, then listen and publish."""
        self._events.clear()  # events from the outage are old news; state says the rest
        for treadmill in self._treadmills.values():
            treadmill.published_availability = None
            treadmill.devices_ranges = None
            treadmill.announced = None
            treadmill.dirty = True
            treadmill.last_state_at = None
            treadmill.last_state_body = None
        try:
            await self._publish_bridge_info()
            await self._link.subscribe(self._subscriptions())
            await self._publish_pass()  # availability, discovery and state before "ready"
            # `online` last: a client may send a command the moment it sees it, and that
            # command must find us subscribed.
            await self._link.publish(self._bridge_topic("state"), "online", qos=1, retain=True)
            self._subscribed.set()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._listen(), name="mqtt-listen")
                group.create_task(self._publish_loop(), name="mqtt-publish")
        finally:
            self._subscribed.clear()
            # Commands accepted on this connection but not started yet do not survive it.
            for treadmill in self._treadmills.values():
                if treadmill.pending:
                    _log.warning(
                        "mqtt_commands_dropped_on_disconnect",
                        treadmill_id=treadmill.id,
                        count=len(treadmill.pending),
                    )
                treadmill.pending.clear()

    async def _publish_bridge_info(self) -> None:
        info = {
            "version": self._version,
            "base_topic": self._base,
            "instance": self._instance,
            "protocol": self._settings.protocol,
            "ha_discovery": {
                "enabled": self._settings.ha_discovery,
                "prefix": self._settings.ha_discovery_prefix,
            },
            "treadmills": list(self._treadmills),
            "commands": list(COMMAND_NAMES),
            "set_fields": list(PLAIN_SET_FIELDS),
            "requests": sorted(TREADMILL_REQUESTS),
            "bridge_requests": sorted(BRIDGE_REQUEST_MODELS),
            "max_command_age_s": self._settings.max_command_age_s,
        }
        await self._link.publish(self._bridge_topic("info"), _json(info), qos=1, retain=True)
        await self._publish_devices()
        await self._publish_profiles(self._profiles())

    def _profiles(self) -> list[dict[str, Any]]:
        profiles = []
        for summary in self._catalog.summaries():
            entry = asdict(summary)
            entry["sources"] = list(summary.sources)
            profiles.append(entry)
        return profiles

    def _devices(self) -> list[dict[str, Any]]:
        devices = []
        for treadmill in self._treadmills.values():
            snapshot = treadmill.controller.snapshot()
            devices.append(
                {
                    "id": treadmill.id,
                    "connection": snapshot.connection,
                    "availability": _availability(snapshot),
                    "speed_range": asdict(snapshot.speed_range) if snapshot.speed_range else None,
                    "incline_range": (
                        asdict(snapshot.incline_range) if snapshot.incline_range else None
                    ),
                    "state_topic": self._treadmill_topic(treadmill.id, "state"),
                }
            )
        return devices

    async def _publish_devices(self) -> None:
        await self._link.publish(
            self._bridge_topic("devices"), _json(self._devices()), qos=1, retain=True
        )

    def _state_body(self, treadmill: _Treadmill) -> dict[str, Any]:
        """The state payload without `ts`, rounded for display (mqtt/state.py)."""
        state = display_state(treadmill.controller.snapshot())
        selection = treadmill.selection
        state["selected_profile"] = selection.profile if selection else None
        return state

    def _state_payload(self, treadmill: _Treadmill) -> dict[str, Any]:
        return self._stamped(self._state_body(treadmill))

    def _stamped(self, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "ts": round(self._wall_time(), 3)}

    async def _publish_state(
        self, treadmill: _Treadmill, body: dict[str, Any] | None = None
    ) -> None:
        if body is None:
            body = self._state_body(treadmill)
        treadmill.dirty = False
        treadmill.last_state_at = self._clock.now()
        treadmill.last_state_body = _json(body)
        # QoS 0: telemetry, superseded a moment later; retained so late subscribers see it.
        await self._link.publish(
            self._treadmill_topic(treadmill.id, "state"),
            _json(self._stamped(body)),
            qos=0,
            retain=True,
        )

    def _discovery_inputs(self, treadmill: _Treadmill) -> tuple[object, ...] | None:
        """What the treadmill's discovery config is built from; None until its link has read
        the deck (Device Information, Supported Speed/Inclination Range), so the config goes
        out once, with the real ranges, never with a placeholder first."""
        device = treadmill.controller.device_info()
        if device is None:
            return None
        snapshot = treadmill.controller.snapshot()
        profiles = tuple((summary.name, summary.title) for summary in self._catalog.summaries())
        return (device, snapshot.speed_range, snapshot.incline_range, profiles)

    async def _announce_discovery(self, treadmill: _Treadmill) -> None:
        """Publish the discovery config if the deck has been read (else it follows once it
        has, from the publish loop)."""
        inputs = self._discovery_inputs(treadmill)
        if inputs is None or not self._settings.ha_discovery:
            return
        treadmill.announced = inputs
        device = treadmill.controller.device_info()
        assert device is not None  # `inputs` has it
        config = discovery_config(
            base_topic=self._base,
            bridge_state_topic=self._bridge_topic("state"),
            treadmill_id=treadmill.id,
            name=self._names[treadmill.id],
            device=device,
            snapshot=treadmill.controller.snapshot(),
            profiles=self._catalog.summaries(),
            version=self._version,
        )
        _log.info("mqtt_discovery_announced", treadmill_id=treadmill.id)
        await self._link.publish(
            discovery_topic(self._settings.ha_discovery_prefix, self._base, treadmill.id),
            _json(config),
            qos=1,
            retain=True,
        )

    async def _publish_loop(self) -> None:
        while True:
            next_due = await self._publish_pass()
            if not self._wake.is_set():
                await self._sleep_until_woken(next_due - self._clock.now())

    async def _publish_pass(self) -> float:
        """Publish whatever is due; returns the clock time of the next deadline."""
        self._wake.clear()
        next_due = math.inf
        devices_changed = False
        for treadmill in self._treadmills.values():
            changed, due = await self._publish_treadmill(treadmill)
            devices_changed = devices_changed or changed
            next_due = min(next_due, due)
        if devices_changed:
            await self._publish_devices()
        while self._events:
            treadmill_id, payload = self._events.popleft()
            await self._link.publish(
                self._treadmill_topic(treadmill_id, "event"), _json(payload), qos=1
            )
        return next_due

    async def _publish_treadmill(self, treadmill: _Treadmill) -> tuple[bool, float]:
        """Availability, discovery and state for one treadmill, as far as due. Returns
        (whether bridge/devices needs republishing, next deadline)."""
        settings = self._settings
        snapshot = treadmill.controller.snapshot()
        devices_changed = False
        availability = _availability(snapshot)
        if availability != treadmill.published_availability:
            previous = treadmill.published_availability
            treadmill.published_availability = availability
            await self._link.publish(
                self._treadmill_topic(treadmill.id, "availability"),
                availability,
                qos=1,
                retain=True,
            )
            if previous is not None:
                devices_changed = True
                kind = "connected" if availability == "online" else "disconnected"
                await self._publish_bridge_event(f"treadmill_{kind}", {"id": treadmill.id})
        ranges = (snapshot.speed_range, snapshot.incline_range)
        if ranges != treadmill.devices_ranges:
            # `devices` went out with this connection's bridge info; again once they change.
            devices_changed = devices_changed or treadmill.devices_ranges is not None
            treadmill.devices_ranges = ranges
        if self._settings.ha_discovery:
            inputs = self._discovery_inputs(treadmill)
            if inputs is not None and inputs != treadmill.announced:
                await self._announce_discovery(treadmill)
        now = self._clock.now()
        last = treadmill.last_state_at
        next_due = math.inf
        if last is None or now - last >= settings.heartbeat_interval_s:
            await self._publish_state(treadmill)
        elif treadmill.dirty:
            # The engine says something changed (it does on every Treadmill Data record, idle
            # or not); publish only if the rounded payload shows it, and at most every
            # `state_min_interval_s` (changes in between are coalesced).
            body = self._state_body(treadmill)
            if _json(body) == treadmill.last_state_body:
                treadmill.dirty = False
            elif now - last >= settings.state_min_interval_s:
                await self._publish_state(treadmill, body)
            else:
                next_due = last + settings.state_min_interval_s
        if treadmill.last_state_at is not None:
            next_due = min(next_due, treadmill.last_state_at + settings.heartbeat_interval_s)
        return devices_changed, next_due

    async def _sleep_until_woken(self, delay_s: float) -> None:
        await sleep_until_set(self._wake, delay_s if delay_s < math.inf else 3600, self._clock)

    async def _publish_bridge_event(self, kind: str, data: dict[str, Any]) -> None:
        await self._link.publish(
            self._bridge_topic("event"), _json({"type": kind, "data": data}), qos=1
        )

    # -- incoming -------------------------------------------------------------------------

    async def _listen(self) -> None:
        async for message in self._link.messages():
            try:
                await self._handle(message)
            except Exception:  # noqa: BLE001 - logged with its traceback below
                # A bug in one message's handling must not stop the next (an e-stop) arriving.
                _log.exception("mqtt_message_handling_failed", topic=message.topic)

    async def _handle(self, message: IncomingMessage) -> None:
        if message.topic == self._ha_status_topic:
            await self._on_ha_status(message)
            return
        levels = message.topic.removeprefix(self._base + "/").split("/")
        match levels:
            case ["bridge", instance, "request", action] if instance == self._instance:
                await self._on_bridge_request(action, message)
            case ["bridge", instance, "devices"]:
                self._on_fleet_devices(instance, message)
            case ["bridge", instance, "state"]:
                self._on_fleet_state(instance, message)
            case ["bridge", "state"]:
                self._legacy_state = message.payload
            case ["bridge", "info"]:
                await self._on_legacy_bridge(message)
            case [treadmill_id, "set"] if treadmill_id in self._treadmills:
                await self._on_set(self._treadmills[treadmill_id], None, message)
            case [treadmill_id, "set", field_name] if treadmill_id in self._treadmills:
                await self._on_set(self._treadmills[treadmill_id], field_name, message)
            case [treadmill_id, "get"] if treadmill_id in self._treadmills:
                await self._publish_state(self._treadmills[treadmill_id])
            case [treadmill_id, "request", action] if treadmill_id in self._treadmills:
                await self._on_request(self._treadmills[treadmill_id], action, message)
            case [treadmill_id, "set" | "request", *_] if treadmill_id != "bridge":
                await self._on_unknown_treadmill(treadmill_id, levels, message)
            case _:
                _log.debug("mqtt_message_ignored", topic=message.topic)

    def _on_fleet_state(self, instance: str, message: IncomingMessage) -> None:
        if instance == self._instance or instance in RESERVED_INSTANCE_NAMES:
            return
        self._fleet_online[instance] = message.payload.strip() == b"online"

    def _on_fleet_devices(self, instance: str, message: IncomingMessage) -> None:
        """Note which treadmills another instance serves, and warn when it announces a
        treadmill id this one serves: both would publish to and take commands from the same
        `<base>/<id>/...` topics."""
        if instance == self._instance or instance in RESERVED_INSTANCE_NAMES:
            return  # ours, or an old daemon's `bridge/response/devices` reply
        try:
            devices = json.loads(message.payload) if message.payload.strip() else []
            theirs = {str(device["id"]) for device in devices if isinstance(device, dict)}
        except (ValueError, TypeError, KeyError):
            _log.debug("mqtt_fleet_devices_unreadable", instance=instance)
            return
        self._fleet_devices[instance] = frozenset(theirs)
        for treadmill_id in sorted(theirs & self._treadmills.keys()):
            if (instance, treadmill_id) in self._duplicates_warned:
                continue
            self._duplicates_warned.add((instance, treadmill_id))
            _log.warning(
                "mqtt_duplicate_treadmill_id",
                treadmill_id=treadmill_id,
                instance=self._instance,
                other_instance=instance,
                hint=f"instance {instance!r} also announces treadmill {treadmill_id!r} under "
                f"base topic {self._base!r}: both daemons would answer its commands. Give each "
                "treadmill a fleet-wide unique id; if that instance is retired, clear its "
                f"retained topics (mosquitto_pub -r -n -t {self._base}/bridge/{instance}/devices, "
                "and the same for state, info and profiles)",
            )
        # Forget pairs it no longer announces, so a later duplicate is reported again.
        self._duplicates_warned = {
            (other, treadmill_id)
            for other, treadmill_id in self._duplicates_warned
            if other != instance or treadmill_id in theirs
        }

    async def _on_unknown_treadmill(
        self, treadmill_id: str, levels: list[str], message: IncomingMessage
    ) -> None:
        """A command or request for a treadmill this daemon does not serve. Left to another
        live instance that serves it (it answers); otherwise answered with an error, by one
        instance only: of the live ones on this base topic, the first by name."""
        owners = sorted(i for i, ids in self._fleet_devices.items() if treadmill_id in ids)
        live_owners = [owner for owner in owners if self._fleet_online.get(owner)]
        live_others = [i for i, online in self._fleet_online.items() if online]
        if live_owners or min([self._instance, *live_others]) != self._instance:
            _log.debug("mqtt_message_left_to_fleet", topic=message.topic, owners=live_owners)
            return
        if message.retain:
            # A leftover on the broker, not a sender waiting: answering it at every reconnect
            # of every Pi would only be noise.
            _log.debug("mqtt_retained_message_ignored", topic=message.topic)
            return
        is_request = levels[1] == "request" and len(levels) == 3
        plain_set = levels[1] == "set" and len(levels) == 3
        route = _Route(
            treadmill_id=treadmill_id,
            reply_topic=(
                self._treadmill_topic(treadmill_id, f"response/{levels[2]}") if is_request else None
            ),
            transaction=None if plain_set else transaction_of(message.payload),
            response_topic=message.response_topic,
            correlation_data=message.correlation_data,
            request=message.topic,
        )
        known = sorted(
            {*self._treadmills, *(t for i in live_others for t in self._fleet_devices.get(i, ()))}
        )
        if owners:
            code = "treadmill_offline"
            error = (
                f"treadmill {treadmill_id!r} is served by instance {owners[0]!r}, which is "
                f"offline ({self._base}/bridge/{owners[0]}/state); nothing was done: check "
                "that daemon (systemctl status treadmilld on its Pi)"
            )
        else:
            code = "unknown_treadmill"
            error = (
                f"no treadmill {treadmill_id!r} under base topic {self._base!r}; nothing was "
                f"done. Known treadmills: {', '.join(known) or 'none'}; fix the id in the topic"
            )
        _log.info(
            "mqtt_unknown_treadmill", treadmill_id=treadmill_id, topic=message.topic, code=code
        )
        await self._refuse(route, code, error, treadmills=known)

    async def _on_legacy_bridge(self, message: IncomingMessage) -> None:
        """Clear the retained single-daemon bridge topics (`<base>/bridge/state|info|devices|
        profiles`) if they are this daemon's own, left by a version before instances.

        Ours means: replayed from the broker's store (retain flag set: no daemon of that
        version is publishing it right now), listing only treadmills this daemon serves, and
        with no `online` retained beside it. Anything else belongs to another daemon (an older
        version on another Pi) and is left alone: clearing it would mark that Pi's treadmills
        unknown in every dashboard still reading the old layout."""
        if not message.retain or not message.payload.strip():
            return
        try:
            info = json.loads(message.payload)
            listed = {str(item) for item in info["treadmills"]}
        except (ValueError, TypeError, KeyError):
            _log.debug("mqtt_legacy_bridge_info_unreadable")
            return
        ours = bool(listed) and listed <= self._treadmills.keys()
        if not ours or self._legacy_state == b"online":
            _log.info(
                "mqtt_legacy_bridge_topics_left",
                topic=self._legacy_bridge_topic("info"),
                treadmills=sorted(listed),
                state=(self._legacy_state or b"").decode(errors="replace") or None,
                hint="another daemon (an older treadmilld) still uses the shared bridge topics; "
                "upgrade it, or clear them by hand with mosquitto_pub -r -n once it is gone",
            )
            return
        for leaf in LEGACY_BRIDGE_LEAVES:
            await self._link.publish(self._legacy_bridge_topic(leaf), "", qos=1, retain=True)
        self._legacy_state = None
        _log.info(
            "mqtt_legacy_bridge_topics_cleared",
            topics=[self._legacy_bridge_topic(leaf) for leaf in LEGACY_BRIDGE_LEAVES],
            replaced_by=self._bridge_topic("#"),
        )

    async def _on_ha_status(self, message: IncomingMessage) -> None:
        if message.payload.strip() != b"online":
            return
        _log.info("mqtt_home_assistant_online")
        for treadmill in self._treadmills.values():
            await self._announce_discovery(treadmill)
            # HA wants state after config: republish now, rate limit or not.
            await self._publish_state(treadmill)

    @staticmethod
    def _refuse_retained(message: IncomingMessage) -> None:
        """Raise `PayloadError` for a retained command."""
        if message.retain:
            # A retained command would fire again on every resubscribe (MQTT 3.1.1 §3.3.1.3:
            # live deliveries carry retain=0, so retain=1 means a replay from the broker).
            raise PayloadError(
                "retained_command",
                "commands must not be retained: they would replay on every reconnect; "
                "publish without the retain flag, and clear the retained one by publishing "
                "an empty retained message to this topic (it is refused as empty_payload, "
                "which is expected)",
            )

    @staticmethod
    def _refuse_oversized(message: IncomingMessage) -> None:
        """Raise `PayloadError` for an upload too large to be parsed at all."""
        if len(message.payload) > MAX_UPLOAD_PAYLOAD_BYTES:
            raise PayloadError(
                "too_large",
                f"the upload is {len(message.payload):,} bytes, more than the "
                f"{MAX_UPLOAD_PAYLOAD_BYTES:,} an upload may be; a profile's text may be "
                f"{MAX_PROFILE_BYTES:,} bytes",
            )

    def _check_age(self, sent_age_s: float | None, *, urgent: bool) -> None:
        if sent_age_s is None or urgent:
            # An emergency stop is never refused for its age: stopping is always safe.
            return
        limit = self._settings.max_command_age_s
        if sent_age_s > limit:
            raise PayloadError(
                "stale_command",
                f"command is {sent_age_s:.1f} s old (limit {limit:g} s); send it again, and "
                "check the sender's clock if this repeats",
            )
        if sent_age_s < -limit:
            raise PayloadError(
                "timestamp_in_future",
                f"command ts is {-sent_age_s:.1f} s in the future; fix the sender's clock",
            )

    async def _on_set(
        self, treadmill: _Treadmill, field_name: str | None, message: IncomingMessage
    ) -> None:
        route = _Route(
            treadmill_id=treadmill.id,
            reply_topic=None,
            transaction=transaction_of(message.payload) if field_name is None else None,
            response_topic=message.response_topic,
            correlation_data=message.correlation_data,
            request=message.topic,
        )
        try:
            self._refuse_retained(message)
            payload = (
                parse_set(message.payload)
                if field_name is None
                else parse_plain_set(field_name, message.payload)
            )
            command = payload.to_command()
            urgent = isinstance(command, EmergencyStop)
            self._check_age(command_age_s(payload.ts, self._wall_time()), urgent=urgent)
        except PayloadError as error:
            _log.info(
                "mqtt_set_refused",
                treadmill_id=treadmill.id,
                topic=message.topic,
                code=error.code,
                error=error.message,
            )
            await self._refuse(route, error.code, error.message)
            return
        self._submit(treadmill, command, route)

    async def _on_request(
        self, treadmill: _Treadmill, action: str, message: IncomingMessage
    ) -> None:
        route = _Route(
            treadmill_id=treadmill.id,
            reply_topic=self._treadmill_topic(treadmill.id, f"response/{action}"),
            transaction=transaction_of(message.payload),
            response_topic=message.response_topic,
            correlation_data=message.correlation_data,
            request=message.topic,
        )
        try:
            self._refuse_retained(message)
            request = parse_request(action, message.payload, TREADMILL_REQUESTS)
            command = request_command(action, request)
            urgent = isinstance(command, EmergencyStop)
            self._check_age(command_age_s(request.ts, self._wall_time()), urgent=urgent)
        except PayloadError as error:
            _log.info(
                "mqtt_request_refused",
                treadmill_id=treadmill.id,
                topic=message.topic,
                code=error.code,
                error=error.message,
            )
            await self._refuse(route, error.code, error.message)
            return
        if command is None:  # "state": read-only, answered at once
            await self._succeed(route, self._state_payload(treadmill))
            return
        self._submit(treadmill, command, route)

    async def _on_bridge_request(self, action: str, message: IncomingMessage) -> None:
        route = _Route(
            treadmill_id=None,
            reply_topic=self._bridge_topic(f"response/{action}"),
            transaction=transaction_of(message.payload),
            response_topic=message.response_topic,
            correlation_data=message.correlation_data,
            request=message.topic,
        )
        try:
            self._refuse_retained(message)
            if action == "upload_profile":
                self._refuse_oversized(message)
            request = parse_request(action, message.payload, BRIDGE_REQUEST_MODELS)
        except PayloadError as error:
            await self._refuse(route, error.code, error.message)
            return
        data: Any
        match action:
            case "reload_profiles" | "upload_profile" if not isinstance(
                self._catalog, ProfileStore
            ):
                await self._refuse(route, "not_supported", "this daemon's profile library is fixed")
                return
            case "reload_profiles":
                data = (await self.reload_profiles()).to_json_dict()
            case "upload_profile":
                assert isinstance(request, UploadProfileRequest)  # BRIDGE_REQUEST_MODELS
                try:
                    data = await self._upload_profile(request)
                except ProfileUploadRefusedError as error:
                    _log.info(
                        "profile_upload_refused",
                        code=error.code,
                        error=error.message,
                        problems=len(error.problems),
                    )
                    await self._refuse(
                        route,
                        error.code,
                        error.message,
                        problems=[problem.to_json_dict() for problem in error.problems],
                    )
                    return
            case "health_check":
                data = {
                    "healthy": True,
                    "version": self._version,
                    "treadmills": {
                        treadmill.id: treadmill.controller.snapshot().connection
                        for treadmill in self._treadmills.values()
                    },
                }
            case "devices":
                data = self._devices()
            case "profiles":
                data = self._profiles()
            case _:  # "info"
                await self._publish_bridge_info()
                data = {"version": self._version, "treadmills": list(self._treadmills)}
        await self._succeed(route, data)

    # -- the profile library at runtime ---------------------------------------------------

    async def reload_profiles(self) -> ProfileReload:
        """Re-read the profile folders (a file changed, or `bridge/request/reload_profiles`)
        and, if the list changed, republish it and re-announce discovery so Home Assistant's
        profile select offers the new list. A running workout keeps the plan it started with."""
        if not isinstance(self._catalog, ProfileStore):
            raise TypeError("this bridge's profile catalog cannot reload")
        async with self._profiles_lock:
            report = self._catalog.reload()
            await self._profiles_changed()
        return report

    async def _upload_profile(self, request: UploadProfileRequest) -> dict[str, Any]:
        assert isinstance(self._catalog, ProfileStore)  # checked by the caller
        source = request.toml if request.toml is not None else request.profile
        assert source is not None  # exactly one of them, by the payload model
        async with self._profiles_lock:
            upload = self._catalog.upload(source, replace=request.replace)
            await self._profiles_changed()
        return upload.to_json_dict()

    async def _profiles_changed(self) -> None:
        """Republish `bridge/<instance>/profiles` and every treadmill's discovery if the
        profile list (names, titles, totals, ...) differs from what was published."""
        profiles = self._profiles()
        if profiles == self._published_profiles:
            return
        _log.info("mqtt_profiles_republished", profiles=[entry["name"] for entry in profiles])
        await self._publish_profiles(profiles)
        for treadmill in self._treadmills.values():
            await self._announce_discovery(treadmill)

    async def _publish_profiles(self, profiles: list[dict[str, Any]]) -> None:
        self._published_profiles = profiles
        await self._link.publish(
            self._bridge_topic("profiles"), _json(profiles), qos=1, retain=True
        )

    # -- replies --------------------------------------------------------------------------

    async def _succeed(self, route: _Route, data: Any, **extra: Any) -> None:
        """`extra` goes at the top level of the reply, e.g. an emergency stop's `belt`."""
        if route.reply_topic is None and route.response_topic is None:
            return  # a plain `set` succeeded: the state topic shows the result
        payload = {"status": "ok", **extra, "data": data, "transaction": route.transaction}
        await self._reply(route, payload)

    async def _refuse(self, route: _Route, code: str, error: str, **extra: Any) -> None:
        payload: dict[str, Any] = {
            "status": "error",
            **extra,
            "error": error,
            "code": code,
            "transaction": route.transaction,
        }
        if route.reply_topic is None and route.treadmill_id is not None:
            # `set` has no response topic of its own: errors go out as events.
            event = _event_payload({"type": "error", **payload, "request": route.request})
            await self._link.publish(
                self._treadmill_topic(route.treadmill_id, "event"), _json(event), qos=1
            )
        await self._reply(route, payload)

    def _honoured_response_topic(self, route: _Route) -> str | None:
        """A v5 ResponseTopic, unless it points into topics the daemon owns: the daemon may
        write where a member may not, so a member must not aim replies at a state topic."""
        wanted = route.response_topic
        if wanted is None:
            return None
        own_reply_space = [f"{self._bridge_topic('response')}/"]
        if route.treadmill_id is not None:
            own_reply_space.append(f"{self._treadmill_topic(route.treadmill_id, 'response')}/")
        daemon_owned = (f"{self._base}/", f"{self._settings.ha_discovery_prefix}/")
        allowed = not _BAD_TOPIC_CHARS.intersection(wanted) and (
            wanted.startswith(tuple(own_reply_space)) or not wanted.startswith(daemon_owned)
        )
        if not allowed:
            _log.warning(
                "mqtt_response_topic_refused",
                treadmill_id=route.treadmill_id,
                response_topic=wanted,
                request=route.request,
            )
            return None
        return wanted

    async def _reply(self, route: _Route, payload: dict[str, Any]) -> None:
        topic = self._honoured_response_topic(route) or route.reply_topic
        if topic is None:
            return
        await self._link.publish(
            topic, _json(payload), qos=1, correlation_data=route.correlation_data
        )
