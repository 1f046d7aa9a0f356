"""daprd's Configuration API over the loaded configuration stores, shared by the HTTP and gRPC wires: the
store lookup and error codes, reads, subscriptions delivered to the HTTP app, and gRPC stream subscriptions
that `UnsubscribeConfiguration` can stop."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence

import aiohttp
import grpc

from sidecar.appchannel import AppChannel, ChannelBase
from sidecar.configuration.store import Item, SqliteConfigurationStore, UpdateEvent
from sidecar.errors import DaprError, ErrorKind

__all__ = ["ConfigurationAPI", "config_error"]

log = logging.getLogger("sidecar.configuration")

_S = grpc.StatusCode
# daprd's codes (errorcodes.go) with the statuses its HTTP and gRPC APIs give them (`apierrors.Basic`).
_KINDS = {
    kind.code: kind
    for kind in (
        ErrorKind("ERR_CONFIGURATION_STORE_NOT_CONFIGURED", 500, _S.FAILED_PRECONDITION, grpc_basic=True),
        ErrorKind("ERR_CONFIGURATION_STORE_NOT_FOUND", 400, _S.INVALID_ARGUMENT, grpc_basic=True),
        ErrorKind("ERR_CONFIGURATION_GET", 500, _S.INTERNAL, grpc_basic=True),
        ErrorKind("ERR_CONFIGURATION_SUBSCRIBE", 500, _S.INVALID_ARGUMENT, grpc_basic=True),
        ErrorKind("ERR_CONFIGURATION_UNSUBSCRIBE", 500, _S.INTERNAL),
        ErrorKind("ERR_APP_CHANNEL_NIL", 500, _S.INTERNAL),
    )
}


def config_error(code: str, message: str) -> DaprError:
    return DaprError(_KINDS[code], message)


def go_list(keys: Sequence[str]) -> str:
    """A []string as Go's `%s` prints it: `[a b]`."""
    return "[" + " ".join(keys) + "]"


class ConfigurationAPI:
    def __init__(self, stores: Mapping[str, SqliteConfigurationStore], channel: ChannelBase) -> None:
        self.stores = stores
        self._channel = channel
        self._streams: dict[str, asyncio.Event] = {}  # gRPC stream subscriptions: id -> stop

    def store(self, name: str) -> SqliteConfigurationStore:
        if not self.stores:
            raise config_error(
                "ERR_CONFIGURATION_STORE_NOT_CONFIGURED", "configuration stores not configured"
            )
        store = self.stores.get(name)
        if store is None:
            raise config_error("ERR_CONFIGURATION_STORE_NOT_FOUND", f"configuration store {name} not found")
        return store

    def get(self, name: str, keys: Sequence[str]) -> dict[str, Item]:
        store = self.store(name)
        try:
            return store.get(keys)
        except Exception as exc:
            message = f"failed to get {go_list(keys)} from Configuration store {name}: {exc}"
            raise config_error("ERR_CONFIGURATION_GET", message) from exc

    async def put(self, name: str, changes: Mapping[str, Item | None]) -> dict[str, Item]:
        """Our dev route's write: store the items, then tell the subscribers."""
        store = self.store(name)
        stored = await asyncio.to_thread(store.set, changes)
        await store.notify(stored)
        return stored

    # -- HTTP: updates go to the app's `POST /configuration/{store}/{key}` ------------------------

    def subscribe_app(self, name: str, keys: Sequence[str]) -> str:
        store = self.store(name)
        if not self._channel.configured:
            raise config_error(
                "ERR_APP_CHANNEL_NIL",
                "app channel is not initialized. cannot subscribe to configuration updates",
            )

        async def deliver(event: UpdateEvent) -> None:
            await self._deliver(name, event)

        return store.subscribe(keys, deliver)

    async def _deliver(self, name: str, event: UpdateEvent) -> None:
        channel = self._channel
        if not isinstance(channel, AppChannel):
            log.error(
                "configuration update from %s not sent: the embedded sidecar delivers configuration updates "
                "over an HTTP app channel only",
                name,
            )
            return
        body = (json.dumps(event.to_json(), separators=(",", ":"), sort_keys=True) + "\n").encode()
        for key in event.items:
            try:
                reply = await channel.request(
                    "POST",
                    f"/configuration/{name}/{key}",
                    body=body,
                    headers={"content-type": "application/json"},
                )
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.error("error sending configuration item to the app: %s", exc)
                continue
            if reply.status != 200:
                log.error(
                    "error sending configuration item to the app: error sending configuration item to "
                    "application, status %d",
                    reply.status,
                )

    def unsubscribe(self, name: str, subscription_id: str) -> None:
        store = self.store(name)
        try:
            store.unsubscribe(subscription_id)
        except KeyError as exc:
            raise config_error(
                "ERR_CONFIGURATION_UNSUBSCRIBE",
                f"failed to unsubscribe to configuration request {subscription_id}: {exc.args[0]}",
            ) from None

    # -- gRPC: a server stream per subscription ---------------------------------------------------

    def open_stream(self, name: str, keys: Sequence[str], queue: asyncio.Queue[UpdateEvent]) -> str:
        store = self.store(name)

        async def enqueue(event: UpdateEvent) -> None:
            queue.put_nowait(event)

        try:
            subscription_id = store.subscribe(sorted(keys), enqueue)
        except Exception as exc:
            message = f"failed to subscribe {go_list(keys)} from Configuration store {name}: {exc}"
            raise config_error("ERR_CONFIGURATION_SUBSCRIBE", message) from exc
        self._streams[subscription_id] = asyncio.Event()
        return subscription_id

    def stream_stopped(self, subscription_id: str) -> asyncio.Event:
        return self._streams[subscription_id]

    def close_stream(self, name: str, subscription_id: str) -> None:
        self._streams.pop(subscription_id, None)
        try:
            self.stores[name].unsubscribe(subscription_id)
        except KeyError:
            pass  # already unsubscribed over HTTP

    def stop_stream(self, subscription_id: str) -> str | None:
        """daprd's deprecated `UnsubscribeConfiguration`: ends the stream; an error text when unknown."""
        stop = self._streams.pop(subscription_id, None)
        if stop is None:
            return (
                f"failed to unsubscribe to configuration request {subscription_id}: "
                + "subscription does not exist"
            )
        log.warning(
            "Unsubscribing using UnsubscribeConfiguration is deprecated. "
            "Disconnect from the SubscribeConfiguration RPC instead."
        )
        stop.set()
        return None

    def stop_streams(self) -> None:
        """End every gRPC subscription stream (at shutdown, before the gRPC server stops)."""
        for stop in self._streams.values():
            stop.set()

    def close(self) -> None:
        self.stop_streams()
        for store in self.stores.values():
            store.close()
