"""The demo/test broker: real CONNACK readiness, restarts on the same port, fallback."""

from __future__ import annotations

import pytest
from treadmilld_broker import (
    BrokerPortInUseError,
    EmbeddedBroker,
    free_port,
    mqtt_ready,
)

from tests.support.broker import mosquitto_available, reap_amqtt_leftovers

from .client import Observer


@pytest.mark.parametrize("prefer", ["mosquitto", "amqtt"])
async def test_broker_serves_mqtt_and_restarts_on_its_port(prefer: str) -> None:
    if prefer == "mosquitto" and not mosquitto_available():
        pytest.skip("mosquitto is not installed")
    async with EmbeddedBroker(prefer=prefer) as broker:  # type: ignore[arg-type]
        assert broker.kind == prefer
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        assert await mqtt_ready(broker.host, broker.port)
        port = broker.port
        await broker.stop(kill=True)
        assert not await mqtt_ready(broker.host, port)
        await broker.start()
        assert broker.port == port
        async with Observer(broker) as client:
            await client.subscribe("probe/#")
            await client.publish("probe/x", "hello")
            message = await client.wait_for("probe/x")
    if prefer == "amqtt":
        reap_amqtt_leftovers()
    assert message.text == "hello"
    assert not await mqtt_ready("127.0.0.1", port)


async def test_amqtt_fallback_refuses_what_only_mosquitto_can_do() -> None:
    from treadmilld_broker import BrokerUnavailableError, TlsListener

    with pytest.raises(BrokerUnavailableError, match="mosquitto"):
        EmbeddedBroker(prefer="amqtt", allow_anonymous=False)
    with pytest.raises(BrokerUnavailableError, match="mosquitto"):
        EmbeddedBroker(prefer="amqtt", tls=TlsListener(certfile="c", keyfile="k"))  # type: ignore[arg-type]


async def test_a_fixed_port_another_broker_holds_is_refused_not_borrowed(
    mqtt_broker: EmbeddedBroker,
) -> None:
    # Without the check the readiness probe was answered by the broker already there.
    taken = EmbeddedBroker(port=mqtt_broker.port)
    with pytest.raises(BrokerPortInUseError, match=f"port {mqtt_broker.port} on 127.0.0.1"):
        await taken.start()
    assert taken.port == 0


async def test_a_fixed_free_port_is_used() -> None:
    port = free_port()
    async with EmbeddedBroker(port=port) as broker:
        assert broker.port == port
        assert await mqtt_ready(broker.host, port)
