"""sd_notify datagrams reach a real AF_UNIX datagram socket, as systemd would receive them."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from treadmilld.app.sdnotify import SystemdNotifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(5)
    yield receiver, str(path)
    receiver.close()


def test_ready_status_watchdog_and_stopping_arrive_in_order(
    notify_socket: tuple[socket.socket, str],
) -> None:
    receiver, path = notify_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready("2 treadmills configured")
    assert notifier.status("tm01 connected")
    assert notifier.watchdog()
    assert notifier.stopping("stopping belts")
    received = [receiver.recv(4096).decode() for _ in range(4)]
    notifier.close()
    assert received == [
        "READY=1\nSTATUS=2 treadmills configured",
        "STATUS=tm01 connected",
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=stopping belts",
    ]


def test_abstract_namespace_socket_named_with_at_sign() -> None:
    name = f"treadmilld-test-{uuid.uuid4().hex}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(b"\0" + name.encode())
    receiver.settimeout(5)
    try:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert receiver.recv(4096) == b"READY=1"
        notifier.close()
    finally:
        receiver.close()


def test_status_text_with_newlines_stays_one_assignment(
    notify_socket: tuple[socket.socket, str],
) -> None:
    receiver, path = notify_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    notifier.status("line one\nREADY=1")
    assert receiver.recv(4096) == b"STATUS=line one READY=1"
    notifier.close()


def test_without_systemd_every_call_is_a_quiet_no_op() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert notifier.watchdog_interval_s is None


def test_a_vanished_socket_is_reported_not_raised(tmp_path: Path) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.ready() is False
    notifier.close()


def test_watchdog_interval_comes_from_watchdog_usec_for_this_process() -> None:
    mine = SystemdNotifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_interval_s == 30.0
    unpinned = SystemdNotifier({"WATCHDOG_USEC": "5000000"})
    assert unpinned.watchdog_interval_s == 5.0
    other_process = SystemdNotifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})
    assert other_process.watchdog_interval_s is None
    garbage = SystemdNotifier({"WATCHDOG_USEC": "soon"})
    assert garbage.watchdog_interval_s is None
