"""The command line as a user meets it: real subprocesses, exit codes and messages."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest
from treadmilld_broker import EmbeddedBroker

from tests.app.process import SHORT_PROFILE, run_to_end, treadmilld


async def test_bad_config_exits_2_naming_file_field_and_fix(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[treadmills]]\nid = "TM 1"\naddress = "nope"\n[mqtt]\nport = 99999\n', encoding="utf-8"
    )
    code, daemon = await run_to_end("run", "--config", str(config))
    assert code == 2
    error = "".join(daemon.stderr)
    assert "configuration error" in error
    assert str(config) in error
    assert "treadmills[0].id: 'TM 1' is not a valid treadmill id" in error
    assert "treadmills[0].address: 'nope' is not a Bluetooth address" in error
    assert "`treadmilld scan`" in error
    assert "mqtt.port" in error
    assert "Traceback" not in error


async def test_missing_config_file_and_no_treadmills_are_config_errors(tmp_path: Path) -> None:
    code, daemon = await run_to_end("run", "--config", str(tmp_path / "absent.toml"))
    assert code == 2
    assert "absent.toml: no such file" in "".join(daemon.stderr)
    empty = tmp_path / "empty.toml"
    empty.write_text("[mqtt]\nhost = 'localhost'\n", encoding="utf-8")
    code, daemon = await run_to_end("run", "--config", str(empty))
    assert code == 2
    assert "no treadmills configured" in "".join(daemon.stderr)


async def test_check_config_prints_effective_config_with_credential_redacted(
    tmp_path: Path,
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "mqtt_password").write_text("hunter2\n", encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        '[[treadmills]]\nid = "tm01"\naddress = "AA:BB:CC:DD:EE:01"\n'
        '[mqtt]\nusername = "treadmilld"\n',
        encoding="utf-8",
    )
    code, daemon = await run_to_end(
        "check-config",
        "--config",
        str(config),
        env={"CREDENTIALS_DIRECTORY": str(credentials), "TREADMILLD_MQTT__HOST": "broker.lan"},
    )
    assert code == 0, daemon.output()
    shown = json.loads("".join(daemon.stdout))
    assert shown["mqtt"]["host"] == "broker.lan"
    assert shown["mqtt"]["password"] == "**********"
    assert shown["treadmills"][0]["address"] == "AA:BB:CC:DD:EE:01"
    assert "hunter2" not in daemon.output()


async def test_simulated_treadmill_without_the_simulator_says_what_to_install(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[treadmills]]\nid = "sim01"\nsimulated = {}\n', encoding="utf-8")
    # Python treats a None entry in sys.modules as "not installed".
    script = (
        "import sys; sys.modules['treadmilld_sim'] = None; "
        "from treadmilld.cli import main; "
        f"raise SystemExit(main(['run', '--config', {str(config)!r}]))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(30):
        _, stderr = await process.communicate()
    assert process.returncode == 2
    assert "treadmilld-sim" in stderr.decode()
    assert "uv sync" in stderr.decode()


async def test_bad_simulated_table_names_the_field(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[treadmills]]\nid = "sim01"\nsimulated = { max_speed_kmh = -3 }\n', encoding="utf-8"
    )
    code, daemon = await run_to_end("run", "--config", str(config))
    assert code == 2
    assert "treadmills[0].simulated.max_speed_kmh" in "".join(daemon.stderr)


@pytest.mark.parametrize(
    ("command", "strap", "field", "says"),
    [
        # A misspelt key: refused with the key it was probably meant to be.
        ("check-config", "resting_bmp = 60", "resting_bmp", "did you mean 'resting_bpm'?"),
        ("run", "resting_bmp = 60", "resting_bmp", "did you mean 'resting_bpm'?"),
        # A value out of range: refused with the bound.
        ("check-config", "max_bpm = 500", "max_bpm", "less than or equal to 230 (got 500)"),
    ],
)
async def test_bad_simulated_strap_table_is_refused_before_starting_naming_the_field(
    tmp_path: Path, command: str, strap: str, field: str, says: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[treadmills]]\nid = "sim01"\nsimulated = {}\n'
        f"heart_rate_strap = {{ simulated = {{ {strap} }} }}\n",
        encoding="utf-8",
    )
    code, daemon = await run_to_end(command, "--config", str(config))
    assert code == 2, daemon.output()
    error = "".join(daemon.stderr)
    assert "configuration error" in error
    assert f"treadmills[0].heart_rate_strap.simulated.{field}: " in error
    assert says in error
    assert "daemon_starting" not in daemon.output()
    assert daemon.stdout == []


async def test_demo_runs_a_profile_to_its_summary(
    mqtt_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    code, demo = await run_to_end(
        "demo",
        "--profile",
        str(SHORT_PROFILE),
        # 10x keeps the real-time slack of the telemetry timeout at 3 s on a busy machine.
        "--speedup",
        "10",
        "--treadmills",
        "2",
        "--broker",
        mqtt_broker.url,
        "--base-topic",
        "demotest",
        within_s=90,
    )
    output = "".join(demo.stdout)
    assert code == 0, demo.output()
    assert "2 simulated treadmill(s), profile test-short" in output
    summary = output[output.index("Summary") :]
    for treadmill in ("sim01", "sim02"):
        line = next(line for line in summary.splitlines() if line.strip().startswith(treadmill))
        assert "finished" in line
        assert " 0 m" not in line.split("backward")[-1]  # walked some distance backward
    # Plain lines (stdout is a pipe): the turn countdown and direction were shown, and a line
    # for every segment of the plan (forward, turn, backward, turn, forward) as it starts.
    assert "turn in 3" in output
    assert "backward" in output
    for treadmill in ("sim01", "sim02"):
        assert f"{treadmill}  segment 1/5: forward 0:20 at 3 km/h" in output
        assert f"{treadmill}  segment 3/5: backward 0:15 at 2 km/h" in output
        assert f"{treadmill}  segment 5/5: forward" in output
    # The last line names the recorded workouts and how to export one; doing what it says
    # gives the file.
    last = output.strip().splitlines()[-1]
    assert last.startswith("history: workout w-"), last
    command = last.split("`")[1]
    assignment, program, *arguments = command.split()
    assert program == "treadmilld"
    variable, url = assignment.split("=", 1)
    target = tmp_path / "demo.fit"
    code, export = await run_to_end(*arguments, "-o", str(target), env={variable: url})
    assert code == 0, export.output()
    assert target.read_bytes()[8:12] == b".FIT"  # the FIT file header's data type


async def test_scan_lists_simulated_treadmills_and_their_straps_in_two_tables() -> None:
    code, scan = await run_to_end("scan", "--sim", "3", "--timeout", "1")
    assert code == 0, scan.output()
    output = "".join(scan.stdout)
    treadmills, straps = output.split("Heart-rate straps (Heart Rate Service, 0x180D)\n")
    assert treadmills.startswith("Treadmills (FTMS)\n")
    treadmill_rows = [line.split() for line in treadmills.splitlines() if "SIM-" in line]
    assert [row[1] for row in treadmill_rows] == ["SIM-TM01", "SIM-TM02", "SIM-TM03"]
    assert all(row[-2:] == ["treadmill", "yes"] for row in treadmill_rows)
    strap_rows = [line.split() for line in straps.splitlines() if "SIM-" in line]
    assert [row[1] for row in strap_rows] == ["SIM-HR01", "SIM-HR02", "SIM-HR03"]
    # Each strap's own address, none of them a treadmill's.
    addresses = {row[0] for row in strap_rows}
    assert len(addresses) == 3
    assert not addresses & {row[0] for row in treadmill_rows}
    assert 'heart_rate_strap = { address = "..." }' in straps
    assert "[[treadmills]]" in straps


async def test_diagnose_anonymises_addresses(tmp_path: Path, mqtt_broker: EmbeddedBroker) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[treadmills]]\nid = "tm01"\naddress = "AA:BB:CC:12:34:56"\n'
        f'[mqtt]\nhost = "{mqtt_broker.host}"\nport = {mqtt_broker.port}\n',
        encoding="utf-8",
    )
    code, report = await run_to_end("diagnose", "--config", str(config))
    assert code == 0, report.output()
    text = "".join(report.stdout)
    assert "bleak" in text
    assert "AA:BB:CC:**:**:**" in text
    assert "12:34:56" not in text


async def test_profiles_commands_are_wired(tmp_path: Path) -> None:
    code, listing = await run_to_end("profiles", "list")
    assert code == 0
    assert "p1-starter-a" in "".join(listing.stdout)
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "broken"\n', encoding="utf-8")
    code, check = await run_to_end("profiles", "check", str(broken), str(SHORT_PROFILE))
    assert code != 0
    assert "broken.toml" in check.output()


async def test_demo_keep_running_stays_up_until_interrupted(mqtt_broker: EmbeddedBroker) -> None:
    args = ("demo", "--profile", str(SHORT_PROFILE), "--speedup", "20", "--keep-running")
    async with treadmilld(*args, "--broker", mqtt_broker.url, "--base-topic", "keep") as demo:
        async with asyncio.timeout(60):
            while not any("Still running" in line for line in demo.stdout):
                if demo.process.returncode is not None:
                    break
                await asyncio.sleep(0.1)
        assert demo.process.returncode is None, demo.output()
        assert any("Summary" in line for line in demo.stdout)
        demo.process.send_signal(signal.SIGINT)
        code = await demo.wait(30)
    assert code == 0, demo.output()


def test_ctrl_c_before_the_daemon_is_up_is_one_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Ctrl-C while a command is still setting up (connecting, starting the simulator) reaches
    # main() as KeyboardInterrupt: the user gets one line and the shell's SIGINT code, not a
    # Python traceback.
    from treadmilld import cli
    from treadmilld.app import scan_and_diagnose

    def interrupted(**_options: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(scan_and_diagnose, "scan_command", interrupted)

    assert cli.main(["scan"]) == 130
    assert capsys.readouterr().err == "treadmilld: interrupted\n"


async def test_profiles_show_takes_a_file(tmp_path: Path) -> None:
    code, shown = await run_to_end("profiles", "show", str(SHORT_PROFILE))
    assert code == 0
    assert "[test-short]" in shown.output()
    assert "-> backward" in shown.output()
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "broken"\n', encoding="utf-8")
    code, refused = await run_to_end("profiles", "show", str(broken))
    assert code == 1
    # Every missing field, each with its own hint.
    for field in ("title", "description", "suits", "sources", "segments"):
        assert f"{broken}: {field}: Field required" in refused.output()
    assert refused.output().count("hint:") == 5


async def test_a_bad_file_in_profiles_dir_logs_each_problem(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "broken.toml").write_text(
        'name = "broken"\ntitle = "B"\ndescription = "d"\nsuits = "s"\nsources = ["x"]\n'
        '[[segments]]\ndirection = "backwards"\nduration_s = 0\nspeed_kmh = 2\n',
        encoding="utf-8",
    )
    config = tmp_path / "config.toml"
    config.write_text(f'profiles_dir = "{profiles}"\n', encoding="utf-8")
    code, listing = await run_to_end("profiles", "list", "--config", str(config))
    assert code == 0
    logged = [line for line in listing.stderr if "profile_invalid" in line]
    assert len(logged) == 2
    for line, field in zip(
        logged, ("segments[0].direction", "segments[0].duration_s"), strict=True
    ):
        assert f"file={profiles / 'broken.toml'}" in line
        assert f"field={field}" in line
        assert "hint=" in line


async def test_demo_flags_are_checked_like_the_configuration() -> None:
    code, demo = await run_to_end(
        "demo", "--weight", "-4", "--port", "99999", "--base-topic", "a/#", "--treadmills", "9"
    )
    error = "".join(demo.stderr)
    assert code == 2, demo.output()
    assert "configuration error" in error
    assert "4 problem(s) in the demo options" in error
    assert "--weight: Input should be greater than or equal to 20 (got -4.0)" in error
    assert "--port: Input should be less than or equal to 65535 (got 99999)" in error
    assert "--base-topic: 'a/#' may not contain MQTT wildcards" in error
    assert "--treadmills: must be between 1 and 8 (got 9)" in error
    assert "Traceback" not in demo.output()
    assert demo.stdout == []  # refused before anything started


async def test_demo_on_a_taken_port_is_an_error_not_someone_elses_broker(
    mqtt_broker: EmbeddedBroker,
) -> None:
    code, demo = await run_to_end("demo", "--port", str(mqtt_broker.port))
    error = "".join(demo.stderr)
    assert code == 2, demo.output()
    assert (
        f"--port {mqtt_broker.port}: port {mqtt_broker.port} on 127.0.0.1 is already in use"
        in error
    )
    assert f"--broker mqtt://127.0.0.1:{mqtt_broker.port}" in error
    assert "embedded" not in "".join(demo.stdout)
    assert "Traceback" not in demo.output()


async def test_profiles_show_refuses_a_weight_that_would_give_negative_energy() -> None:
    code, show = await run_to_end("profiles", "show", "p3-knee-oa", "--weight", "-5")
    assert code == 2
    assert "argument --weight: -5 kg is outside 20-300 kg" in "".join(show.stderr)
    assert "kcal" not in "".join(show.stdout)
    code, show = await run_to_end("profiles", "show", "p3-knee-oa", "--weight", "80")
    assert code == 0
    assert "Estimated energy for 80 kg" in "".join(show.stdout)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (
            '[[treadmills]]\nid = "bridge"\naddress = "AA:BB:CC:DD:EE:01"\n',
            "treadmills[0].id: 'bridge' cannot be a treadmill id",
        ),
        (
            '[[treadmills]]\nid = "tm01"\naddress = "AA:BB:CC:DD:EE:01"\n[mqtt]\nhots = "x"\n',
            "mqtt.hots: unknown setting; did you mean 'host'?",
        ),
        ('[mqtt]\nhost = "broker.lan"\n', "no treadmills configured"),
        (
            '[[treadmills]]\nid = "sim01"\nsimulated = { max_sped_kmh = 9 }\n',
            "treadmills[0].simulated.max_sped_kmh: unknown setting; did you mean 'max_speed_kmh'?",
        ),
    ],
)
async def test_check_config_refuses_exactly_what_run_refuses(
    tmp_path: Path, config: str, problem: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config, encoding="utf-8")
    for command in ("check-config", "run"):
        code, process = await run_to_end(command, "--config", str(path))
        assert code == 2, (command, process.output())
        assert problem in "".join(process.stderr), (command, process.output())
        assert "Traceback" not in process.output()
