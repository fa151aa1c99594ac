"""What the daemon's wheel carries: the daemon and its `demo` command, never the demo's broker.

The embedded broker (mosquitto or amqtt, with TLS listeners for the tests) is its own
distribution, `treadmilld-broker` in `broker/`, reached only by the demo and the tests; the
daemon's wheel names it only as a requirement of the `demo` and `demo-broker` extras.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import treadmilld_broker

from tests.app.process import REPO, treadmilld_env


def _uv() -> str:
    # `uv run` names itself in UV; CI may have reached uv some other way.
    found = os.environ.get("UV") or shutil.which("uv")
    if found is None:
        pytest.fail("uv is needed to build the wheel (it runs this suite: `uv run pytest`)")
    return found


def _build_wheel(out_dir: Path, *package: str) -> zipfile.ZipFile:
    # --offline: hatchling is in uv's cache since `uv sync` built the workspace with it, and a
    # test must not need the network. --python: the build runs on this interpreter.
    command = [_uv(), "build", "--wheel", "--offline", "--quiet", "--python", sys.executable]
    subprocess.run(
        [*command, *package, "--out-dir", str(out_dir), str(REPO)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    [wheel] = out_dir.glob("*.whl")
    return zipfile.ZipFile(wheel)


def _requires(wheel: zipfile.ZipFile) -> set[str]:
    [metadata] = [name for name in wheel.namelist() if name.endswith(".dist-info/METADATA")]
    message = Parser().parsestr(wheel.read(metadata).decode())
    return {" ".join(value.split()) for value in message.get_all("Requires-Dist") or []}


def test_the_daemon_wheel_leaves_the_broker_to_the_demo_extra(tmp_path: Path) -> None:
    with _build_wheel(tmp_path) as wheel:
        names = wheel.namelist()
        requires = _requires(wheel)
    assert "treadmilld/app/demo.py" in names
    assert "treadmilld/mqtt/link.py" in names
    # The store migrates on start from the scripts it carries (no alembic.ini, no checkout).
    assert "treadmilld/store/migrations/env.py" in names
    assert "treadmilld/store/migrations/versions/v0002_feedback.py" in names
    assert not [name for name in names if "broker" in name.split("/")[0]]
    assert not [name for name in names if "embedded_broker" in name]
    # Installed only with the demo's extras; amqtt only with the in-process fallback.
    assert "treadmilld-broker; extra == 'demo'" in requires
    assert "treadmilld-broker[amqtt]; extra == 'demo-broker'" in requires
    unconditional = [r for r in requires if "extra ==" not in r]
    assert not [r for r in unconditional if r.startswith(("treadmilld-broker", "amqtt"))]


def test_the_broker_wheel_carries_the_broker(tmp_path: Path) -> None:
    with _build_wheel(tmp_path, "--package", "treadmilld-broker") as wheel:
        names = wheel.namelist()
        requires = _requires(wheel)
    assert "treadmilld_broker/__init__.py" in names
    assert not [name for name in names if name.startswith("treadmilld/")]
    assert "amqtt<0.13,>=0.11.4; extra == 'amqtt'" in requires


def test_the_demo_uses_the_broker_of_the_source_checkout() -> None:
    # The workspace member is installed editable: the demo (and every test) imports it from
    # the checkout, and `tests/app/test_cli.py` runs the demo on it end to end.
    assert Path(treadmilld_broker.__file__).resolve().is_relative_to(REPO / "broker")


def test_a_demo_without_the_broker_package_says_what_to_install() -> None:
    # As on an install of the daemon alone: the import of the broker fails.
    hide_broker = (
        "import sys; sys.modules['treadmilld_broker'] = None; "
        "from treadmilld.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", hide_broker, "demo", "--treadmills", "1"],
        env=treadmilld_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "the embedded MQTT broker is not installed" in done.stdout
    assert "pip install 'treadmilld[demo]'" in done.stdout
    assert "--broker mqtt://HOST:1883" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
