"""The MQTT interface: topic contract, command validation, Home Assistant discovery.

aiomqtt is imported in exactly one module, `treadmilld.mqtt.link`, so a move to aiomqtt 3
touches one file.
"""

from treadmilld.mqtt.config import MqttSettings, MqttTlsSettings

__all__ = ["MqttSettings", "MqttTlsSettings"]
