"""A throwaway local broker for the demo and the tests. Never for a gym.

Its own distribution, `treadmilld-broker` (a uv workspace member, like the simulator), so the
daemon's wheel never carries it: `treadmilld demo` imports it lazily and it is installed with
the `demo` extra (`demo-broker` adds the amqtt fallback).

Prefers a real mosquitto (exact retained and MQTT v5 semantics); without the binary it runs
amqtt in-process (MQTT 3.1.1 only, and it may deliver a retained message twice: harmless for
idempotent state topics). Readiness is a real CONNACK, not merely an open TCP port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import structlog

_log = structlog.get_logger(__name__)

BrokerKind = Literal["mosquitto", "amqtt"]

# MQTT 3.1.1 CONNECT (§3.1): protocol "MQTT" level 4, clean session, keepalive 60 s,
# client id "probe". A reply whose first byte is 0x20 is a CONNACK (§3.2): the broker is
# really serving MQTT, whatever the return code (an auth-only broker refuses it, still ready).
_PROBE_CONNECT = bytes.fromhex("101100044d5154540402003c000570726f6265")
_CONNACK = 0x20
_DISCONNECT = bytes.fromhex("e000")
_READY_TIMEOUT_S = 5.0
_PROBE_INTERVAL_S = 0.005
_START_ATTEMPTS = 5
_STOP_GRACE_S = 5.0
# Debian installs mosquitto in /usr/sbin, which is often not on a non-root PATH.
_MOSQUITTO_FALLBACK = Path("/usr/sbin/mosquitto")


class BrokerUnavailableError(RuntimeError):
    """No broker can be started here; the message says what to install."""


class BrokerStartError(RuntimeError):
    """The broker was found but would not start; the message carries its log."""


class BrokerPortInUseError(BrokerStartError):
    """The port asked for is taken (often by a broker already running there)."""


def find_mosquitto() -> Path | None:
    found = shutil.which("mosquitto")
    if found:
        return Path(found)
    if os.access(_MOSQUITTO_FALLBACK, os.X_OK):
        return _MOSQUITTO_FALLBACK
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now (the caller retries if it is taken later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(host: str, port: int) -> bool:
    """True when something listens on `host`:`port` (or holds it) right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Only a listener counts: connections of an earlier broker of ours still closing
        # (TIME_WAIT) do not keep a restart off its port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


