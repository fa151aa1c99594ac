"""Real MQTT brokers for tests (never a mock).

Import the fixtures into a conftest:
    from tests.support.broker import mqtt_broker  # noqa: F401
`mqtt_broker` is mosquitto when installed, else in-process amqtt; `mosquitto_broker` is for
tests that need exact retained or MQTT v5 semantics and is skipped without mosquitto.
`secured_mosquitto(...)` starts mosquitto with a password file, an ACL and optionally TLS
(certificates generated at test time with the `openssl` CLI, from docs/gym-broker.md's CA
recipe).
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import shutil
import subprocess
import warnings
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from treadmilld_broker import EmbeddedBroker, TlsListener, find_mosquitto

AMQTT_RETAINED_BUG = (
    "needs mosquitto: the amqtt 0.12.1 fallback delivers a retained message twice to a "
    "client subscribing to a topic another session subscribed to, pushes retained messages "
    "matching other sessions' subscriptions on every CONNECT, cannot be killed mid-session, "
    "and refuses MQTT v5; install mosquitto (apt-get install mosquitto) to run this test"
)


def mosquitto_available() -> bool:
    return find_mosquitto() is not None


# Set TREADMILLD_TEST_BROKER=amqtt to run the `mqtt_broker` tests on the in-process fallback
# even where mosquitto is installed (what a developer laptop without mosquitto gets).
BROKER_CHOICE_ENV = "TREADMILLD_TEST_BROKER"


@pytest.fixture
async def mqtt_broker() -> AsyncIterator[EmbeddedBroker]:
    """A fresh broker per test on a free 127.0.0.1 port (mosquitto ~6 ms, else amqtt)."""
    choice = os.environ.get(BROKER_CHOICE_ENV, "auto")
    if choice not in ("auto", "mosquitto", "amqtt"):
        raise ValueError(f"{BROKER_CHOICE_ENV}={choice!r}: use auto, mosquitto or amqtt")
    async with EmbeddedBroker(prefer=choice) as broker:  # type: ignore[arg-type]
        yield broker
    if broker.kind == "amqtt":
        reap_amqtt_leftovers()


def reap_amqtt_leftovers() -> None:
    """amqtt 0.12.1 leaves server-side streams of disconnected clients for the garbage
    collector after `shutdown()`; collected later, when this test's loop is closed, they
    would surface as ResourceWarnings in whichever test runs next. Collect them now."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture
async def mosquitto_broker() -> AsyncIterator[EmbeddedBroker]:
    """mosquitto only: for exact retained delivery, Will timing and MQTT v5 properties."""
    if not mosquitto_available():
        pytest.skip(AMQTT_RETAINED_BUG)
    async with EmbeddedBroker(prefer="mosquitto") as broker:
        yield broker


@dataclass(frozen=True, slots=True)
class TestCertificates:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path  # a CA that signed nothing here: connecting with it must fail


# P-256 keys: as good as RSA here and generated in milliseconds, not hundreds of them.
_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")

GYM_DOC = Path(__file__).parents[2] / "docs" / "gym-broker.md"
# The names the tests connect to; the doc's recipe names a gym's Pi instead.
TEST_SERVER_SAN = "IP:127.0.0.1, DNS:localhost"

# What the usual `openssl req -x509` recipe gives with OpenSSL's stock openssl.cnf (its
# `v3_ca`): a CA with no keyUsage, which Python 3.13's strict verification refuses ("CA cert
# does not include key usage extension"). Pinned here so the result does not depend on the
# machine's openssl.cnf.
LEGACY_OPENSSL_CONFIG = f"""\
[ req ]
distinguished_name = req_dn
[ req_dn ]
[ ca_ext ]
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always, issuer
basicConstraints = critical, CA:true
[ broker_ext ]
subjectAltName = {TEST_SERVER_SAN}
[ client_ext ]
basicConstraints = CA:FALSE
"""


