"""Advertising data both ways: what a simulated treadmill sends (an advertisement and a scan
response), and raw AD structures (Core Supplement, Part A) parsed into bleak's
`AdvertisementData` as a radio stack hands them over."""

from __future__ import annotations

from bleak.backends.scanner import AdvertisementData
from bleak.uuids import normalize_uuid_16, normalize_uuid_str

from treadmilld.ftms import (
    FTMS_SERVICE_UUID,
    HEART_RATE_SERVICE_UUID,
    FtmsServiceData,
    MachineType,
    encode_ftms_service_data,
)

# Advertising data types (Bluetooth Assigned Numbers, "Common Data Types") and the
# 31-byte legacy advertising payload limit (Core Vol 6, Part B, 2.3.1.1).
_AD_FLAGS = 0x01
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
_LEGACY_ADVERTISING_MAX = 31
# LE General Discoverable, BR/EDR not supported.
_FLAGS_LE_GENERAL_DISCOVERABLE = 0x06


def _ad_structure(ad_type: int, value: bytes) -> bytes:
    return bytes((len(value) + 1, ad_type)) + value


_FTMS_SHORT = int(FTMS_SERVICE_UUID[4:8], 16).to_bytes(2, "little")


def _service_data(*, swapped: bool) -> bytes:
    service_data = encode_ftms_service_data(
        FtmsServiceData(available=True, machine_types=MachineType.TREADMILL)
    )
    if swapped:
        # `01 00 01`: the two machine-type bytes the wrong way round (a FitShow FS-BC11B7 report,
        # real-decks.md §2; pyftms `machine_type.py` accepts both orders for this reason).
        service_data = service_data[:1] + service_data[2:0:-1]
    return _ad_structure(_AD_SERVICE_DATA_UUID16, _FTMS_SHORT + service_data)


def _name_structure(name: str, room: int) -> bytes:
    encoded_name = name.encode("utf-8")
    if len(encoded_name) <= room - 2:
        return _ad_structure(_AD_COMPLETE_NAME, encoded_name)
    shortened = encoded_name[: room - 2].decode("utf-8", errors="ignore").encode("utf-8")
    return _ad_structure(_AD_SHORTENED_NAME, shortened)


def build_advertising_data(
    name: str, *, with_service_data: bool, service_data_swapped: bool = False
) -> bytes:
    """Flags, the 16-bit service list (0x1826), FTMS service data (FTMS §3) and the name."""
    payload = _ad_structure(_AD_FLAGS, bytes((_FLAGS_LE_GENERAL_DISCOVERABLE,)))
    payload += _ad_structure(_AD_COMPLETE_UUID16, _FTMS_SHORT)
    if with_service_data:
        payload += _service_data(swapped=service_data_swapped)
    return payload + _name_structure(name, _LEGACY_ADVERTISING_MAX - len(payload))


_HEART_RATE_SHORT = int(HEART_RATE_SERVICE_UUID[4:8], 16).to_bytes(2, "little")


def build_strap_advertising_data(name: str) -> bytes:
    """Flags, the 16-bit service list (0x180D) and the name: what a chest strap advertises (the
    Heart Rate Profile v1.0 §3.1.1 asks a sensor to list the Heart Rate Service UUID)."""
    payload = _ad_structure(_AD_FLAGS, bytes((_FLAGS_LE_GENERAL_DISCOVERABLE,)))
    payload += _ad_structure(_AD_COMPLETE_UUID16, _HEART_RATE_SHORT)
    return payload + _name_structure(name, _LEGACY_ADVERTISING_MAX - len(payload))


def build_advertising_payloads(
    name: str,
    *,
    with_service_data: bool,
    service_data_swapped: bool = False,
    name_and_service_data_in_scan_response: bool = False,
) -> tuple[bytes, bytes]:
    """The advertisement and the scan response a treadmill sends.

    By default everything is in the advertisement and the scan response is empty. A Urevo E1L
    puts only Flags and the 0x1826 list in the advertisement, and its name and FTMS service data
    in the scan response (blak3r/treadspan urevo-E1L captures), so a passive scanner sees neither.
    """
    if not name_and_service_data_in_scan_response:
        advertisement = build_advertising_data(
            name, with_service_data=with_service_data, service_data_swapped=service_data_swapped
        )
        return advertisement, b""
    advertisement = _ad_structure(_AD_FLAGS, bytes((_FLAGS_LE_GENERAL_DISCOVERABLE,)))
    advertisement += _ad_structure(_AD_COMPLETE_UUID16, _FTMS_SHORT)
    tail = _service_data(swapped=service_data_swapped) if with_service_data else b""
    scan_response = _name_structure(name, _LEGACY_ADVERTISING_MAX - len(tail)) + tail
    return advertisement, scan_response


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
