"""Emergency-stop latency: MQTT publish -> Stop request at the treadmill's Control Point.

The floors are measured first, in the same run and through the same broker and simulator, so
the ratio says how much treadmilld adds on top of what the transport costs anyway.

    uv run python bench/estop.py [--stops N] [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import sys

from _broker import BrokerUnavailableError, mosquitto
from _floors import mqtt_hop_ms
from _stats import (
    Figure,
    PartMissingError,
    Summary,
    argument_parser,
    emit,
    not_available,
)


async def measure(stops: int, floor_n: int) -> tuple[list[Figure], str | None]:
    figures: list[Figure] = []
    with mosquitto() as broker:
        hop = Summary.of(await mqtt_hop_ms(broker.host, broker.port, floor_n))
        figures.append(
            Figure("estop", "floor: bare MQTT publish -> receive (QoS 1, mosquitto)", "ms", hop)
        )
        try:
            gatt = await _gatt_floor(floor_n)
        except PartMissingError as exc:
            return figures, str(exc)
        figures.extend(gatt)
        try:
            stop_figure = await _estop(broker.host, broker.port, stops, figures)
        except PartMissingError as exc:
            return figures, str(exc)
        figures.append(stop_figure)
    return figures, None


async def _gatt_floor(n: int) -> list[Figure]:
    raise PartMissingError("treadmilld_sim has not landed: no GATT floor")


async def _estop(host: str, port: int, stops: int, floors: list[Figure]) -> Figure:
    raise PartMissingError("the MQTT bridge and engine have not landed: no emergency-stop figure")


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--stops", type=int, default=500, help="emergency stops to time")
    args = parser.parse_args()
    stops = 50 if args.quick else args.stops
    floor_n = 100 if args.quick else 500
    try:
        figures, missing = asyncio.run(measure(stops, floor_n))
    except BrokerUnavailableError as exc:
        return not_available(str(exc))
    emit(figures, as_json=args.json)
    if missing is not None:
        return not_available(missing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
