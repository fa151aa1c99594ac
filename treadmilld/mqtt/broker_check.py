"""`treadmilld diagnose`'s broker round trip: connect with the daemon's login, subscribe, publish
and receive the message back, each step timed, and on a failure the step, why and what to fix.

The client is `treadmilld.mqtt.link`'s `BrokerProbe` (aiomqtt stays in that one module); this
module decides the steps, their bounds and the words.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import ssl
import time
from dataclasses import dataclass

from treadmilld.mqtt.config import MqttCredentialError, MqttSettings
from treadmilld.mqtt.link import BrokerProbe, MqttError, broker_problem


@dataclass(frozen=True, slots=True)
class BrokerCheck:
    """What `check_broker` saw: each step's time, or the step that failed, why, and what
    to fix."""

    topic: str
    connect_ms: float | None = None
    subscribe_ms: float | None = None
    round_trip_ms: float | None = None
    failed_step: str | None = None  # "connect", "subscribe" or "round trip"
    error: str | None = None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed_step is None


def _ms(since: float) -> float:
    # A duration printed for the operator, not a deadline: the performance counter is the
    # finest real clock, and a diagnosis runs in real time only.
    return round((time.perf_counter() - since) * 1000.0, 1)


async def check_broker(settings: MqttSettings, *, timeout_s: float) -> BrokerCheck:
    """Connect with the daemon's login, subscribe to a private topic under this instance's
    bridge topics, publish to it and wait for the message to come back, each step bounded
    by `timeout_s`. Never raises for a broker problem: the result says what went wrong.

    The client id is the daemon's plus a random suffix, so a running daemon is not thrown
    off (unless the broker uses the login as client id: then it reconnects at once)."""
    token = secrets.token_hex(4)
    topic = f"{settings.base_topic}/bridge/{settings.instance}/diagnose/{token}"
    login = settings.username or "(anonymous)"
    acl_hint = (
        f"its ACL probably keeps login {login} from writing or reading "
        f"{settings.base_topic}/bridge/{settings.instance}/#"
    )
    result = BrokerCheck(topic)
    step = "connect"
    try:
        probe = BrokerProbe(settings, identifier=f"{settings.client_id}-diagnose-{token}")
        started = time.perf_counter()
        async with asyncio.timeout(timeout_s):
            await probe.connect()
        try:
            result = dataclasses.replace(result, connect_ms=_ms(started))
            step = "subscribe"
            started = time.perf_counter()
            async with asyncio.timeout(timeout_s):
                refused = await probe.subscribe(topic)
            result = dataclasses.replace(result, subscribe_ms=_ms(started))
            if refused:
                return dataclasses.replace(
                    result,
                    failed_step=step,
                    error=f"SUBACK {refused[0]}",
                    hint=f"the broker refused the subscription: {acl_hint}",
                )
            step = "round trip"
            started = time.perf_counter()
            async with asyncio.timeout(timeout_s):
                await probe.publish(topic, token)
                await probe.receive(topic, token)
            result = dataclasses.replace(result, round_trip_ms=_ms(started))
        finally:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await probe.disconnect()
    except TimeoutError:
        if step == "round trip":
            hint = (
                f"the broker took the message but did not deliver it back within "
                f"{timeout_s:g} s: {acl_hint}"
            )
        else:
            hint = broker_problem(settings, MqttError("Operation timed out"))
        return dataclasses.replace(
            result, failed_step=step, error=f"no answer within {timeout_s:g} s", hint=hint
        )
    except MqttError as error:
        return dataclasses.replace(
            result, failed_step=step, error=str(error), hint=broker_problem(settings, error)
        )
    except MqttCredentialError as error:
        # An unreadable password or TLS file: found before any network traffic.
        return dataclasses.replace(
            result, failed_step=step, error=str(error), hint="the error names what to fix"
        )
    except (ssl.SSLError, OSError) as error:
        return dataclasses.replace(
            result,
            failed_step=step,
            error=str(error),
            hint="check that mqtt.tls.ca_file, cert_file and key_file are readable PEM files "
            "and that the key belongs to the certificate",
        )
    return result
