"""A small sd_notify(3) client: READY, STATUS, WATCHDOG and STOPPING datagrams to systemd.

systemd passes the socket in `NOTIFY_SOCKET` (a filesystem path, or `@name` for an abstract
socket) and, with `WatchdogSec=`, the interval in `WATCHDOG_USEC` (for the process in
`WATCHDOG_PID`). Outside systemd there is no socket and every call is a harmless no-op. A failed
send is logged and never raised: telling systemd is best effort, stopping a belt is not.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

_log = structlog.get_logger(__name__)


def _socket_address(raw: str) -> str | bytes:
    # sd_notify(3): a leading '@' names a socket in the abstract namespace (a NUL byte).
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    return raw


class SystemdNotifier:
    """Sends sd_notify datagrams; does nothing when not started by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = _socket_address(raw) if raw else None
        self._watchdog_interval_s = _watchdog_interval(env)
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """systemd's WatchdogSec for this process, or None when no watchdog is armed."""
        return self._watchdog_interval_s

    def notify(self, *assignments: str) -> bool:
        """Send `KEY=value` lines in one datagram; True when systemd got it."""
        if self._address is None or not assignments:
            return False
        payload = "\n".join(assignments).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                # Never block the event loop on a full socket buffer; a lost ping is harmless.
                self._socket.setblocking(False)  # noqa: FBT003 - socket API takes a bare flag
            self._socket.sendto(payload, self._address)
        except OSError as error:
            _log.warning("sd_notify_failed", message=payload.decode(), error=str(error))
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        lines = ["READY=1"]
        if status is not None:
            lines.append(_status_line(status))
        return self.notify(*lines)

    def status(self, text: str) -> bool:
        return self.notify(_status_line(text))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def watchdog_trigger(self) -> bool:
        """Tell systemd we are hung so it restarts us now, not at the next missed ping."""
        return self.notify("WATCHDOG=trigger")

    def stopping(self, status: str | None = None) -> bool:
        lines = ["STOPPING=1"]
        if status is not None:
            lines.append(_status_line(status))
        return self.notify(*lines)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _status_line(text: str) -> str:
    # One datagram line per assignment: a newline in the text would start a new assignment.
    return "STATUS=" + " ".join(text.splitlines())


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    # sd_watchdog_enabled(3): WATCHDOG_PID, when set, names the one process meant to ping.
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    try:
        value = int(usec)
    except ValueError:
        _log.warning("watchdog_usec_invalid", value=usec)
        return None
    return value / 1_000_000 if value > 0 else None
