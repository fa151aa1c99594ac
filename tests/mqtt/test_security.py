"""docs/gym-broker.md against a real mosquitto: logins, the per-treadmill ACL, TLS."""

from __future__ import annotations

import re
import ssl
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from structlog.testing import capture_logs
from treadmilld_broker import EmbeddedBroker

from tests.support.broker import make_certificates, secured_mosquitto
from tests.support.riders import WallClock, rider_service
from treadmilld.mqtt import connection_options
from treadmilld.mqtt.broker_hints import STRICT_X509_HINT
from treadmilld.mqtt.config import MqttSettings, MqttTlsSettings
from treadmilld.mqtt.link import reconnect_hint
from treadmilld.store.api import open_store, sqlite_url

from .client import Observer, eventually, running_bridge, running_bridge_unready
from .doubles import RecordingTreadmill

BASE = "treadmilld"
GYM_DOC = Path(__file__).parents[2] / "docs" / "gym-broker.md"
# Only for tests whose point is a failed TLS handshake: see `tls_refusal`.
PAHO_TLS_FAILURE_LEAK = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)
USERS = {"treadmilld": "daemon-pw", "frontdesk": "desk-pw", "tm01": "tm01-pw", "tm02": "tm02-pw"}


def gym_acl() -> str:
    """The ACL exactly as docs/gym-broker.md tells a gym to install it."""
    blocks: list[str] = re.findall(r"```text\n(.*?)```", GYM_DOC.read_text(), flags=re.DOTALL)
    acl = [block for block in blocks if block.startswith("# /etc/mosquitto/acl")]
    assert len(acl) == 1, "docs/gym-broker.md must hold exactly one ACL block"
    return acl[0]


async def test_per_treadmill_login_commands_only_its_own_treadmill(tmp_path: Path) -> None:
    tm01, tm02 = RecordingTreadmill("tm01"), RecordingTreadmill("tm02")
    async with (
        secured_mosquitto(tmp_path, users=USERS, acl=gym_acl()) as broker,
        running_bridge(
            broker, {"tm01": tm01, "tm02": tm02}, username="treadmilld", password="daemon-pw"
        ),
        Observer(broker, username="tm01", password="tm01-pw") as tablet,
        Observer(broker, username="frontdesk", password="desk-pw") as desk,
    ):
        await tablet.subscribe(f"{BASE}/#")  # granted, but only tm01's topics are delivered
        await desk.subscribe(f"{BASE}/+/response/#")
        # tm01's tablet tries to stop the neighbour's belt: the broker drops it.
        await tablet.publish(f"{BASE}/tm02/set", {"command": "stop"})
        await tablet.publish(f"{BASE}/tm02/request/emergency_stop", {"transaction": "evil"})
        # ...and may spoof neither tm02's nor its own state.
        await tablet.publish(f"{BASE}/tm01/state", '{"phase": "finished"}', retain=True)
        # The front desk's request comes after both on the daemon's one connection, so once
        # tm02 has answered it, anything from the tablet would have run before.
        reply = await desk.request(f"{BASE}/tm02/request/pause", transaction="desk")
        own = await tablet.request(
            f"{BASE}/tm01/request/start", {"profile": "hill_30"}, transaction="own"
        )
        own_state = await tablet.wait_for(f"{BASE}/tm01/state")
    assert reply["status"] == "ok"
    assert tm02.names() == ["pause"]
    assert own["status"] == "ok"
    assert tm01.names() == ["start_profile"]
    assert own_state.json()["treadmill_id"] == "tm01"
    assert tablet.matching(f"{BASE}/tm02/#") == []
    assert (
        tablet.matching(f"{BASE}/tm01/state", lambda m: m.payload == b'{"phase": "finished"}') == []
    )


async def test_anonymous_and_wrong_password_are_refused(tmp_path: Path) -> None:
    async with secured_mosquitto(tmp_path, users=USERS, acl=gym_acl()) as broker:
        with pytest.raises(aiomqtt.MqttError):
            async with Observer(broker):
                pass
        with pytest.raises(aiomqtt.MqttError):
            async with Observer(broker, username="tm01", password="guess"):
                pass


async def test_daemon_password_from_systemd_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "mqtt-password").write_text("daemon-pw\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    async with (
        secured_mosquitto(tmp_path / "broker", users=USERS, acl=gym_acl()) as broker,
        running_bridge(
            broker,
            {"tm01": RecordingTreadmill("tm01")},
            username="treadmilld",
            password_file=Path("mqtt-password"),
        ) as bridge,
    ):
        assert bridge.connected


