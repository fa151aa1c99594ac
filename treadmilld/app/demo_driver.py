"""What `treadmilld demo` does once the daemon is up: wait for the simulated treadmills to
connect, start the profile by publishing a real MQTT request as a dashboard would, show the
workout live (a redrawn view on a terminal, plain lines in a pipe), then the summary.

`treadmilld.app.demo` sets up the broker and the daemon and hands this driver the sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from typing import TextIO

from treadmilld.app.assembly import Assembly
from treadmilld.app.supervisor import Supervisor
from treadmilld.engine.api import (
    TERMINAL_PHASES,
    Direction,
    Phase,
    SegmentStarted,
    SessionEvent,
    SessionSnapshot,
    TreadmillController,
    TurnCountdown,
    TurnNow,
    WorkoutAborted,
    WorkoutFinished,
    WorkoutStopped,
)
from treadmilld.mqtt.config import MqttSettings
from treadmilld.mqtt.link import MqttError, MqttLink
from treadmilld.mqtt.messages import IncomingMessage, OutgoingMessage
from treadmilld.runtime.clock import Clock, LoopClock
from treadmilld.runtime.waiting import wait_all, wait_any, wait_for_on_clock

# How long the demo waits for the simulated treadmills to connect before giving up.
CONNECT_WAIT_S = 60.0
# How long the demo waits for the bridge's replies to its `request/start`.
REPLY_WAIT_S = 20.0
# The live view is redrawn on every workout event it follows (segments, turns, the end) and at
# least this often in between, so progress and the countdown move (real time: a person watches).
REDRAW_EVERY_S = 0.25


class DemoFailedError(Exception):
    """The demo could not run its profile; the message says why and what to try."""


class DemoDriver:
    """Starts the profile over MQTT, draws the live view, and stops the daemon at the end."""

    def __init__(
        self,
        profile: str,
        mqtt: MqttSettings,
        out: TextIO,
        *,
        speedup: float,
        body_weight_kg: float,
        keep_running: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.speedup = speedup
        self.body_weight_kg = body_weight_kg
        self.keep_running = keep_running
        # Real time (a `LoopClock`), not the engine's sped-up clock: connecting, the broker's
        # replies and the summary's wall time are in seconds a person waits.
        self.clock: Clock = clock if clock is not None else LoopClock()
        self.started = self.clock.now()
        self.profile = profile
        self.mqtt = mqtt
        self.out = out
        self.tty = out.isatty()
        self.controllers: dict[str, TreadmillController] = {}
        self.supervisor: Supervisor | None = None
        self.final: dict[str, SessionSnapshot] = {}
        self.failure: str | None = None
        self._lines_drawn = 0
        self._last_plain: dict[str, tuple[object, ...]] = {}

    def attach(self, assembly: Assembly, supervisor: Supervisor) -> None:
        self.controllers = {unit.treadmill_id: unit.session for unit in assembly.units}
        self.supervisor = supervisor
        supervisor.on_ready = self.drive

    def all_finished(self) -> bool:
        return bool(self.final) and all(s.phase is Phase.FINISHED for s in self.final.values())

    async def drive(self) -> None:
        if self.supervisor is None:
            raise RuntimeError("DemoDriver.attach() must run before drive()")
        events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        # Followed from before the start, so the first segment's event is not missed.
        followers = [
            asyncio.create_task(self._follow(controller, events), name=f"demo-follow-{tid}")
            for tid, controller in self.controllers.items()
        ]
        await asyncio.sleep(0)  # each follower subscribes on its first step
        try:
            await self._wait_connected()
            await self._start_over_mqtt()
            await self._watch(events)
        except DemoFailedError as error:
            self.failure = str(error)
        else:
            self.out.write(self.summary(self.clock.now() - self.started, self.speedup))
        finally:
            await self._stop_following(followers)
        if self.failure is None and self.keep_running:
            self.out.write(
                f"\nStill running (--keep-running): connect a dashboard to {self.mqtt.url}, "
                f"base topic {self.mqtt.base_topic}; Ctrl-C stops everything.\n"
            )
            self.out.flush()
            return
        self.supervisor.request_stop("demo finished")

    async def _stop_following(self, followers: list[asyncio.Task[None]]) -> None:
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)

    async def _wait_connected(self) -> None:
        waiters = [
            asyncio.create_task(_connected(controller), name=f"demo-connect-{tid}")
            for tid, controller in self.controllers.items()
        ]
        try:
            await wait_all(waiters, seconds=CONNECT_WAIT_S, clock=self.clock)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        states = {tid: c.snapshot().connection for tid, c in self.controllers.items()}
        if all(state == "connected" for state in states.values()):
            return
        raise DemoFailedError(
            f"the simulated treadmills did not connect within {CONNECT_WAIT_S:g} s "
            f"({states}); run again with --verbose to see the link's log"
        )

    async def _start_over_mqtt(self) -> None:
        """Publish `request/start` for every treadmill, as a dashboard would, and wait for the
        bridge's replies."""
        base = self.mqtt.base_topic
        settings = self.mqtt.model_copy(update={"client_id": self.mqtt.client_id + "-dashboard"})
        link = MqttLink(
            settings, will=OutgoingMessage(f"{base}/demo/dashboard", "gone", qos=0, retain=False)
        )
        pending = set(self.controllers)
        problems: list[str] = []
        answered = asyncio.Event()

        async def session() -> None:
            await link.subscribe([f"{base}/{tid}/response/start" for tid in self.controllers])
            for tid in self.controllers:
                request = {
                    "profile": self.profile,
                    "body_weight_kg": self.body_weight_kg,
                    "transaction": f"demo-{tid}",
                }
                await link.publish_request(f"{base}/{tid}/request/start", json.dumps(request))
            async for message in link.messages():
                self._on_reply(message, pending, problems)
                if not pending or problems:
                    answered.set()
                    break

        runner = asyncio.create_task(link.run(session), name="demo-dashboard")
        try:
            await wait_any(events=(answered,), seconds=REPLY_WAIT_S, clock=self.clock)
            if not answered.is_set():
                problems.append(
                    f"no reply to request/start from {sorted(pending)} within {REPLY_WAIT_S:g} s"
                )
        finally:
            await link.close()
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, MqttError):
                await runner
        if problems:
            raise DemoFailedError("; ".join(problems))

    def _on_reply(self, message: IncomingMessage, pending: set[str], problems: list[str]) -> None:
        treadmill_id = message.topic.split("/")[-3]
        try:
            reply = json.loads(message.payload)
        except json.JSONDecodeError:
            problems.append(f"{treadmill_id}: unreadable reply {message.payload!r}")
            return
        pending.discard(treadmill_id)
        if reply.get("status") != "ok":
            problems.append(
                f"{treadmill_id} refused the start: {reply.get('error')} ({reply.get('code')})"
            )

    async def _watch(self, events: asyncio.Queue[SessionEvent]) -> None:
        while True:
            while not events.empty():
                self._note(events.get_nowait())
            snapshots = {tid: c.snapshot() for tid, c in self.controllers.items()}
            self._draw(snapshots)
            if all(s.phase in TERMINAL_PHASES for s in snapshots.values()):
                self.final = snapshots
                return
            with contextlib.suppress(TimeoutError):
                # Between events the live view is redrawn at this pace (progress, countdown).
                self._note(
                    await wait_for_on_clock(
                        events.get(), REDRAW_EVERY_S, self.clock, on_late_result=self._note
                    )
                )

    @staticmethod
    async def _follow(controller: TreadmillController, queue: asyncio.Queue[SessionEvent]) -> None:
        async for event in controller.events():
            if isinstance(
                event,
                SegmentStarted
                | TurnCountdown
                | TurnNow
                | WorkoutFinished
                | WorkoutStopped
                | WorkoutAborted,
            ):
                await queue.put(event)

    def _note(self, event: SessionEvent) -> None:
        if self.tty:
            return  # the live lines show the countdown already
        if isinstance(event, SegmentStarted):
            # From the event, not from polling: a segment shorter than a poll (a high
            # --speedup) still gets its line.
            controller = self.controllers.get(event.treadmill_id)
            count = controller.snapshot().segment_count if controller is not None else None
            self.out.write(render_segment(event, count) + "\n")
        elif isinstance(event, TurnNow):
            self.out.write(f"{event.treadmill_id}  turn now: walk {event.to_direction.value}\n")
        elif isinstance(event, WorkoutAborted):
            self.out.write(f"{event.treadmill_id}  aborted: {event.reason.value} {event.detail}\n")
        self.out.flush()

    def _draw(self, snapshots: dict[str, SessionSnapshot]) -> None:
        if self.tty:
            # A wrapped line would break the cursor-up redraw: cut lines to the terminal.
            width = shutil.get_terminal_size().columns - 1
            lines = [render_line(s)[:width] for s in snapshots.values()]
            if self._lines_drawn:
                self.out.write(f"\x1b[{self._lines_drawn}F")
            for line in lines:
                self.out.write("\x1b[2K" + line + "\n")
            self._lines_drawn = len(lines)
            self.out.flush()
            return
        # Not a terminal (CI, a pipe): one line whenever something a person would notice
        # changes (phase, direction, countdown, every tenth of the profile), never a redraw.
        # Each segment's start has a line of its own (`_note`).
        for treadmill_id, snapshot in snapshots.items():
            key = (
                snapshot.phase,
                snapshot.direction,
                snapshot.turn_countdown_s,
                int(_progress(snapshot) * 10),
            )
            if self._last_plain.get(treadmill_id) != key:
                self._last_plain[treadmill_id] = key
                self.out.write(render_line(snapshot) + "\n")
        self.out.flush()

    def summary(self, wall_s: float, speedup: float) -> str:
        lines = ["", "Summary"]
        for snapshot in self.final.values():
            result = snapshot.phase.value
            if snapshot.abort_reason is not None:
                result += f" ({snapshot.abort_reason.value})"
            lines.append(
                f"  {snapshot.treadmill_id}: {snapshot.profile_title or snapshot.profile or '-'}"
                f" {result}; {mm_ss(snapshot.elapsed_s)} walked, backward "
                f"{mm_ss(snapshot.backward_s)}; forward {snapshot.distance_forward_m:.0f} m, "
                f"backward {snapshot.distance_backward_m:.0f} m; "
                f"{snapshot.calories_kcal:.1f} kcal at {snapshot.body_weight_kg:g} kg"
            )
        lines.append(f"  wall time {wall_s:.1f} s at {speedup:g}x")
        return "\n".join(lines) + "\n"


