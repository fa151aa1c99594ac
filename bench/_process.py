"""Watching a daemon subprocess from outside: sd_notify readiness, resident memory, CPU time.

Read straight from /proc (Linux only, like the Pi) so the numbers are what `top` and systemd
would report, with no library in between.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True, slots=True)
class CpuSample:
    cpu_s: float  # user + system time, seconds
    wall_s: float  # time.monotonic()


def rss_mib(pid: int) -> float:
    """Resident set size (VmRSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    # Zombie or kernel thread: fall back to statm's resident pages.
    resident_pages = int(Path(f"/proc/{pid}/statm").read_text(encoding="utf-8").split()[1])
    return resident_pages * _PAGE_KIB / 1024.0


def peak_rss_mib(pid: int) -> float:
    """The peak resident set size so far (VmHWM, proc(5)) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise ValueError(f"/proc/{pid}/status has no VmHWM line: is {pid} a user process?")


def cpu_sample(pid: int) -> CpuSample:
    raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return CpuSample((utime + stime) / _CLOCK_TICKS, time.monotonic())


def cpu_share_pct(before: CpuSample, after: CpuSample) -> float:
    """Percent of one core used between two samples."""
    wall = after.wall_s - before.wall_s
    return 100.0 * (after.cpu_s - before.cpu_s) / wall if wall > 0 else 0.0


class NotifySocket:
    """A bound sd_notify datagram socket: what systemd gives a Type=notify service."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self.messages: list[str] = []

    def wait_for(self, assignment: str, timeout_s: float) -> float | None:
        """Block until a datagram contains `assignment` (e.g. READY=1); monotonic time or None."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._sock.settimeout(remaining)
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                return None
            arrived = time.monotonic()
            text = data.decode("utf-8", errors="replace")
            self.messages.append(text)
            if assignment in text.splitlines():
                return arrived

    def close(self) -> None:
        self._sock.close()


@contextlib.contextmanager
def notify_socket() -> Iterator[NotifySocket]:
    with tempfile.TemporaryDirectory(prefix="treadmilld-bench-notify-") as tmp:
        sock = NotifySocket(Path(tmp) / "notify.sock")
        try:
            yield sock
        finally:
            sock.close()
