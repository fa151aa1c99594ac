"""A bridge in its own process, so a test can SIGKILL it: `python -m tests.mqtt.bridge_process
<mqtt-url>`. Prints `ready` once connected and subscribed."""

from __future__ import annotations

import asyncio
import sys

from treadmilld.mqtt.bridge import MqttBridge
from treadmilld.mqtt.config import MqttSettings

from .client import INSTANCE
from .doubles import RecordingTreadmill, StaticCatalog


async def main(url: str) -> None:
    bridge = MqttBridge(
        MqttSettings.from_url(url, client_id="treadmilld-killed", instance=INSTANCE),
        {"tm01": RecordingTreadmill("tm01")},
        StaticCatalog(),
        version="9.9.9",
    )
    async with asyncio.TaskGroup() as group:
        group.create_task(bridge.run())
        await bridge.wait_ready()
        sys.stdout.write("ready\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
