"""Advertising data as a radio stack hands it to bleak: raw AD structures (Core Supplement,
Part A) parsed into bleak's `AdvertisementData`."""

from __future__ import annotations

from bleak.backends.scanner import AdvertisementData
from bleak.uuids import normalize_uuid_16, normalize_uuid_str

# Advertising data types (Bluetooth Assigned Numbers, "Common Data Types").
_AD_INCOMPLETE_UUID16 = 0x02
_AD_COMPLETE_UUID16 = 0x03
_AD_INCOMPLETE_UUID32 = 0x04
_AD_COMPLETE_UUID32 = 0x05
_AD_INCOMPLETE_UUID128 = 0x06
_AD_COMPLETE_UUID128 = 0x07
_AD_SHORTENED_NAME = 0x08
_AD_COMPLETE_NAME = 0x09
_AD_TX_POWER = 0x0A
_AD_SERVICE_DATA_UUID16 = 0x16
_AD_SERVICE_DATA_UUID32 = 0x20
_AD_SERVICE_DATA_UUID128 = 0x21
_AD_MANUFACTURER_DATA = 0xFF


def parse_advertising_data(raw: bytes, rssi: int) -> AdvertisementData:
    """Build bleak's `AdvertisementData` from raw AD structures (Core Supplement, Part A).

    Malformed structures end the parse (what a radio stack does with a truncated PDU); what
    was read before them is kept.
    """
    local_name: str | None = None
    manufacturer_data: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    service_uuids: list[str] = []
    tx_power: int | None = None
    offset = 0
    while offset < len(raw):
        length = raw[offset]
        if length == 0 or offset + 1 + length > len(raw):
            break
        ad_type = raw[offset + 1]
        value = bytes(raw[offset + 2 : offset + 1 + length])
        offset += 1 + length
        if ad_type in (_AD_INCOMPLETE_UUID16, _AD_COMPLETE_UUID16):
            service_uuids += [
                normalize_uuid_16(int.from_bytes(value[i : i + 2], "little"))
                for i in range(0, len(value) - 1, 2)
            ]
        elif ad_type in (_AD_INCOMPLETE_UUID32, _AD_COMPLETE_UUID32):
            service_uuids += [
                normalize_uuid_str(f"{int.from_bytes(value[i : i + 4], 'little'):08x}")
                for i in range(0, len(value) - 3, 4)
            ]
        elif ad_type in (_AD_INCOMPLETE_UUID128, _AD_COMPLETE_UUID128):
            service_uuids += [
                _uuid128_from_le(value[i : i + 16]) for i in range(0, len(value) - 15, 16)
            ]
        elif ad_type in (_AD_SHORTENED_NAME, _AD_COMPLETE_NAME):
            if local_name is None or ad_type == _AD_COMPLETE_NAME:
                local_name = value.decode("utf-8", errors="replace")
        elif ad_type == _AD_TX_POWER and len(value) == 1:
            tx_power = int.from_bytes(value, "little", signed=True)
        elif ad_type == _AD_SERVICE_DATA_UUID16 and len(value) >= 2:
            service_data[normalize_uuid_16(int.from_bytes(value[:2], "little"))] = value[2:]
        elif ad_type == _AD_SERVICE_DATA_UUID32 and len(value) >= 4:
            uuid32 = int.from_bytes(value[:4], "little")
            service_data[normalize_uuid_str(f"{uuid32:08x}")] = value[4:]
        elif ad_type == _AD_SERVICE_DATA_UUID128 and len(value) >= 16:
            service_data[_uuid128_from_le(value[:16])] = value[16:]
        elif ad_type == _AD_MANUFACTURER_DATA and len(value) >= 2:
            manufacturer_data[int.from_bytes(value[:2], "little")] = value[2:]
    # Keep order, drop duplicates (a UUID may appear in both the 16- and 128-bit lists).
    unique_uuids = list(dict.fromkeys(service_uuids))
    return AdvertisementData(
        local_name=local_name,
        manufacturer_data=manufacturer_data,
        service_data=service_data,
        service_uuids=unique_uuids,
        tx_power=tx_power,
        rssi=rssi,
        platform_data=(raw,),
    )


def _uuid128_from_le(value: bytes) -> str:
    hex_be = value[::-1].hex()
    return f"{hex_be[:8]}-{hex_be[8:12]}-{hex_be[12:16]}-{hex_be[16:20]}-{hex_be[20:]}"
