"""Running `python -m treadmilld ...` as a real subprocess, with every wait bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SHORT_PROFILE = Path(__file__).resolve().parent / "data" / "test-short.toml"


@dataclass
class DaemonProcess:
    process: asyncio.subprocess.Process
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    # The tasks copying the process's output into `stdout` and `stderr`.
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines the daemon wrote (non-JSON lines are skipped)."""
        records = []
        for line in self.stderr:
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(line)
                if isinstance(value, dict):
                    records.append(value)
        return records

    def events(self, name: str) -> list[dict[str, Any]]:
        return [record for record in self.log_records() if record.get("event") == name]

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    async def wait(self, within_s: float = 30.0) -> int:
        async with asyncio.timeout(within_s):
            code = await self.process.wait()
            await asyncio.gather(*self.readers)
        return code

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)


async def _pump(stream: asyncio.StreamReader | None, into: list[str]) -> None:
    if stream is None:
        return
    while line := await stream.readline():
        into.append(line.decode(errors="replace"))


def treadmilld_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # The test decides what the daemon sees of systemd and of our own variables.
        if not key.startswith(("TREADMILLD_", "NOTIFY_SOCKET", "WATCHDOG_", "JOURNAL_STREAM"))
        and key != "CREDENTIALS_DIRECTORY"
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@contextlib.asynccontextmanager
async def treadmilld(
    *args: str, env: Mapping[str, str] | None = None
) -> AsyncIterator[DaemonProcess]:
    """`python -m treadmilld *args`; killed on the way out if it is still running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "treadmilld",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=treadmilld_env(env),
        cwd=REPO,
    )
    daemon = DaemonProcess(process)
    daemon.readers = [
        asyncio.create_task(_pump(process.stdout, daemon.stdout)),
        asyncio.create_task(_pump(process.stderr, daemon.stderr)),
    ]
    try:
        yield daemon
    finally:
        if process.returncode is None:
            process.kill()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await process.wait()
        for reader in daemon.readers:
            reader.cancel()
        await asyncio.gather(*daemon.readers, return_exceptions=True)


async def run_to_end(
    *args: str, env: Mapping[str, str] | None = None, within_s: float = 60.0
) -> tuple[int, DaemonProcess]:
    async with treadmilld(*args, env=env) as daemon:
        code = await daemon.wait(within_s)
    return code, daemon
