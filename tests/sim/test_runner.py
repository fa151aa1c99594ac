"""The standalone runner: live state lines, console commands typed by an operator."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

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
