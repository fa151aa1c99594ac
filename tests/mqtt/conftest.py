"""Real brokers for the MQTT tests."""

from tests.support.broker import mosquitto_broker, mqtt_broker
from tests.support.history_state import migrated_database, migrated_history

__all__ = ["migrated_database", "migrated_history", "mosquitto_broker", "mqtt_broker"]
