"""Real brokers for the MQTT tests."""

from tests.support.broker import mosquitto_broker, mqtt_broker

__all__ = ["mosquitto_broker", "mqtt_broker"]
