"""A real broker for the daemon's subprocess tests."""

from tests.support.broker import mqtt_broker

__all__ = ["mqtt_broker"]
