"""A configured treadmill replaying a recorded trace: `simulated = {replay = "FILE"}`
(app/simulation.py, app/assembly.py, docs/capture.md "Replaying a trace")."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

from tests.app.process import run_to_end
from treadmilld import __version__
from treadmilld.app.assembly import assemble
from treadmilld.app.diagnose import DeckChoice, diagnose_deck
from treadmilld.app.settings import ConfigError, load_settings
from treadmilld.app.simulation import check_simulated
from treadmilld.ble.api import LinkConnected
from treadmilld.ble.bleak_io import BleakGattBackend
from treadmilld.ble.client import BleTreadmillLink
from treadmilld.ble.config import LinkSettings, TargetSelector
from treadmilld.ble.trace_recorder import TraceWriter, TracingGattBackend
from treadmilld.runtime.clock import LoopClock, VirtualTimeEventLoop

T = TypeVar("T")
WAIT_S = 60.0

# A deck unlike the simulator's default, so the replay is seen to carry the recording's.
RECORDED_DECK = SimulatedTreadmillConfig(
    name="REC-DECK",
    manufacturer="Recorded Ltd",
    min_speed_kmh=1.0,
    max_speed_kmh=12.0,
    max_incline_pct=10.0,
    data_rate_hz=4.0,
)


def in_virtual_time(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        return runner.run(main())


async def _connected(link: BleTreadmillLink) -> LinkConnected:
    """Run `link` until it connects, then close it; what it learned on connect."""
    events = link.events()
    runner = asyncio.create_task(link.run())
    try:
        async with asyncio.timeout(WAIT_S):
            async for event in events:
                if isinstance(event, LinkConnected):
                    return event
        raise AssertionError("the link stopped before it connected")
    finally:
        await link.close()
        await runner


def record_trace(path: Path) -> LinkConnected:
    """Our own link, traced, connecting once to RECORDED_DECK: the trace a user would send."""

    async def main() -> LinkConnected:
        async with SimulatedFleet(LoopClock()) as fleet:
            deck = await fleet.add(RECORDED_DECK)
            writer = TraceWriter(path, clock=fleet.clock, version=__version__)
            backend = TracingGattBackend(
                BleakGattBackend(
                    fleet.clock,
                    scanner_backend=fleet.scanner_backend,
                    client_backend=fleet.client_backend,
                ),
                writer,
            )
            link = BleTreadmillLink(
                "rec",
                TargetSelector(address=deck.address),
                LinkSettings(),
                clock=fleet.clock,
                gatt_backend=backend,
            )
            try:
                return await _connected(link)
            finally:
                writer.close()

    return in_virtual_time(main)


def write_config(folder: Path, simulated: str) -> Path:
    config = folder / "config.toml"
    config.write_text(f'[[treadmills]]\nid = "tm1"\nsimulated = {simulated}\n', encoding="utf-8")
    return config


def test_the_daemon_drives_a_replayed_trace_as_the_recorded_deck(tmp_path: Path) -> None:
    configs = tmp_path / "etc"
    configs.mkdir()
    recorded = record_trace(configs / "recorded.jsonl")
    # A relative path is the config file's neighbour, wherever the daemon was started.
    settings, _path = load_settings(write_config(configs, '{ replay = "recorded.jsonl" }'))
    assert settings.treadmills[0].simulated == {"replay": str(configs / "recorded.jsonl")}

    async def main() -> tuple[LinkConnected, Any]:
        async with assemble(settings, clock=LoopClock(), version=__version__) as assembly:
            (unit,) = assembly.units
            link: Any = unit.link
            connected = await _connected(link)
            return connected, assembly.replayed("tm1")

    connected, deck = in_virtual_time(main)
    assert deck is not None
    assert connected.capabilities.name == "REC-DECK"
    assert connected.capabilities.device_information.manufacturer == "Recorded Ltd"
    assert connected.capabilities.speed_range == recorded.capabilities.speed_range
    assert connected.capabilities.inclination_range == recorded.capabilities.inclination_range
    assert connected.capabilities.features == recorded.capabilities.features
    assert deck.mismatches == []


def test_two_treadmills_replaying_one_trace_get_their_own_addresses(tmp_path: Path) -> None:
    record_trace(tmp_path / "recorded.jsonl")
    config = tmp_path / "config.toml"
    config.write_text(
        '[[treadmills]]\nid = "tm1"\nsimulated = { replay = "recorded.jsonl" }\n'
        '[[treadmills]]\nid = "tm2"\nsimulated = { replay = "recorded.jsonl" }\n'
        '[[treadmills]]\nid = "tm3"\nsimulated = {}\n',
        encoding="utf-8",
    )
    settings, _path = load_settings(config)

    async def main() -> list[tuple[str, str]]:
        async with assemble(settings, clock=LoopClock(), version=__version__) as assembly:
            seen = []
            for unit in assembly.units:
                link: Any = unit.link
                capabilities = (await _connected(link)).capabilities
                seen.append((capabilities.name or "", capabilities.address))
            return seen

    seen = in_virtual_time(main)
    assert [name for name, _address in seen] == ["REC-DECK", "REC-DECK", "SIM-TM3"]
    assert len({address for _name, address in seen}) == 3


def test_diagnose_of_a_replayed_treadmill_connects_to_the_replay(tmp_path: Path) -> None:
    record_trace(tmp_path / "recorded.jsonl")
    settings, _path = load_settings(write_config(tmp_path, '{ replay = "recorded.jsonl" }'))

    async def main() -> str:
        return await diagnose_deck(
            DeckChoice(treadmill="tm1"),
            settings,
            clock=LoopClock(),
            seconds=1.0,
            trace=tmp_path / "diagnose.jsonl",
            request_control=False,
        )

    assert "name                 REC-DECK" in in_virtual_time(main)


def _config_error(config: Path) -> str:
    settings, _path = load_settings(config)
    with pytest.raises(ConfigError) as raised:
        check_simulated(settings)
    return str(raised.value)


def test_a_missing_trace_names_the_field_the_file_and_the_fix(tmp_path: Path) -> None:
    message = _config_error(write_config(tmp_path, '{ replay = "gone.jsonl" }'))
    assert "treadmills[0].simulated.replay" in message
    assert str(tmp_path / "gone.jsonl") in message
    assert "no such file" in message
    assert "treadmilld diagnose --treadmill ID --trace FILE" in message


def test_a_malformed_trace_names_the_field_the_file_the_line_and_the_fix(
    tmp_path: Path,
) -> None:
    trace = tmp_path / "cut.jsonl"
    header = {"type": "header", "format": "treadmilld-trace", "version": 1}
    header |= {"treadmilld": __version__, "started_at": "2026-01-01T00:00:00+00:00"}
    trace.write_text(json.dumps(header) + '\n{"type": "connect", "t": 0.1, "addr', "utf-8")
    message = _config_error(write_config(tmp_path, '{ replay = "cut.jsonl" }'))
    assert "treadmills[0].simulated.replay" in message
    assert f"{trace}, line 2: not JSON" in message
    assert "deleting that last line" in message


@pytest.mark.parametrize(
    ("table", "named", "says"),
    [
        # A replay is the recorded deck: a deck model's keys make no sense beside it.
        ('{ replay = "r.jsonl", preset = "horizon" }', "simulated.preset", "not a key of a replay"),
        ('{ replay = "r.jsonl", replay_sesion = 1 }', "simulated.replay_sesion", "only replay"),
        ("{ replay_session = 1 }", "simulated.replay_session", 'replay = "FILE"'),
        ('{ replay = "r.jsonl", replay_session = 3 }', "simulated.replay_session", "give 0..0"),
        ('{ replay = "r.jsonl", replay_session = -1 }', "simulated.replay_session", "0 or more"),
        # A misspelt `replay` is not taken for a replay: the deck model refuses the key.
        ('{ replai = "r.jsonl" }', "simulated.replai", "unknown setting"),
    ],
)
def test_a_bad_replay_table_names_the_key_and_the_fix(
    tmp_path: Path, table: str, named: str, says: str
) -> None:
    record_trace(tmp_path / "r.jsonl")
    message = _config_error(write_config(tmp_path, table))
    assert f"treadmills[0].{named}" in message
    assert says in message


async def test_check_config_and_run_refuse_a_missing_trace_alike(tmp_path: Path) -> None:
    config = write_config(tmp_path, '{ replay = "gone.jsonl" }')
    for command in ("check-config", "run"):
        code, process = await run_to_end(command, "--config", str(config))
        assert code == 2, process.output()
        assert "treadmills[0].simulated.replay" in "".join(process.stderr)