async def mqtt_ready(host: str, port: int) -> bool:
    """True once the listener answers an MQTT CONNECT with a CONNACK."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    try:
        writer.write(_PROBE_CONNECT)
        await writer.drain()
        async with asyncio.timeout(1.0):
            first = await reader.read(1)
        if not first or first[0] != _CONNACK:
            return False
        writer.write(_DISCONNECT)
        with contextlib.suppress(OSError):
            await writer.drain()
    except (OSError, TimeoutError):
        return False
    else:
        return True
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@dataclass(frozen=True, slots=True)
class TlsListener:
    """An extra mosquitto TLS listener (its port is chosen at start, see `tls_port`)."""

    certfile: Path
    keyfile: Path
    cafile: Path | None = None
    require_certificate: bool = False
    use_identity_as_username: bool = False


class EmbeddedBroker:
    """`async with EmbeddedBroker() as broker:` then connect to `broker.host`/`broker.port`.

    `prefer="auto"` takes mosquitto when installed, else amqtt. `config_lines` are added to
    mosquitto's global config (e.g. `password_file ...`, `acl_file ...`), `listener_options`
    to every listener (e.g. `use_username_as_clientid true`); `allow_anonymous=False`
    turns anonymous access off. `stop()`/`start()` restart the broker on the same port, which
    is how tests simulate an outage.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        prefer: Literal["auto", "mosquitto", "amqtt"] = "auto",
        allow_anonymous: bool = True,
        config_lines: tuple[str, ...] = (),
        listener_options: tuple[str, ...] = (),
        tls: TlsListener | None = None,
        port: int | None = None,
    ) -> None:
        self._prefer = prefer
        self._allow_anonymous = allow_anonymous
        self._config_lines = config_lines
        self._listener_options = listener_options
        self._tls = tls
        self._fixed_port = port
        self.port = 0
        self.tls_port: int | None = None
        self.kind: BrokerKind = "mosquitto"
        self._binary: Path | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._amqtt: Any = None
        self._choose()

    def _choose(self) -> None:
        binary = find_mosquitto() if self._prefer != "amqtt" else None
        if binary is not None:
            self.kind = "mosquitto"
            self._binary = binary
            return
        if self._prefer == "mosquitto":
            raise BrokerUnavailableError(
                "mosquitto is not installed; install it (apt-get install mosquitto) or use "
                "prefer='auto' to fall back to amqtt"
            )
        if (
            self._tls is not None
            or not self._allow_anonymous
            or self._config_lines
            or (self._listener_options)
        ):
            raise BrokerUnavailableError(
                "auth, ACL and TLS need mosquitto (the amqtt fallback is anonymous TCP only); "
                "install it: apt-get install mosquitto"
            )
        self.kind = "amqtt"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def log_text(self) -> str:
        if self._workdir is None:
            return ""
        log_file = Path(self._workdir.name) / "mosquitto.log"
        return log_file.read_text(errors="replace") if log_file.exists() else ""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    async def start(self) -> None:
        """Start (or restart, on the same port) and wait for a CONNACK."""
        fixed = self._fixed_port
        if fixed is not None and self.port == 0 and port_in_use(self.host, fixed):
            # Without this check the CONNACK probe would be answered by whatever broker already
            # listens there, and we would report an embedded broker that is not ours.
            raise BrokerPortInUseError(
                f"port {fixed} on {self.host} is already in use, probably by an MQTT broker "
                f"that is running there (systemctl status mosquitto)"
            )
        if self.kind == "amqtt":
            await self._start_amqtt()
        else:
            await self._start_mosquitto()
        _log.info("embedded_broker_started", kind=self.kind, url=self.url)

    async def stop(self, *, kill: bool = False) -> None:
        """Stop the broker (SIGKILL with `kill=True`: no goodbyes, clients see a dead link)."""
        if self._amqtt is not None:
            broker, self._amqtt = self._amqtt, None
            try:
                async with asyncio.timeout(_STOP_GRACE_S):
                    await broker.shutdown()
            except TimeoutError:
                # In-process there is nothing to kill; the listener is closed by now.
                _log.warning("embedded_broker_shutdown_timed_out", kind="amqtt", url=self.url)
            return
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            await self._wait_exit(process, _STOP_GRACE_S)
        except TimeoutError:
            process.kill()
            await self._wait_exit(process, _STOP_GRACE_S)

    @staticmethod
    async def _wait_exit(process: subprocess.Popen[bytes], timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while process.poll() is None:  # noqa: ASYNC110 - a Popen has no awaitable exit
                await asyncio.sleep(_PROBE_INTERVAL_S)

    # -- mosquitto ------------------------------------------------------------------------

    def _mosquitto_config(self, workdir: Path) -> str:
        lines = [
            "per_listener_settings false",
            f"allow_anonymous {'true' if self._allow_anonymous else 'false'}",
            "persistence false",
            "set_tcp_nodelay true",  # small messages out at once (mosquitto.conf(5))
            f"log_dest file {workdir / 'mosquitto.log'}",
            "log_type all",
        ]
        if os.geteuid() == 0:
            # Otherwise mosquitto drops to user `mosquitto`, which cannot read our 0700
            # temporary directory (password, ACL and certificate files).
            lines.insert(0, "user root")
        lines += self._config_lines
        lines += [f"listener {self.port} {self.host}", *self._listener_options]
        if self._tls is not None and self.tls_port is not None:
            tls = self._tls
            lines += [f"listener {self.tls_port} {self.host}", *self._listener_options]
            lines += [f"certfile {tls.certfile}", f"keyfile {tls.keyfile}"]
            if tls.cafile is not None:
                lines.append(f"cafile {tls.cafile}")
            lines.append("tls_version tlsv1.2")
            if tls.require_certificate:
                lines.append("require_certificate true")
            if tls.use_identity_as_username:
                lines.append("use_identity_as_username true")
        return "\n".join(lines) + "\n"

    async def _start_mosquitto(self) -> None:
        assert self._binary is not None
        if self._workdir is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="treadmilld-broker-")
        workdir = Path(self._workdir.name)
        restart = self.port != 0
        last_log = ""
        for _attempt in range(_START_ATTEMPTS):
            if not restart:
                self.port = self._fixed_port or free_port()
                if self._tls is not None:
                    self.tls_port = free_port()
            conf = workdir / "mosquitto.conf"
            conf.write_text(self._mosquitto_config(workdir))
            # Popen returns at once and we poll it: works whatever loop later stops the broker.
            process = subprocess.Popen(  # noqa: ASYNC220, S603 - our own binary and config
                [str(self._binary), "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            self._process = process
            if await self._await_ready(process):
                return
            await self.stop(kill=True)
            last_log = self.log_text
            if restart or self._fixed_port:
                # Same port wanted (an outage test): it may still be in use, retry shortly.
                await asyncio.sleep(0.05)
        raise BrokerStartError(
            f"mosquitto did not answer CONNECT after {_START_ATTEMPTS} attempts; its log:\n"
            f"{last_log}"
        )

    async def _await_ready(self, process: subprocess.Popen[bytes]) -> bool:
        try:
            async with asyncio.timeout(_READY_TIMEOUT_S):
                while process.poll() is None:
                    if await mqtt_ready(self.host, self.port):
                        return True
                    await asyncio.sleep(_PROBE_INTERVAL_S)
        except TimeoutError:
            return False
        return False  # exited early (port taken by someone else): retry

    # -- amqtt ----------------------------------------------------------------------------

    async def _start_amqtt(self) -> None:
        try:
            from amqtt.broker import Broker  # noqa: PLC0415 - heavy, optional, demo-only
        except ImportError as error:
            raise BrokerUnavailableError(
                "no broker available: install mosquitto (apt-get install mosquitto), or the "
                "in-process fallback with `uv sync` / `pip install treadmilld[demo-broker]`"
            ) from error
        restart = self.port != 0
        last_error: Exception | None = None
        for _attempt in range(_START_ATTEMPTS):
            if not restart:
                self.port = self._fixed_port or free_port()
            config = {
                "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                # Replacing `plugins` also drops amqtt's $SYS and packet-logger plugins.
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
                },
            }
            broker = Broker(config)
            try:
                await broker.start()
            except Exception as error:  # noqa: BLE001 - amqtt wraps bind errors variously
                last_error = error
                await asyncio.sleep(0.05)
                continue
            self._amqtt = broker
            async with asyncio.timeout(_READY_TIMEOUT_S):
                while not await mqtt_ready(self.host, self.port):  # noqa: ASYNC110 - polling
                    await asyncio.sleep(_PROBE_INTERVAL_S)
            return
        raise BrokerStartError(f"amqtt did not start on 127.0.0.1: {last_error}")