async def tls_refusal(broker: EmbeddedBroker, ca: Path) -> str:
    """Connect over TLS as the front desk; returns why it failed ("connected" if it did not).

    paho 2.2 does not close its socket when the TLS handshake fails (`_ssl_wrap_socket`
    leaves it to the garbage collector), which pytest reports as an unclosed-socket
    ResourceWarning; tests using this carry `PAHO_TLS_FAILURE_LEAK`.
    """
    outcome = "connected"
    client = Observer(
        broker,
        port=broker.tls_port,
        username="frontdesk",
        password="desk-pw",
        tls_context=_client_tls(ca),
        operation_timeout_s=1.0,  # a refused client certificate shows as a missing CONNACK
    )
    try:
        async with client:
            pass
    except aiomqtt.MqttError as error:
        outcome = str(error)
    return outcome


def _client_tls(ca: Path) -> ssl.SSLContext:
    """A client context verifying as Python 3.13 does by default, on every interpreter."""
    context = ssl.create_default_context(cafile=str(ca))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


@pytest.fixture
def strict_daemon_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon verifies the broker strictly, as it does on Python 3.13 (where
    `ssl.create_default_context` sets VERIFY_X509_STRICT), also on 3.11 and 3.12."""
    make_context = connection_options.tls_context

    def strict(settings: MqttSettings) -> ssl.SSLContext | None:
        context = make_context(settings)
        if context is not None:
            context.verify_flags |= ssl.VERIFY_X509_STRICT
        return context

    monkeypatch.setattr(connection_options, "tls_context", strict)


@PAHO_TLS_FAILURE_LEAK
@pytest.mark.usefixtures("strict_daemon_tls")
async def test_tls_listener_with_ca_from_config(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs")
    treadmill = RecordingTreadmill("tm01")
    async with secured_mosquitto(
        tmp_path / "broker", users=USERS, acl=gym_acl(), certificates=certs
    ) as broker:
        assert broker.tls_port is not None
        async with (
            running_bridge(
                broker,
                {"tm01": treadmill},
                port=broker.tls_port,
                username="treadmilld",
                password="daemon-pw",
                tls=MqttTlsSettings(ca_file=certs.ca_cert),
            ),
            Observer(
                broker,
                port=broker.tls_port,
                username="frontdesk",
                password="desk-pw",
                tls_context=_client_tls(certs.ca_cert),
            ) as desk,
        ):
            await desk.subscribe(f"{BASE}/tm01/response/#")
            reply = await desk.request(f"{BASE}/tm01/request/pause", transaction="tls")
        # A client trusting some other CA must not get in (no man in the middle either).
        refusal = await tls_refusal(broker, certs.other_ca_cert)
    assert "CERTIFICATE_VERIFY_FAILED" in refusal
    assert reply["status"] == "ok"
    assert treadmill.names() == ["pause"]


@PAHO_TLS_FAILURE_LEAK
@pytest.mark.usefixtures("strict_daemon_tls")
async def test_mutual_tls_client_certificate_is_the_login(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs", client_cn="treadmilld")
    async with (
        secured_mosquitto(
            tmp_path / "broker",
            users=USERS,
            acl=gym_acl(),
            certificates=certs,
            require_client_certificate=True,
        ) as broker,
    ):
        assert broker.tls_port is not None
        async with running_bridge(
            broker,
            {"tm01": RecordingTreadmill("tm01")},
            port=broker.tls_port,
            tls=MqttTlsSettings(
                ca_file=certs.ca_cert, cert_file=certs.client_cert, key_file=certs.client_key
            ),
        ) as bridge:
            # CN=treadmilld is the username: the ACL let it subscribe and announce.
            async with Observer(broker, username="frontdesk", password="desk-pw") as desk:
                await desk.subscribe(f"{BASE}/tm01/state")
                state = await desk.wait_for(f"{BASE}/tm01/state")
            assert bridge.connected
        # Without a client certificate the TLS handshake is refused.
        refusal = await tls_refusal(broker, certs.ca_cert)
    assert refusal != "connected"
    assert state.json()["treadmill_id"] == "tm01"


@PAHO_TLS_FAILURE_LEAK
@pytest.mark.usefixtures("strict_daemon_tls")
async def test_ca_from_the_usual_recipe_is_refused_with_a_hint_to_the_gym_recipe(
    tmp_path: Path,
) -> None:
    # `openssl req -x509` with the stock openssl.cnf: a CA without keyUsage. Python 3.11 takes
    # it, Python 3.13 (Raspberry Pi OS Trixie) does not; the log must say why and what to do.
    certs = make_certificates(tmp_path / "certs", legacy_ca=True)
    with capture_logs() as logs:
        async with (
            secured_mosquitto(
                tmp_path / "broker", users=USERS, acl=gym_acl(), certificates=certs
            ) as broker,
            running_bridge_unready(
                broker,
                port=broker.tls_port,
                username="treadmilld",
                password="daemon-pw",
                tls=MqttTlsSettings(ca_file=certs.ca_cert),
                reconnect_initial_s=0.02,
                reconnect_max_s=0.1,
            ) as bridge,
        ):

            def failures() -> list[MutableMapping[str, Any]]:
                return [entry for entry in logs if entry["event"] == "mqtt_connect_failed"]

            await eventually(lambda: len(failures()) >= 1)
            assert not bridge.connected
    assert "CA cert does not include key usage extension" in failures()[0]["error"]
    assert failures()[0]["hint"] == STRICT_X509_HINT


@pytest.mark.parametrize(
    "reason",
    [
        "CA cert does not include key usage extension",
        "Basic Constraints of CA cert not marked critical",
        "Missing Authority Key Identifier",
        "Missing Subject Key Identifier",
    ],
)
def test_strict_verification_failures_point_at_the_ca_recipe(reason: str) -> None:
    settings = MqttSettings.from_url("mqtts://gym-pi.local")
    error = aiomqtt.MqttError(
        f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {reason} (_ssl.c:1020)"
    )
    hint = reconnect_hint(settings, error)
    assert hint == STRICT_X509_HINT
    assert "Python 3.13" in hint
    assert "docs/gym-broker.md" in hint


def test_other_certificate_failures_keep_the_ca_file_hint() -> None:
    settings = MqttSettings.from_url("mqtts://gym-pi.local")
    error = aiomqtt.MqttError(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
        "unable to get local issuer certificate (_ssl.c:1020)"
    )
    assert "mqtt.tls.ca_file" in reconnect_hint(settings, error)


async def test_only_the_therapist_login_confirms_or_declines_and_tablets_never_read_progress(
    tmp_path: Path,
) -> None:
    """The gym ACL's rider rules: a `program_confirm` or `program_decline` from the front desk
    never reaches the daemon, the therapist's does; a treadmill's tablet never sees a rider's
    progress."""
    users = {**USERS, "therapist": "pt-pw"}
    async with (
        await open_store(sqlite_url(tmp_path)) as store,
        secured_mosquitto(tmp_path / "broker", users=users, acl=gym_acl()) as broker,
        running_bridge(
            broker,
            {"tm01": RecordingTreadmill("tm01")},
            username="treadmilld",
            password="daemon-pw",
            riders=rider_service(store, tmp_path / "programs", WallClock()),
        ),
        Observer(broker, username="frontdesk", password="desk-pw") as desk,
        Observer(broker, username="therapist", password="pt-pw") as therapist,
        Observer(broker, username="tm01", password="tm01-pw") as tablet,
    ):
        await tablet.subscribe(f"{BASE}/#")
        await desk.subscribe(f"{BASE}/#")
        await therapist.subscribe(f"{BASE}/bridge/+/response/#", f"{BASE}/riders/+/progress")
        created = await desk.request(
            f"{BASE}/bridge/test/request/rider_create",
            {"rider_id": "r-17", "display_name": "Anna", "body_weight_kg": 64},
        )
        assert created["status"] == "ok", created
        await desk.wait_for(f"{BASE}/riders/r-17/progress")
        await therapist.wait_for(f"{BASE}/riders/r-17/progress")

        answer = {"rider_id": "r-17", "therapist": "pt-anna"}
        for action in ("program_confirm", "program_decline"):
            await desk.publish(
                f"{BASE}/bridge/test/request/{action}", {**answer, "transaction": "desk"}
            )
        # The desk's next request follows its dropped ones on the same connection: once it is
        # answered, they would have been answered before it, had they arrived.
        assert (await desk.request(f"{BASE}/bridge/test/request/rider_list"))["status"] == "ok"
        confirmed = await therapist.request(f"{BASE}/bridge/test/request/program_confirm", answer)
        declined = await therapist.request(f"{BASE}/bridge/test/request/program_decline", answer)
    # The therapist's answers arrived (r-17 follows no program: nothing to confirm).
    assert confirmed["code"] == "nothing_to_confirm"
    assert declined["code"] == "nothing_to_confirm"
    for action in ("program_confirm", "program_decline"):
        desks = desk.matching(
            f"{BASE}/bridge/+/response/{action}", lambda m: m.json()["transaction"] == "desk"
        )
        assert desks == []
    assert tablet.matching(f"{BASE}/riders/#") == []
    assert tablet.matching(f"{BASE}/bridge/+/response/#") == []
