"""This instance's own requests, `<base>/bridge/<instance>/request/<action>`: health, info,
devices, the profile library, and changing that library at runtime (reload, upload).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog

from treadmilld.engine.api import (
    MAX_PROFILE_BYTES,
    ProfileCatalog,
    ProfileReload,
    ProfileStore,
    ProfileUploadRefusedError,
    TreadmillController,
)
from treadmilld.mqtt.inbound_checks import refuse_retained
from treadmilld.mqtt.messages import IncomingMessage
from treadmilld.mqtt.payloads import (
    BRIDGE_REQUEST_MODELS,
    PayloadError,
    UploadProfileRequest,
    parse_request,
    transaction_of,
)
from treadmilld.mqtt.publisher import Publisher
from treadmilld.mqtt.replies import Replies, Route
from treadmilld.mqtt.rider_requests import RiderRequests
from treadmilld.mqtt.topics import Topics

_log = structlog.get_logger(__name__)

# An upload's whole MQTT payload may be this large: the profile's own limit (checked exactly
# on its text) plus room for JSON escaping. Anything larger is refused before it is parsed.
MAX_UPLOAD_PAYLOAD_BYTES = 4 * MAX_PROFILE_BYTES


def _refuse_oversized(message: IncomingMessage) -> None:
    """Raise `PayloadError` for an upload too large to be parsed at all."""
    if len(message.payload) > MAX_UPLOAD_PAYLOAD_BYTES:
        raise PayloadError(
            "too_large",
            f"the upload is {len(message.payload):,} bytes, more than the "
            f"{MAX_UPLOAD_PAYLOAD_BYTES:,} an upload may be; a profile's text may be "
            f"{MAX_PROFILE_BYTES:,} bytes",
        )


class BridgeRequests:
    """Answers this instance's bridge requests."""

    def __init__(
        self,
        topics: Topics,
        catalog: ProfileCatalog,
        publisher: Publisher,
        replies: Replies,
        *,
        version: str,
        controllers: Mapping[str, TreadmillController],
        riders: RiderRequests | None = None,
    ) -> None:
        self._topics = topics
        self._riders = riders
        self._catalog = catalog
        self._publisher = publisher
        self._replies = replies
        self._version = version
        self._controllers = controllers
        # One reload (or upload) at a time: the folder watcher and MQTT requests both ask.
        self._profiles_lock = asyncio.Lock()

    async def handle(self, action: str, message: IncomingMessage) -> None:
        if RiderRequests.handles(action) and self._riders is not None:
            await self._riders.handle(action, message)  # queued for its own worker
            return
        route = Route.of(
            message,
            treadmill_id=None,
            reply_topic=self._topics.bridge(f"response/{action}"),
            transaction=transaction_of(message.payload),
        )
        if RiderRequests.handles(action):
            await self._replies.refuse(
                route,
                "riders_unavailable",
                f"{action}: this daemon keeps no riders; configure [database] (docs/database.md)",
            )
            return
        try:
            refuse_retained(message)
            if action == "upload_profile":
                _refuse_oversized(message)
            request = parse_request(action, message.payload, BRIDGE_REQUEST_MODELS)
        except PayloadError as error:
            await self._replies.refuse(route, error.code, error.message)
            return
        data: Any
        catalog = self._catalog
        match action:
            case "reload_profiles" | "upload_profile" if not isinstance(catalog, ProfileStore):
                await self._replies.refuse(
                    route, "not_supported", "this daemon's profile library is fixed"
                )
                return
            case "reload_profiles":
                data = (await self.reload_profiles()).to_json_dict()
            case "upload_profile" if isinstance(request, UploadProfileRequest) and isinstance(
                catalog, ProfileStore
            ):
                try:
                    data = await self._upload_profile(catalog, request)
                except ProfileUploadRefusedError as error:
                    _log.info(
                        "profile_upload_refused",
                        code=error.code,
                        error=error.message,
                        problems=len(error.problems),
                    )
                    await self._replies.refuse(
                        route,
                        error.code,
                        error.message,
                        problems=[problem.to_json_dict() for problem in error.problems],
                    )
                    return
            case "health_check":
                data = {
                    "healthy": True,
                    "version": self._version,
                    "treadmills": {
                        treadmill_id: controller.snapshot().connection
                        for treadmill_id, controller in self._controllers.items()
                    },
                }
            case "devices":
                data = self._publisher.devices()
            case "profiles":
                data = self._publisher.profiles()
            case _:  # "info"
                await self._publisher.publish_bridge_info()
                data = {"version": self._version, "treadmills": list(self._controllers)}
        await self._replies.succeed(route, data)

    async def reload_profiles(self) -> ProfileReload:
        """Re-read the profile folders and, if the list changed, republish it and re-announce
        discovery. A running workout keeps the plan it started with."""
        if not isinstance(self._catalog, ProfileStore):
            raise TypeError("this bridge's profile catalog cannot reload")
        async with self._profiles_lock:
            report = self._catalog.reload()
            await self._publisher.profiles_changed()
        return report

    async def _upload_profile(
        self, store: ProfileStore, request: UploadProfileRequest
    ) -> dict[str, Any]:
        # The payload model lets exactly one of them through: `{}` is never used.
        source = request.toml if request.toml is not None else request.profile or {}
        async with self._profiles_lock:
            upload = store.upload(source, replace=request.replace)
            await self._publisher.profiles_changed()
        return upload.to_json_dict()
