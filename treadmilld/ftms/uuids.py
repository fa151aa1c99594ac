"""Full 128-bit UUIDs (lowercase, as bleak and Bumble print them) of every GATT service and
characteristic the daemon speaks: FTMS, Device Information, the Heart Rate Service."""

from __future__ import annotations

from treadmilld.ftms.errors import CodecError

# Bluetooth Core Specification Vol 3, Part B, §2.5.1: 16-bit UUIDs sit inside the Base UUID.
_BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def uuid16(short: int) -> str:
    """The full 128-bit form of a 16-bit SIG UUID, e.g. `uuid16(0x1826)`."""
    if not 0 <= short <= 0xFFFF:
        raise CodecError("UUID", f"{short!r} is not a 16-bit UUID; pass a value in 0..0xffff")
    return f"0000{short:04x}{_BASE_UUID_SUFFIX}"


# Fitness Machine Service v1.0.1, §4 (characteristics of service 0x1826).
FTMS_SERVICE_UUID = uuid16(0x1826)
FEATURE_UUID = uuid16(0x2ACC)
TREADMILL_DATA_UUID = uuid16(0x2ACD)
TRAINING_STATUS_UUID = uuid16(0x2AD3)
SPEED_RANGE_UUID = uuid16(0x2AD4)
INCLINATION_RANGE_UUID = uuid16(0x2AD5)
CONTROL_POINT_UUID = uuid16(0x2AD9)
MACHINE_STATUS_UUID = uuid16(0x2ADA)

# Device Information Service v1.1 (0x180A) and its string characteristics.
DEVICE_INFORMATION_SERVICE_UUID = uuid16(0x180A)
MANUFACTURER_NAME_UUID = uuid16(0x2A29)
MODEL_NUMBER_UUID = uuid16(0x2A24)
SERIAL_NUMBER_UUID = uuid16(0x2A25)
HARDWARE_REVISION_UUID = uuid16(0x2A27)
FIRMWARE_REVISION_UUID = uuid16(0x2A26)
SOFTWARE_REVISION_UUID = uuid16(0x2A28)

# Heart Rate Service v1.0 (Bluetooth Assigned Numbers: service 0x180D; Heart Rate Measurement
# 0x2A37, Body Sensor Location 0x2A38, Heart Rate Control Point 0x2A39).
HEART_RATE_SERVICE_UUID = uuid16(0x180D)
HEART_RATE_MEASUREMENT_UUID = uuid16(0x2A37)
BODY_SENSOR_LOCATION_UUID = uuid16(0x2A38)

# Client Characteristic Configuration Descriptor (Core Vol 3, Part G, §3.3.3.3).
CCCD_UUID = uuid16(0x2902)