def gym_openssl_config(server_san: str = TEST_SERVER_SAN) -> str:
    """The OpenSSL config docs/gym-broker.md gives gyms for their CA, with the broker's
    subjectAltName replaced by `server_san` (the only line a gym edits)."""
    blocks: list[str] = re.findall(r"```ini\n(.*?)```", GYM_DOC.read_text(), flags=re.DOTALL)
    configs = [block for block in blocks if block.startswith("# treadmilld-ca.cnf")]
    assert len(configs) == 1, "docs/gym-broker.md must hold exactly one treadmilld-ca.cnf block"
    config, replaced = re.subn(
        r"(?m)^subjectAltName\s*=.*$", f"subjectAltName = {server_san}", configs[0]
    )
    assert replaced == 1, "treadmilld-ca.cnf must name the broker in one subjectAltName line"
    return config


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_certificates(
    directory: Path, client_cn: str = "tm01", *, legacy_ca: bool = False
) -> TestCertificates:
    """A CA, a server cert for 127.0.0.1/localhost and a client cert with CN `client_cn`,
    made with docs/gym-broker.md's recipe and config (so strict verification, Python 3.13's
    default, accepts them), or with `legacy_ca` the way the usual recipe makes them (refused
    by strict verification)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is needed to make test certificates; install openssl")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "treadmilld-ca.cnf"
    config.write_text(LEGACY_OPENSSL_CONFIG if legacy_ca else gym_openssl_config())
    for name in ("ca", "other-ca"):
        _openssl(
            "req", "-x509", "-config", config.name, "-extensions", "ca_ext",
            *_EC_KEY, "-nodes", "-days", "2",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN=treadmilld test {name}",
            cwd=directory,
        )  # fmt: skip
    for name, cn, extensions in (
        ("server", "localhost", "broker_ext"),
        ("client", client_cn, "client_ext"),
    ):
        _openssl(
            "req", "-config", config.name, *_EC_KEY, "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={cn}",
            cwd=directory,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", config.name, "-extensions", extensions,
            "-out", f"{name}.crt",
            cwd=directory,
        )  # fmt: skip
    return TestCertificates(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
        other_ca_cert=directory / "other-ca.crt",
    )


def write_password_file(path: Path, users: Mapping[str, str]) -> Path:
    """A mosquitto password file (hashed by `mosquitto_passwd`)."""
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not Path(tool).exists():
        pytest.skip("mosquitto_passwd is needed for auth tests; install mosquitto")
    path.write_text("")
    for user, password in users.items():
        subprocess.run([tool, "-b", str(path), user, password], check=True, timeout=30)
    return path


@contextlib.asynccontextmanager
async def secured_mosquitto(
    directory: Path,
    *,
    users: Mapping[str, str],
    acl: str,
    certificates: TestCertificates | None = None,
    require_client_certificate: bool = False,
) -> AsyncIterator[EmbeddedBroker]:
    """mosquitto with no anonymous access, a password file, an ACL and (optionally) a TLS
    listener on `broker.tls_port`, as docs/gym-broker.md configures a gym."""
    if not mosquitto_available():
        pytest.skip("security tests need mosquitto (amqtt's auth/ACL are not what gyms run)")
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a tmp_path, instant
    passwords = write_password_file(directory / "passwd", users)
    acl_file = directory / "acl"
    acl_file.write_text(acl)
    tls = None
    if certificates is not None:
        tls = TlsListener(
            certfile=certificates.server_cert,
            keyfile=certificates.server_key,
            cafile=certificates.ca_cert,
            require_certificate=require_client_certificate,
            use_identity_as_username=require_client_certificate,
        )
    broker = EmbeddedBroker(
        prefer="mosquitto",
        allow_anonymous=False,
        config_lines=(
            f"password_file {passwords}",
            f"acl_file {acl_file}",
        ),
        listener_options=("use_username_as_clientid true",),
        tls=tls,
    )
    async with broker:
        yield broker
