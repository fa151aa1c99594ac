"""A throwaway mosquitto for benchmarks: free port, readiness = a real CONNACK.

Why it is set up this way: Debian's mosquitto package installs the broker in /usr/sbin (often
not on a non-root PATH); started as root, mosquitto drops to the `mosquitto` user unless the
config says `user root` (mosquitto.conf(5), "user"), and that user cannot read our temporary
directory; a TCP accept is not readiness, a CONNACK is (MQTT 3.1.1 §3.2).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# MQTT 3.1.1 CONNECT: clean session, keepalive 60, client id "probe" (MQTT 3.1.1 §3.1).
_CONNECT_PROBE = bytes.fromhex("101100044d5154540402003c000570726f6265")
_CONNACK_FIRST_BYTE = 0x20
_DISCONNECT = bytes.fromhex("e000")

# Socket option for bench MQTT clients: small messages leave at once, as in the daemon's own
# link (treadmilld/mqtt/link.py), so no figure carries a Nagle/delayed-ACK wait.
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class BrokerUnavailableError(RuntimeError):
    """No mosquitto binary: install it (`apt-get install mosquitto`) to run this benchmark."""


@dataclass(frozen=True, slots=True)
class RunningBroker:
    host: str
    port: int
    pid: int
    kind: str  # "mosquitto"


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    fallback = Path("/usr/sbin/mosquitto")
    return str(fallback) if fallback.exists() else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_connect(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(_CONNECT_PROBE)
            reply = sock.recv(4)
            if reply and reply[0] == _CONNACK_FIRST_BYTE:
                sock.sendall(_DISCONNECT)
                return True
    except OSError:
        return False
    return False


def wait_until_ready(port: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _answers_connect(port):
            return True
        time.sleep(0.005)
    return False


@contextlib.contextmanager
def mosquitto(port: int | None = None) -> Iterator[RunningBroker]:
    """Run mosquitto on 127.0.0.1 (a given port, to restart 'the same broker'); stop it after."""
    binary = find_mosquitto()
    if binary is None:
        raise BrokerUnavailableError(
            "mosquitto is not installed; `apt-get install mosquitto` and rerun the benchmark"
        )
    with tempfile.TemporaryDirectory(prefix="treadmilld-bench-broker-") as tmp:
        last_log = ""
        for _attempt in range(5):
            chosen = port if port is not None else free_port()
            conf = Path(tmp) / "mosquitto.conf"
            log = Path(tmp) / "mosquitto.log"
            lines = [
                f"listener {chosen} 127.0.0.1",
                "allow_anonymous true",
                # As the embedded broker and docs/gym-broker.md: without it, Nagle holds a small
                # command behind an unacknowledged packet for a delayed-ACK period (~40 ms).
                "set_tcp_nodelay true",
                "persistence false",
                f"log_dest file {log}",
            ]
            if os.geteuid() == 0:
                lines.append("user root")
            conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
            proc = subprocess.Popen(
                [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if wait_until_ready(chosen) and proc.poll() is None:
                try:
                    yield RunningBroker("127.0.0.1", chosen, proc.pid, "mosquitto")
                finally:
                    stop_process(proc)
                return
            stop_process(proc)
            last_log = log.read_text(encoding="utf-8") if log.exists() else ""
            if port is not None:
                break
        raise BrokerUnavailableError(f"mosquitto did not come up; its log:\n{last_log}")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
