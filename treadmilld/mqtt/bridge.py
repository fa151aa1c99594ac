"""The MQTT bridge: publishes every treadmill's state and turns MQTT messages into commands.

Topic contract: docs/mqtt.md. This module wires the pieces and runs their tasks:

- per treadmill, a *follower* (treadmilld.mqtt.publisher) reading the controller's events,
  never touching the network, and a *worker* (treadmilld.mqtt.dispatch) running that
  treadmill's commands one at a time, emergency stop ahead of the queue;
- per broker connection, a *listener* (treadmilld.mqtt.inbound: routes, checks, queues;
  never waits on the engine) and the *publish loop* (treadmilld.mqtt.publisher).

Several daemons may share one broker and base topic (a gym's Pis): each owns the bridge
topics of its own instance, `<base>/bridge/<instance>/...`, and the topics of its own
treadmills, `<base>/<id>/...` (treadmilld.mqtt.fleet).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from functools import partial

import structlog

from treadmilld.engine.api import ProfileCatalog, ProfileReload, TreadmillController
from treadmilld.mqtt.bridge_requests import BridgeRequests
from treadmilld.mqtt.config import MqttSettings
from treadmilld.mqtt.dispatch import StrapAssignment, TreadmillCommands
from treadmilld.mqtt.fleet import Fleet
from treadmilld.mqtt.inbound import Listener
from treadmilld.mqtt.link import MqttLink
from treadmilld.mqtt.messages import OutgoingMessage
from treadmilld.mqtt.publisher import Publisher
from treadmilld.mqtt.replies import Replies
from treadmilld.mqtt.rider_requests import RiderRequests, WorkoutRecorderSeam
from treadmilld.mqtt.topics import Topics, is_valid_treadmill_id
from treadmilld.riders.api import RiderDesk
from treadmilld.runtime.clock import Clock, LoopClock

_log = structlog.get_logger(__name__)

# How long close() waits for an emergency stop that is still being sent to the treadmill.
ESTOP_FINISH_TIMEOUT_S = 5.0


class BridgeConfigError(ValueError):
    """The bridge cannot run with this configuration; the message says what to change."""


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
        riders: RiderDesk | None = None,
        recorders: Mapping[str, WorkoutRecorderSeam] | None = None,
        straps: Mapping[str, StrapAssignment] | None = None,
    ) -> None:
        """`names`: each treadmill's display name (config `name`), for Home Assistant's
        device; the id where none is given. `riders` (the rider service) enables the rider
        requests and starts for riders; `recorders`, each treadmill's workout recorder, are
        told whose workout starts next; `straps`, each treadmill's strap switch, which strap a
        started workout hears."""
        for treadmill_id in controllers:
            if not is_valid_treadmill_id(treadmill_id):
                raise BridgeConfigError(
                    f"treadmill id {treadmill_id!r} cannot be an MQTT topic level; use a slug "
                    "like 'tm01' (no '/', '+', '#', spaces, and not 'bridge' or 'riders')"
                )
        self._settings = settings
        self._topics = topics = Topics.of(settings)
        controllers = dict(controllers)  # its own copy: the treadmills it serves are fixed
        offline = OutgoingMessage(topics.bridge("state"), "offline", qos=1, retain=True)
        self._link = MqttLink(settings, will=offline, goodbye=self._goodbye)
        self._subscribed = asyncio.Event()
        replies = Replies(self._link, topics)
        self._publisher = Publisher(
            self._link,
            topics,
            settings,
            catalog,
            controllers,
            names={
                treadmill_id: (names or {}).get(treadmill_id) or treadmill_id
                for treadmill_id in controllers
            },
            version=version,
            clock=clock or LoopClock(),
            wall_time=wall_time,
            selected_profile=lambda treadmill_id: self._commands[treadmill_id].selected_profile,
            offline=offline,
        )
        self._riders = (
            None
            if riders is None
            else RiderRequests(
                riders,
                self._link,
                topics,
                replies,
                recorders=recorders or {},
                ha_discovery=settings.ha_discovery,
                version=version,
            )
        )
        self._controllers = controllers
        self._commands = {
            treadmill_id: TreadmillCommands(
                treadmill_id,
                controller,
                catalog=catalog,
                replies=replies,
                profiles_topic=topics.bridge("profiles"),
                on_selection=partial(self._publisher.state_changed, treadmill_id),
                riders=self._riders,
                strap=(straps or {}).get(treadmill_id),
            )
            for treadmill_id, controller in controllers.items()
        }
        self._bridge_requests = BridgeRequests(
            topics,
            catalog,
            self._publisher,
            replies,
            version=version,
            controllers=controllers,
            riders=self._riders,
        )
        self._listener = Listener(
            self._link,
            topics,
            self._commands,
            publisher=self._publisher,
            fleet=Fleet(topics, controllers, self._link, replies),
            bridge_requests=self._bridge_requests,
            replies=replies,
            max_command_age_s=settings.max_command_age_s,
            wall_time=wall_time,
        )

    @property
    def connected(self) -> bool:
        """Whether the bridge is connected to its broker right now."""
        return self._link.online

    async def wait_ready(self) -> None:
        """Return once connected, announced and subscribed (e.g. before sd_notify READY)."""
        await self._subscribed.wait()

    async def reload_profiles(self) -> ProfileReload:
        """Re-read the profile folders (a file changed, or `bridge/request/reload_profiles`)
        and, if the list changed, republish it and re-announce discovery so Home Assistant's
        profile select offers the new list. A running workout keeps the plan it started with."""
        return await self._bridge_requests.reload_profiles()

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        background: list[asyncio.Task[None]] = []
        async with asyncio.TaskGroup() as group:
            for treadmill_id, commands in self._commands.items():
                background.append(
                    group.create_task(
                        self._publisher.follow(treadmill_id), name=f"mqtt-follow-{treadmill_id}"
                    )
                )
                background.append(
                    group.create_task(commands.work(), name=f"mqtt-work-{treadmill_id}")
                )
                if self._riders is not None:
                    background.append(
                        group.create_task(
                            self._riders.follow(treadmill_id, self._controllers[treadmill_id]),
                            name=f"mqtt-riders-follow-{treadmill_id}",
                        )
                    )
            if self._riders is not None:
                background.append(group.create_task(self._riders.work(), name="mqtt-riders"))
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
        under_way = [
            task for commands in self._commands.values() for task in commands.emergency_stops
        ]
        if under_way:
            # Let an emergency stop that is under way finish (without swallowing our own
            # cancellation, which `await task` inside a suppress would).
            await asyncio.wait(under_way, timeout=ESTOP_FINISH_TIMEOUT_S)

    def _goodbye(self) -> list[OutgoingMessage]:
        return self._publisher.goodbye()

    async def _session(self) -> None:
        """One broker connection: announce, subscribe, then listen and publish."""
        self._publisher.new_connection()
        try:
            await self._publisher.publish_bridge_info()
            await self._link.subscribe(
                self._topics.subscriptions(self._commands, ha_discovery=self._settings.ha_discovery)
            )
            await self._publisher.publish_pass()  # availability, discovery and state first
            # `online` last: a client may send a command the moment it sees it, and that
            # command must find us subscribed.
            await self._publisher.publish_online()
            if self._riders is not None:
                self._riders.connected()
            self._subscribed.set()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._listener.listen(), name="mqtt-listen")
                group.create_task(self._publisher.publish_loop(), name="mqtt-publish")
        finally:
            self._subscribed.clear()
            for commands in self._commands.values():
                commands.drop_pending()
