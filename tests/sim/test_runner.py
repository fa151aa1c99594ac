"""The standalone runner: live state lines, console commands typed by an operator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from treadmilld_sim import (
    RunningState,
    SimulatedFleet,
    SimulatedTreadmill,
    SimulatedTreadmillConfig,
)
from treadmilld_sim.runner import (
    apply_console_command,
    build_parser,
    configs_from_arguments,
    describe,
    main,
)

from treadmilld.ftms import ResultCode

from .session import TEST_TIMEOUT_S
from .test_replay import UREVO_E1L_KINOMAP


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    # main() configures logging for the process, as a CLI does; undo it for later tests.
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_runner_starts_n_treadmills_and_prints_their_state(
    capsys: pytest.CaptureFixture[str],
) -> None:
    exit_code = main(["--count", "3", "--speedup", "20", "--interval", "0.1", "--duration", "0.3"])
    lines = capsys.readouterr().out.splitlines()
    assert exit_code == 0
    for name in ("SIM-TM01", "SIM-TM02", "SIM-TM03"):
        assert any(name in line and "advertising" in line and "idle" in line for line in lines)


@pytest.mark.parametrize(
    "argv", [["--count", "0"], ["--speedup", "0"], ["--count", "2", "--transport", "usb:0"]]
)
def test_runner_refuses_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err


async def test_console_commands_act_on_the_numbered_treadmill(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        second = await fleet.add()
        treadmills = fleet.treadmills
        assert "done" in await apply_console_command("2 speed 4.2", treadmills)
        assert "done" in await apply_console_command("2 start", treadmills)
        target_while_running = second.model.target_speed_kmh
        assert "ignored" in await apply_console_command("1 stop", treadmills)
        assert "done" in await apply_console_command("2 key-out", treadmills)
        assert "usage" in await apply_console_command("9 start", treadmills)
        assert "usage" in await apply_console_command("1 fly", treadmills)
    assert target_while_running == 4.2
    assert second.model.running_state is RunningState.STOPPED
    assert not second.model.safety_key_in
    assert treadmill.model.running_state is RunningState.IDLE
    assert "KEY-OUT" in describe(2, second)


def test_an_unusable_transport_is_a_clear_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Only the failure path: serving over a real controller needs a radio (not tested in CI).
    exit_code = main(["--transport", "serial:/dev/treadmilld-no-such-port", "--duration", "0.1"])
    assert exit_code == 1
    assert "could not open Bluetooth transport" in capsys.readouterr().err


def test_deck_behaviour_flags_reach_every_treadmill() -> None:
    args = build_parser().parse_args(
        [
            "--count",
            "2",
            "--no-report-console-status",
            "--deceleration-kmh-per-s",
            "0.25",
            "--resume-at-last-target",
            "--initial-incline-pct",
            "12",
            "--incline-rate-pct-per-s",
            "0.5",
            "--ignores-speed-commands",
            "--starts-on-connect",
            "--starts-on-connect-kmh",
            "1.5",
            "--refuses-stop",
            "operation-failed",
            "--refuses-pause",
            "5",
            "--drops-link-on-stop",
            "--response-delay-s",
            "2.5",
            "--echo-target-while-decelerating",
        ]
    )
    configs = configs_from_arguments(args)
    assert [config.name for config in configs] == ["SIM-TM01", "SIM-TM02"]
    for config in configs:
        assert not config.report_console_status
        assert config.deceleration_kmh_per_s == 0.25
        assert config.resume_at_last_target
        assert config.initial_incline_pct == 12.0
        assert config.incline_rate_pct_per_s == 0.5
        assert config.ignores_speed_commands
        assert config.starts_on_connect
        assert config.starts_on_connect_kmh == 1.5
        assert config.refuses_stop is ResultCode.OPERATION_FAILED
        assert config.refuses_pause is ResultCode.CONTROL_NOT_PERMITTED
        assert config.drops_link_on_stop
        assert config.response_delay_s == 2.5
        assert config.echo_target_while_decelerating


def test_without_deck_flags_the_runner_starts_the_clean_default_deck() -> None:
    (config,) = configs_from_arguments(build_parser().parse_args([]))
    assert config == SimulatedTreadmillConfig(name="SIM-TM01")


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--deceleration-kmh-per-s", "0.01"], "--deceleration-kmh-per-s"),
        (["--refuses-stop", "sometimes"], "--refuses-stop"),
        (["--initial-incline-pct", "40"], "initial_incline_pct"),
    ],
)
def test_a_bad_deck_flag_is_a_usage_error_naming_it(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert named in capsys.readouterr().err


def test_runner_shows_a_deck_left_inclined(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--initial-incline-pct", "12", "--interval", "0.1", "--duration", "0.2"]
    assert main(argv) == 0
    assert "incline 12.0/12.0 %" in capsys.readouterr().out


@pytest.fixture
def e1l_trace(tmp_path: Path) -> Path:
    """The Urevo E1L connect excerpt of test_replay.py as a trace file."""
    path = tmp_path / "e1l.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in UREVO_E1L_KINOMAP), "utf-8")
    return path


def test_runner_serves_a_replay_and_prints_its_report(
    e1l_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--replay", str(e1l_trace), "--interval", "0.1", "--duration", "0.3"]
    assert main(argv) == 0  # nothing connected, so nothing mismatched
    out = capsys.readouterr().out
    assert f"replaying URTM041 (session 0 of {e1l_trace}) on the in-process link" in out
    live = " 1 URTM041      F0:E1:E1:00:00:01 advertising replay: writes matched 0/2, mismatches 0"
    assert live in out.splitlines()
    # The report: every recorded write unsent, since no central connected.
    assert f"replayed URTM041 (F0:E1:E1:00:00:01) from {e1l_trace}" in out
    assert "writes matched 0 of 2 recorded; mismatches 0" in out
    assert "not written: 00 to" in out


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--preset", "horizon"], "--preset"),
        (["--deceleration-kmh-per-s", "0.25", "--no-report-console-status"], "--deceleration"),
        (["--count", "2"], "--count"),
        (["--session", "1"], "--session 1: "),
        (["--address", "nowhere"], "--address 'nowhere'"),
    ],
)
def test_replay_with_deck_options_is_a_usage_error(
    e1l_trace: Path, extra: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--replay", str(e1l_trace), *extra]) == 2
    err = capsys.readouterr().err
    assert named in err


def test_replay_usage_errors_say_what_to_do(
    e1l_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--replay", str(e1l_trace), "--preset", "horizon"]) == 2
    assert capsys.readouterr().err == (
        "--replay serves the recorded deck as it was, so it cannot be combined with --preset;"
        " drop it, or drop --replay to run a deck model\n"
    )
    assert main(["--session", "1"]) == 2
    assert "add --replay" in capsys.readouterr().err


def test_a_malformed_replay_is_printed_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cut.jsonl"
    path.write_text(json.dumps(UREVO_E1L_KINOMAP[0]) + '\n{"type": "conn', "utf-8")
    assert main(["--replay", str(path), "--duration", "0.1"]) == 2
    assert f"{path}, line 2: not JSON" in capsys.readouterr().err


def test_a_replay_over_an_unusable_transport_is_a_clear_error(
    e1l_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Only the failure path, as for deck models: serving over the air needs a radio.
    argv = ["--replay", str(e1l_trace), "--transport", "serial:/dev/treadmilld-no-such-port"]
    assert main([*argv, "--duration", "0.1"]) == 1
    assert "could not open Bluetooth transport" in capsys.readouterr().err
