"""The shipped unit passes systemd's own checks (where systemd-analyze is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SYSTEMD_DIR = Path(__file__).resolve().parents[2] / "systemd"
UNIT = SYSTEMD_DIR / "treadmilld.service"
SYSUSERS = SYSTEMD_DIR / "treadmilld.sysusers"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def unit_settings() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_unit_declares_what_the_daemon_relies_on() -> None:
    settings = unit_settings()
    assert settings["Type"] == ["notify"]
    assert settings["Restart"] == ["on-failure"]
    assert settings["User"] == ["treadmilld"]
    assert settings["SupplementaryGroups"] == ["bluetooth"]
    assert "DynamicUser" not in settings  # the static user is what BlueZ's policy trusts
    assert int(settings["WatchdogSec"][0]) >= 10
    # SIGTERM must leave time for every belt to stop (3 s) before systemd kills us.
    assert int(settings["TimeoutStopSec"][0]) > 3
    assert settings["ExecStart"][0].split()[1] == "run"


@needs_analyze
def test_security_exposure_at_most_2() -> None:
    assert ANALYZE is not None
    result = subprocess.run(
        [ANALYZE, "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for treadmilld\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout


@needs_analyze
def test_verify_is_clean(tmp_path: Path) -> None:
    assert ANALYZE is not None
    # verify also checks that ExecStart's binary exists, which /opt/treadmilld does not on a
    # build machine: point it at this interpreter, everything else is checked as shipped.
    text = UNIT.read_text(encoding="utf-8")
    executable = Path(sys.executable).resolve()
    copy = tmp_path / "treadmilld.service"
    copy.write_text(
        re.sub(r"^ExecStart=\S+", f"ExecStart={executable}", text, flags=re.M), encoding="utf-8"
    )
    result = subprocess.run(
        [ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "treadmilld.service" not in result.stderr, result.stderr


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="no systemd-sysusers")
def test_sysusers_creates_the_user_in_group_bluetooth(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    for name in ("passwd", "group", "shadow", "gshadow"):
        (tmp_path / "etc" / name).touch()
    sysusers = shutil.which("systemd-sysusers")
    assert sysusers is not None
    result = subprocess.run(
        [sysusers, "--dry-run", f"--root={tmp_path}", str(SYSUSERS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Creating user 'treadmilld'" in output
    assert "Creating group 'bluetooth'" in output


def test_credential_drop_in_names_a_credential_the_daemon_reads() -> None:
    from treadmilld.app.settings import CREDENTIAL_SETTINGS

    text = (SYSTEMD_DIR / "mqtt-credential.conf").read_text(encoding="utf-8")
    [line] = [line for line in text.splitlines() if line.startswith("LoadCredential=")]
    name = line.removeprefix("LoadCredential=").split(":", 1)[0]
    assert CREDENTIAL_SETTINGS[name] == ("mqtt", "password")
