"""`treadmilld run` and `treadmilld check-config`."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from treadmilld import __version__
from treadmilld.app.assembly import Assembly, TraceOptions, assemble, clock_for
from treadmilld.app.log_setup import configure_logging
from treadmilld.app.sdnotify import SystemdNotifier
from treadmilld.app.settings import ConfigError, Settings, load_settings, redacted
from treadmilld.app.simulation import check_simulated
from treadmilld.app.supervisor import Supervisor
from treadmilld.ble.trace import TraceLimits

_log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1


def load_for_run(config: Path | None) -> tuple[Settings, Path]:
    """The configuration as `run` takes it, refusing everything `run` refuses before it
    starts. `check-config` calls exactly this, so the two can never disagree."""
    settings, path = load_settings(config)
    if not settings.treadmills:
        raise ConfigError(
            f"{path}: no treadmills configured; add a [[treadmills]] table with an id and an "
            f"address (see examples/config.toml), or try `treadmilld demo`"
        )
    # What building the simulated decks would refuse (a bad simulated table, a replay's
    # missing or malformed trace, the simulator not installed).
    check_simulated(settings)
    return settings, path


def run_command(
    config: Path | None, *, trace: Path | None = None, trace_max_mb: float = 16.0
) -> int:
    settings, path = load_for_run(config)
    trace_options = None
    if trace is not None:
        if trace_max_mb < 0.004:
            raise ConfigError("--trace-max-mb must be at least 0.004 (4 kB)")
        if not trace.parent.resolve().is_dir():
            raise ConfigError(
                f"--trace {trace}: the directory {trace.parent} does not exist; create it or "
                "give another FILE"
            )
        trace_options = TraceOptions(trace, TraceLimits(max_bytes=int(trace_max_mb * 1024 * 1024)))
    configure_logging(
        settings.logging.format,
        settings.logging.level,
        library_level=settings.logging.library_level,
    )
    _log.info(
        "daemon_starting",
        version=__version__,
        config=str(path),
        treadmills=[t.id for t in settings.treadmills],
        broker=settings.mqtt.url,
    )
    try:
        asyncio.run(run_daemon(settings, trace=trace_options))
    except ConfigError:
        raise
    except Exception as error:  # noqa: BLE001 - reported, then exit 1 for systemd
        # A crash ends the process non-zero so systemd restarts it; the belts were stopped
        # by the supervisor before the error got here.
        _log.critical("daemon_crashed", error=repr(error), exc_info=error)
        return EXIT_FAILURE
    return EXIT_OK


async def run_daemon(
    settings: Settings,
    *,
    notifier: SystemdNotifier | None = None,
    on_assembled: Callable[[Assembly, Supervisor], Awaitable[None] | None] | None = None,
    trace: TraceOptions | None = None,
    database_url: str | None = None,
) -> None:
    """Assemble every part from `settings` and supervise it until stopped."""
    clock = clock_for(settings)
    async with assemble(
        settings, clock=clock, version=__version__, trace=trace, database_url=database_url
    ) as assembly:
        history = assembly.history
        supervisor = Supervisor(
            assembly.units,
            assembly.bridge,
            notifier=notifier or SystemdNotifier(),
            shutdown_mode=settings.shutdown_mode,
            services=assembly.services,
            history_tasks=history.tasks() if history is not None else (),
            history_drain=history.drained if history is not None else None,
        )
        if on_assembled is not None:
            result = on_assembled(assembly, supervisor)
            if result is not None:
                await result
        await supervisor.run()


def check_config_command(config: Path | None) -> int:
    settings, path = load_for_run(config)
    shown = {"config_file": str(path), **redacted(settings)}
    sys.stdout.write(json.dumps(shown, indent=2) + "\n")
    return EXIT_OK
