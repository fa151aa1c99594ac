"""`treadmilld demo`: the whole system on one machine, no hardware, one command.

It runs the same supervisor as `treadmilld run` (simulated treadmills over the real bleak code
path, the engine, the MQTT bridge) against an embedded broker, starts the profile by publishing
a real MQTT request, as a dashboard would, and shows the workout live in the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TextIO

import structlog
from pydantic import TypeAdapter, ValidationError

from treadmilld.app.assembly import Assembly
from treadmilld.app.config_problems import explain_problem
from treadmilld.app.demo_driver import DemoDriver, DemoFailedError, mm_ss
from treadmilld.app.history_service import HistoryService
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
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.profile import ProfileError, load_profile
from treadmilld.mqtt.config import MqttSettings
from treadmilld.store.config import DATABASE_FILE_NAME

_log = structlog.get_logger(__name__)

DEFAULT_PROFILE = "p1-starter-a"
# The demo should take about a minute of wall time whatever the profile's length.
TARGET_DEMO_S = 60.0
MAX_TREADMILLS = 8
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
            f"({mm_ss(total_s)} of profile time at {speedup:g}x, about "
            f"{mm_ss(total_s / speedup)} here)\nMQTT broker: {broker_text}, base topic "
            f"{mqtt.base_topic}\n\n"
        )
        driver = DemoDriver(
            profile,
            mqtt,
            out,
            speedup=speedup,
            body_weight_kg=options.body_weight_kg,
            keep_running=options.keep_running,
        )

        histories: list[HistoryService] = []

        def attach(assembly: Assembly, supervisor: Supervisor) -> None:
            driver.attach(assembly, supervisor)
            if assembly.history is not None:
                histories.append(assembly.history)

        # The history goes to `[database] url` when set (TREADMILLD_DATABASE__URL), else to a
        # database of the demo's own in the temporary folder, left there to export from.
        database = None
        if settings.database.url is None:
            folder = Path(tempfile.mkdtemp(prefix="treadmilld-demo-"))
            database = f"sqlite:///{folder / DATABASE_FILE_NAME}"
        # No systemd here, whatever the environment says.
        await run_daemon(
            settings, notifier=SystemdNotifier({}), on_assembled=attach, database_url=database
        )
        recorded = [
            r.last_workout_id
            for history in histories
            for r in history.recorders.values()
            if r.last_workout_id is not None
        ]
        if driver.failure is not None:
            raise DemoFailedError(driver.failure)
        out.write(_history_line(recorded, database))
        return 0 if driver.all_finished() else 1


def _history_line(recorded: list[str], database: str | None) -> str:
    """One line: where the workouts went and how to export one."""
    if not recorded:
        return "history: no workout was recorded\n"
    env = f"TREADMILLD_DATABASE__URL={database} " if database is not None else ""
    ids = ", ".join(recorded)
    return (
        f"history: workout {ids} recorded; export it with "
        f"`{env}treadmilld history export {recorded[0]} --format fit`\n"
    )