async def _connected(controller: TreadmillController) -> None:
    """Return once the session says its treadmill is connected, judged again on each of its
    events."""
    events = controller.events()  # subscribed before the first look: no change is missed
    if controller.snapshot().connection == "connected":
        return
    async for _ in events:
        if controller.snapshot().connection == "connected":
            return


def render_line(snapshot: SessionSnapshot) -> str:
    """One treadmill's live line: progress, phase, direction, measured values, countdown,
    distances, calories and, when there is one, the heart rate and where it is in the zone."""
    progress = _progress(snapshot)
    bar_width = 20
    filled = round(progress * bar_width)
    bar = "#" * filled + "." * (bar_width - filled)
    direction = snapshot.direction.value if snapshot.direction is not None else "-"
    speed = _number(snapshot.speed_kmh, "km/h")
    incline = _number(snapshot.incline_pct, "%")
    segment = (
        f"seg {snapshot.segment_index + 1}/{snapshot.segment_count}"
        if snapshot.segment_index is not None and snapshot.segment_count
        else "seg -"
    )
    countdown = (
        f"  turn in {snapshot.turn_countdown_s}" if snapshot.turn_countdown_s is not None else ""
    )
    heart = ""
    if snapshot.heart_rate_bpm is not None:
        zone = f" {snapshot.heart_rate_zone.value} zone" if snapshot.heart_rate_zone else ""
        heart = f"  HR {snapshot.heart_rate_bpm:.0f}{zone}"
    return (
        f"{snapshot.treadmill_id} [{bar}] {progress * 100:3.0f}% {mm_ss(snapshot.elapsed_s)} "
        f"{snapshot.phase.value:<9} {direction:<8} {speed} {incline} {segment} "
        f"fwd {snapshot.distance_forward_m:5.0f} m  back {snapshot.distance_backward_m:4.0f} m  "
        f"{snapshot.calories_kcal:5.1f} kcal{heart}{countdown}"
    )


def render_segment(event: SegmentStarted, segment_count: int | None) -> str:
    """A segment's start, for piped output: `sim01  segment 3/5: backward 0:15 at 2 km/h`."""
    of = f"/{segment_count}" if segment_count else ""
    what = (
        f"{event.direction.value} {mm_ss(event.duration_s)} at {event.speed_kmh:g} km/h"
        if event.direction is not Direction.REST
        else f"belt paused {mm_ss(event.duration_s)}"
    )
    incline = f", {event.incline_pct:g} %" if event.incline_pct else ""
    cue = f" ({event.cue})" if event.cue else ""
    return f"{event.treadmill_id}  segment {event.index + 1}{of}: {what}{incline}{cue}"


def _progress(snapshot: SessionSnapshot) -> float:
    return (snapshot.progress_pct or 0.0) / 100.0


def _number(value: float | None, unit: str) -> str:
    return f"{value:4.1f} {unit}" if value is not None else f"   - {unit}"


def mm_ss(seconds: float) -> str:
    whole = max(0, round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"
