"""A real broker for the daemon's subprocess tests."""

from tests.support.broker import mqtt_broker
from tests.support.history_state import migrated_database, migrated_history

__all__ = ["migrated_database", "migrated_history", "mqtt_broker"]
