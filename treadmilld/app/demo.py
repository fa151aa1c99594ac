"""`treadmilld demo`: the whole system on one machine, no hardware, one command.

It runs the same supervisor as `treadmilld run` (simulated treadmills over the real bleak code
path, the engine, the MQTT bridge) against an embedded broker, starts the profile by publishing
a real MQTT request, as a dashboard would, and shows the workout live in the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TextIO

import structlog
from pydantic import TypeAdapter, ValidationError

from treadmilld.app.assembly import Assembly
from treadmilld.app.config_problems import explain_problem
from treadmilld.app.log_setup import LogFormat, LogLevel, configure_logging
from treadmilld.app.run import run_daemon
from treadmilld.app.sdnotify import SystemdNotifier
from treadmilld.app.settings import (
    ConfigError,
    LoggingSettings,
    Settings,
    TreadmillSettings,
)
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
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.profile import ProfileError, load_profile
from treadmilld.mqtt.config import MqttSettings
from treadmilld.mqtt.link import MqttError, MqttLink
from treadmilld.mqtt.messages import IncomingMessage, OutgoingMessage

_log = structlog.get_logger(__name__)

DEFAULT_PROFILE = "p1-starter-a"
# The demo should take about a minute of wall time whatever the profile's length.
TARGET_DEMO_S = 60.0
MAX_TREADMILLS = 8
# How long the demo waits for the simulated treadmills to connect before giving up.
CONNECT_WAIT_S = 60.0
BROKER_MISSING_HINT = (
    "the embedded MQTT broker is not installed: it is the treadmilld-broker package; in a "
    "clone of the repository run `uv sync` (it is a workspace member), otherwise "
    "`pip install 'treadmilld[demo]'`; or use a broker you have with --broker mqtt://HOST:1883"
)


@dataclass(frozen=True)
class DemoOptions:
    treadmills: int = 1
    profile: str | None = None
    speedup: float | None = None
    broker: str | None = None
    broker_port: int | None = None
    base_topic: str = "treadmilld"
    body_weight_kg: float = 70.0
    keep_running: bool = False
    verbose: bool = False


class DemoFailedError(Exception):
    """The demo could not run its profile; the message says why and what to try."""


def _setting_problems(flag: str, name: str, value: object) -> list[str]:
    """`value` checked by the rules of the setting `name` (a field of `Settings`)."""
    field = Settings.model_fields[name]
    annotated: Any = Annotated  # built at run time from the field: typing cannot follow
    adapter: TypeAdapter[Any] = TypeAdapter(annotated[field.annotation, *field.metadata])
    try:
        adapter.validate_python(value)
    except ValidationError as error:
        return [f"  - {flag}: {explain_problem(p)}" for p in error.errors(include_url=False)]
    return []


def check_options(options: DemoOptions) -> None:
    """Refuse bad flags before anything starts, by the same rules as the configuration they
    stand for (`--weight` is `body_weight_kg`, `--port` and `--base-topic` are `mqtt.port`
    and `mqtt.base_topic`): a `ConfigError` listing every problem, never a traceback."""
    problems: list[str] = []
    if not 1 <= options.treadmills <= MAX_TREADMILLS:
        problems.append(
            f"  - --treadmills: must be between 1 and {MAX_TREADMILLS} (got {options.treadmills})"
        )
    if options.broker is not None and options.broker_port is not None:
        problems.append("  - --port: is for the embedded broker; leave it out with --broker")
    problems += _setting_problems("--weight", "body_weight_kg", options.body_weight_kg)
    if options.speedup is not None:
        problems += _setting_problems("--speedup", "clock_speedup", options.speedup)
    mqtt: dict[str, object] = {"base_topic": options.base_topic, "instance": "demo"}
    if options.broker_port is not None:
        mqtt["port"] = options.broker_port
    try:
        MqttSettings.model_validate(mqtt)
    except ValidationError as error:
        flags = {"port": "--port", "base_topic": "--base-topic"}
        problems += [
            f"  - {flags.get(str(p['loc'][0]), str(p['loc'][0]))}: {explain_problem(p)}"
            for p in error.errors(include_url=False)
        ]
    if problems:
        raise ConfigError(
            f"{len(problems)} problem(s) in the demo options:\n" + "\n".join(problems)
        )


def demo_command(options: DemoOptions, out: TextIO | None = None) -> int:
    stream = sys.stdout if out is None else out
    check_options(options)
    profile = options.profile or DEFAULT_PROFILE
    profiles_dir: Path | None = None
    if profile.endswith(".toml"):
        # A profile file of one's own: its directory joins the built-in library.
        path = Path(profile)
        try:
            profile = load_profile(path).name
        except (ProfileError, OSError) as error:
            raise ConfigError(f"--profile {path}: {error}") from None
        profiles_dir = path.parent
    library = ProfileLibrary([profiles_dir] if profiles_dir is not None else [])
    known = {summary.name: summary for summary in library.summaries()}
    if profile not in known:
        raise ConfigError(
            f"no built-in profile {profile!r}; `treadmilld profiles list` shows: "
            + ", ".join(sorted(known))
        )
    total_s = known[profile].total_s
    speedup = options.speedup or max(1.0, round(total_s / TARGET_DEMO_S, 1))
    configure_logging(
        LogFormat.AUTO,
        LogLevel.INFO if options.verbose else LogLevel.WARNING,
        library_level=LogLevel.WARNING,
    )
    try:
        return asyncio.run(
            _demo(
                options,
                profile=profile,
                profiles_dir=profiles_dir,
                speedup=speedup,
                total_s=total_s,
                out=stream,
            )
        )
    except DemoFailedError as error:
        stream.write(f"\ntreadmilld demo: {error}\n")
        return 1


async def _demo(
    options: DemoOptions,
    *,
    profile: str,
    profiles_dir: Path | None,
    speedup: float,
    total_s: float,
    out: TextIO,
) -> int:
    async with contextlib.AsyncExitStack() as stack:
        client_id = f"treadmilld-demo-{os.getpid()}"
        if options.broker is not None:
            try:
                mqtt = MqttSettings.from_url(
                    options.broker, client_id=client_id, base_topic=options.base_topic
                )
            except ValueError as error:
                raise ConfigError(f"--broker: {error}") from None
            broker_text = mqtt.url
        else:
            try:
                # Lazily: the broker is its own distribution (the demo extra), never in the
                # daemon's wheel, and `--broker` needs none of it.
                from treadmilld_broker import (  # noqa: PLC0415
                    BrokerPortInUseError,
                    BrokerStartError,
                    BrokerUnavailableError,
                    EmbeddedBroker,
                )
            except ImportError as error:
                raise DemoFailedError(BROKER_MISSING_HINT) from error
            port = options.broker_port
            try:
                broker = await stack.enter_async_context(EmbeddedBroker(port=port))
            except BrokerPortInUseError as error:
                raise ConfigError(
                    f"--port {port}: {error}; leave --port out for a free port, or use that "
                    f"broker with --broker mqtt://127.0.0.1:{port}"
                ) from None
            except (BrokerUnavailableError, BrokerStartError) as error:
                raise DemoFailedError(f"the embedded MQTT broker did not start: {error}") from None
            mqtt = MqttSettings(
                host=broker.host,
                port=broker.port,
                client_id=client_id,
                base_topic=options.base_topic,
            )
            broker_text = f"{broker.url} (embedded {broker.kind})"
        settings = Settings(
            treadmills=[
                TreadmillSettings(
                    id=f"sim{index:02d}",
                    name=f"Simulated treadmill {index}",
                    simulated={"name": f"SIM-TM{index:02d}"},
                )
                for index in range(1, options.treadmills + 1)
            ],
            mqtt=mqtt,
            logging=LoggingSettings(),
            clock_speedup=speedup,
            body_weight_kg=options.body_weight_kg,
            profiles_dir=profiles_dir,
        )
        out.write(
            f"treadmilld demo: {options.treadmills} simulated treadmill(s), profile {profile} "
            f"({_clock(total_s)} of profile time at {speedup:g}x, about "
            f"{_clock(total_s / speedup)} here)\nMQTT broker: {broker_text}, base topic "
            f"{mqtt.base_topic}\n\n"
        )
        driver = DemoDriver(options, profile, mqtt, out, speedup=speedup)

        def attach(assembly: Assembly, supervisor: Supervisor) -> None:
            driver.attach(assembly, supervisor)

        # No systemd here, whatever the environment says.
        await run_daemon(settings, notifier=SystemdNotifier({}), on_assembled=attach)
        if driver.failure is not None:
            raise DemoFailedError(driver.failure)
        return 0 if driver.all_finished() else 1


class DemoDriver:
    """Starts the profile over MQTT, draws the live view, and stops the daemon at the end."""

    def __init__(
        self,
        options: DemoOptions,
        profile: str,
        mqtt: MqttSettings,
        out: TextIO,
        *,
        speedup: float,
    ) -> None:
        self.options = options
        self.speedup = speedup
        self.started = time.monotonic()
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
            self.out.write(self.summary(time.monotonic() - self.started, self.speedup))
        finally:
            await self._stop_following(followers)
        if self.failure is None and self.options.keep_running:
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
        deadline = time.monotonic() + CONNECT_WAIT_S
        while time.monotonic() < deadline:
            states = {tid: c.snapshot().connection for tid, c in self.controllers.items()}
            if all(state == "connected" for state in states.values()):
                return
            await asyncio.sleep(0.05)
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
                    "body_weight_kg": self.options.body_weight_kg,
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
            async with asyncio.timeout(20):
                await answered.wait()
        except TimeoutError:
            problems.append(f"no reply to request/start from {sorted(pending)} within 20 s")
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
                async with asyncio.timeout(0.25):
                    self._note(await events.get())

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
                f" {result}; {_clock(snapshot.elapsed_s)} walked, backward "
                f"{_clock(snapshot.backward_s)}; forward {snapshot.distance_forward_m:.0f} m, "
                f"backward {snapshot.distance_backward_m:.0f} m; "
                f"{snapshot.calories_kcal:.1f} kcal at {snapshot.body_weight_kg:g} kg"
            )
        lines.append(f"  wall time {wall_s:.1f} s at {speedup:g}x")
        return "\n".join(lines) + "\n"


def render_line(snapshot: SessionSnapshot) -> str:
    """One treadmill's live line: progress, phase, direction, measured values, countdown,
    distances and calories."""
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
    return (
        f"{snapshot.treadmill_id} [{bar}] {progress * 100:3.0f}% {_clock(snapshot.elapsed_s)} "
        f"{snapshot.phase.value:<9} {direction:<8} {speed} {incline} {segment} "
        f"fwd {snapshot.distance_forward_m:5.0f} m  back {snapshot.distance_backward_m:4.0f} m  "
        f"{snapshot.calories_kcal:5.1f} kcal{countdown}"
    )


def render_segment(event: SegmentStarted, segment_count: int | None) -> str:
    """A segment's start, for piped output: `sim01  segment 3/5: backward 0:15 at 2 km/h`."""
    of = f"/{segment_count}" if segment_count else ""
    what = (
        f"{event.direction.value} {_clock(event.duration_s)} at {event.speed_kmh:g} km/h"
        if event.direction is not Direction.REST
        else f"belt paused {_clock(event.duration_s)}"
    )
    incline = f", {event.incline_pct:g} %" if event.incline_pct else ""
    cue = f" ({event.cue})" if event.cue else ""
    return f"{event.treadmill_id}  segment {event.index + 1}{of}: {what}{incline}{cue}"


def _progress(snapshot: SessionSnapshot) -> float:
    return (snapshot.progress_pct or 0.0) / 100.0


def _number(value: float | None, unit: str) -> str:
    return f"{value:4.1f} {unit}" if value is not None else f"   - {unit}"


def _clock(seconds: float) -> str:
    whole = max(0, round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"
