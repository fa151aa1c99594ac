"""A real PostgreSQL server for the store tests, started by the tests in a temporary folder on a
free 127.0.0.1 port: one server per test session, a fresh database per test.

The binaries are Debian's (`apt-get install postgresql`: /usr/lib/postgresql/<major>/bin), else
the ones the `pgserver` wheel carries (a dev dependency, on CPython 3.11 and 3.12 for x86_64
Linux and macOS), so a fresh machine runs the suite with plain `uv run pytest`. PostgreSQL
refuses to run as root ("root execution of the PostgreSQL server is not permitted"), and CI runs
as root: the server then runs as the `postgres` user (or `nobody` when there is none) through
util-linux's `setpriv`, with the folder handed over to that user.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DEBIAN_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"  # the server's own role (initdb -U), not a system user
NOBODY_UID = 65534  # Debian's nobody:nogroup, for a root machine without a postgres user
NOT_INSTALLED = (
    "the store tests run against a real PostgreSQL server and found none: no "
    f"{DEBIAN_ROOT}/<major>/bin/initdb (Debian's package) and no `pgserver` wheel (a dev "
    "dependency on CPython 3.11 and 3.12 for x86_64 Linux and macOS). Install it: "
    "apt-get install postgresql"
)


def debian_bin_dir() -> Path | None:
    """The newest installed major version's binaries."""
    found = [path.parent for path in DEBIAN_ROOT.glob("*/bin/initdb")]
    found.sort(key=lambda bin_dir: int(bin_dir.parent.name) if bin_dir.parent.name.isdigit() else 0)
    return found[-1] if found else None


def wheel_install_dir() -> Path | None:
    """pgserver's bundled installation (its bin/, lib/, share/), without importing pgserver."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    return install if (install / "bin" / "initdb").exists() else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class _RunAs:
    uid: int
    gid: int

    @classmethod
    def unprivileged(cls) -> _RunAs:
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            return cls(NOBODY_UID, NOBODY_UID)
        return cls(entry.pw_uid, entry.pw_gid)

    def prefix(self) -> list[str]:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail(
                "running as root, the PostgreSQL test server needs util-linux's setpriv to "
                "drop to an unprivileged user: apt-get install util-linux"
            )
        return [setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--"]


class PostgresServer:
    def __init__(self, bin_dir: Path, root: Path, run_as: _RunAs | None) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.port = _free_port()
        self._data = root / "data"
        self._run_as = run_as
        self._names = itertools.count(1)
        self.stopped = False

    def _server_command(self, program: str, *args: str) -> list[str]:
        prefix = self._run_as.prefix() if self._run_as is not None else []
        return [*prefix, str(self.bin_dir / program), *args]

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C"},
            check=False,
        )
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(f"{command} failed:\n{done.stdout}{done.stderr}\n{tail}")

    def start(self) -> None:
        self._run(
            self._server_command(
                "initdb", "-D", str(self._data), "-U", SUPERUSER, "--auth=trust",
                "--no-locale", "--encoding=UTF8", "--no-sync",
            )
        )  # fmt: skip
        # Durability settings off: these tests kill the client, never the server, and a
        # throwaway server need not sync; the socket lives in our folder, not /run/postgresql.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            self._server_command(
                "pg_ctl", "start", "-w", "-t", "30", "-D", str(self._data),
                "-l", str(self.root / "server.log"), "-o", options,
            )
        )  # fmt: skip

    def stop(self) -> None:
        self._run(self._server_command("pg_ctl", "stop", "-m", "fast", "-D", str(self._data)))
        self.stopped = True

    def start_again_if_stopped(self) -> None:
        """For a test's `finally`: the shared server runs again for the tests after it."""
        if self.stopped:
            self.start_again()

    def start_again(self) -> None:
        """After `stop`: the same server, its databases and port, running again."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            self._server_command(
                "pg_ctl", "start", "-w", "-t", "30", "-D", str(self._data),
                "-l", str(self.root / "server.log"), "-o", options,
            )
        )  # fmt: skip
        self.stopped = False

    def create_database(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        name = f"test_{next(self._names)}"
        self._run(
            [str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", SUPERUSER, name]
        )  # fmt: skip
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{name}"


def _copy_wheel_install(install: Path, root: Path) -> Path:
    """pgserver's binaries find their libraries at $ORIGIN/../../../pgserver.libs (their RPATH);
    copied with that layout into a folder the unprivileged user can reach (a virtualenv under
    /root cannot be)."""
    target = root / "pgserver" / "pginstall"
    for part in ("bin", "lib", "share"):
        shutil.copytree(install / part, target / part, symlinks=True)
    libs = install.parent.parent / "pgserver.libs"
    if libs.exists():
        shutil.copytree(libs, root / "pgserver.libs", symlinks=True)
    return target / "bin"


def _chown_tree(root: Path, run_as: _RunAs) -> None:
    os.chown(root, run_as.uid, run_as.gid)
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            os.chown(Path(folder) / name, run_as.uid, run_as.gid, follow_symlinks=False)


# Set TREADMILLD_TEST_POSTGRES=wheel to run on the pgserver wheel's binaries even where Debian's
# are installed (what a fresh machine gets), or =debian to insist on Debian's.
POSTGRES_CHOICE_ENV = "TREADMILLD_TEST_POSTGRES"


def _binaries() -> tuple[Path | None, Path | None]:
    """(Debian's bin folder, or else pgserver's installation); fails the test when neither."""
    choice = os.environ.get(POSTGRES_CHOICE_ENV, "auto")
    if choice not in ("auto", "debian", "wheel"):
        pytest.fail(f"{POSTGRES_CHOICE_ENV}={choice!r}: use auto, debian or wheel")
    bin_dir = debian_bin_dir() if choice != "wheel" else None
    wheel = wheel_install_dir() if bin_dir is None and choice != "debian" else None
    if bin_dir is None and wheel is None:
        pytest.fail(NOT_INSTALLED)
    return bin_dir, wheel


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    bin_dir, wheel = _binaries()
    run_as = _RunAs.unprivileged() if os.geteuid() == 0 else None
    # Not pytest's tmp_path: its folder is private to root, and the server's user must reach it.
    root = Path(tempfile.mkdtemp(prefix="treadmilld-postgres-"))
    try:
        if wheel is not None:
            bin_dir = _copy_wheel_install(wheel, root) if run_as is not None else wheel / "bin"
        if run_as is not None:
            _chown_tree(root, run_as)
        assert bin_dir is not None
        server = PostgresServer(bin_dir, root, run_as)
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
