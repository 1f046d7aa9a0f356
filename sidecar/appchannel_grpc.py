"""The gRPC app channel (`--app-protocol grpc`): the sidecar's calls into an app serving daprd's
`AppCallback`, `AppCallbackAlpha` and `AppCallbackHealthCheck` services (e.g. `dapr.ext.grpc.App`).

gRPC failures are mapped once, here: UNAVAILABLE (the app is down or restarting) to `AppUnreachable`, a
ConnectionError, so deliveries wait for the app as over HTTP; DEADLINE_EXCEEDED to TimeoutError; any other
status to `AppCallError` with its code. Every call carries `dapr-api-token` (APP_API_TOKEN) and the dev
clock's extra headers as metadata, and counts in `in_flight` while it waits for the app.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

import grpc
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import appcallback_pb2 as callback_pb2
from dapr.proto.runtime.v1 import appcallback_pb2_grpc as callback_grpc
from google.protobuf import any_pb2, empty_pb2

from sidecar.appchannel import AppUnhealthy, ChannelBase

__all__ = ["AppCallError", "AppUnreachable", "GrpcAppChannel", "InvokeReply"]

log = logging.getLogger("sidecar.appchannel")

_Reply = TypeVar("_Reply")

# daprd's gRPC app channel sends and accepts messages of any size its --max-body-size allows (4 MiB default)
_DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024


class AppUnreachable(ConnectionError):
    """The app's gRPC server could not be reached (status UNAVAILABLE)."""


class AppCallError(Exception):
    """The app answered a call with a gRPC error status."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{method}: {code.name}: {details}")
        self.code = code
        self.details = details


class InvokeReply:
    """The app's answer to `OnInvoke`: its `InvokeResponse` and the metadata it sent back."""

    __slots__ = ("headers", "response", "trailers")

    def __init__(
        self,
        response: common_pb2.InvokeResponse,
        headers: Mapping[str, str],
        trailers: Mapping[str, str],
    ) -> None:
        self.response = response
        self.headers = headers
        self.trailers = trailers


def _metadata_pairs(md: Any) -> dict[str, str]:
    return {k: v for k, v in (md or ()) if isinstance(v, str)}


class GrpcAppChannel(ChannelBase):
    """gRPC calls from the sidecar into the app at `<address>:<port>` (plaintext HTTP/2, daprd's `grpc`)."""

    protocol = "grpc"

    def __init__(
        self,
        address: str,
        port: int | None,
        *,
        app_token: str | None = None,
        timeout: float = 60.0,
        max_message_size: int = _DEFAULT_MAX_MESSAGE,
        max_concurrency: int | None = None,
    ) -> None:
        super().__init__(address, port, app_token=app_token, timeout=timeout, max_concurrency=max_concurrency)
        self._max_message = max_message_size
        self._channel: grpc.aio.Channel | None = None
        self._v1: callback_grpc.AppCallbackStub | None = None
        self._alpha: callback_grpc.AppCallbackAlphaStub | None = None
        self._health: callback_grpc.AppCallbackHealthCheckStub | None = None

    def _stubs(
        self,
    ) -> tuple[
        callback_grpc.AppCallbackStub,
        callback_grpc.AppCallbackAlphaStub,
        callback_grpc.AppCallbackHealthCheckStub,
    ]:
        if self.port is None:
            raise ConnectionError("no app port configured")
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(
                f"{self.address}:{self.port}",
                options=[
                    ("grpc.max_send_message_length", self._max_message),
                    ("grpc.max_receive_message_length", self._max_message),
                ],
            )
            self._v1 = callback_grpc.AppCallbackStub(self._channel)  # type: ignore[no-untyped-call]
            self._alpha = callback_grpc.AppCallbackAlphaStub(self._channel)  # type: ignore[no-untyped-call]
            self._health = callback_grpc.AppCallbackHealthCheckStub(self._channel)  # type: ignore[no-untyped-call]
        assert self._v1 is not None and self._alpha is not None and self._health is not None
        return self._v1, self._alpha, self._health

    def proxy_call(self, method: str) -> Any:
        """`method` of the app as a raw stream-stream call (gRPC proxying passes messages through)."""
        self._stubs()
        assert self._channel is not None
        return self._channel.stream_stream(method)

    def call_headers(self) -> dict[str, str]:
        """What every call to the app carries (APP_API_TOKEN, the dev clock's offset)."""
        return self._call_headers(None)

    async def _call(
        self,
        name: str,
        method: Any,
        request: Any,
        *,
        metadata: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[Any, grpc.aio.Call]:
        """One unary call with token, dev-clock and caller metadata; errors mapped (see module doc)."""
        md = [(k.lower(), v) for k, v in self._call_headers(metadata).items()]
        async with self._in_flight:
            try:
                call = method(request, metadata=md, timeout=self._timeout if timeout is None else timeout)
                reply = await call
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.UNAVAILABLE:
                    raise AppUnreachable(f"{name}: {exc.details()}") from None
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise TimeoutError(f"{name}: the app did not answer in time") from None
                raise AppCallError(name, code, exc.details() or "") from None
        return reply, call

    # AppCallback -------------------------------------------------------------------------------

    async def list_topic_subscriptions(self) -> callback_pb2.ListTopicSubscriptionsResponse:
        v1, _, _ = self._stubs()
        reply, _ = await self._call("ListTopicSubscriptions", v1.ListTopicSubscriptions, empty_pb2.Empty())
        assert isinstance(reply, callback_pb2.ListTopicSubscriptionsResponse)
        return reply

    async def on_topic_event(
        self, request: callback_pb2.TopicEventRequest, metadata: Mapping[str, str]
    ) -> callback_pb2.TopicEventResponse:
        v1, _, _ = self._stubs()
        reply, _ = await self._call("OnTopicEvent", v1.OnTopicEvent, request, metadata=metadata)
        assert isinstance(reply, callback_pb2.TopicEventResponse)
        return reply

    async def on_bulk_topic_event(
        self, request: callback_pb2.TopicEventBulkRequest, metadata: Mapping[str, str]
    ) -> callback_pb2.TopicEventBulkResponse:
        """`OnBulkTopicEvent`, falling back to `AppCallbackAlpha.OnBulkTopicEventAlpha1` when the app does not
        implement it (daprd 1.16 does the same)."""
        v1, alpha, _ = self._stubs()
        try:
            reply, _ = await self._call("OnBulkTopicEvent", v1.OnBulkTopicEvent, request, metadata=metadata)
        except AppCallError as exc:
            if exc.code != grpc.StatusCode.UNIMPLEMENTED:
                raise
            log.debug("falling back to OnBulkTopicEventAlpha1: %s", exc)
            reply, _ = await self._call(
                "OnBulkTopicEventAlpha1", alpha.OnBulkTopicEventAlpha1, request, metadata=metadata
            )
        assert isinstance(reply, callback_pb2.TopicEventBulkResponse)
        return reply

    async def list_input_bindings(self) -> list[str]:
        v1, _, _ = self._stubs()
        reply, _ = await self._call("ListInputBindings", v1.ListInputBindings, empty_pb2.Empty())
        return list(reply.bindings)

    async def on_binding_event(
        self, name: str, data: bytes, metadata: Mapping[str, str]
    ) -> callback_pb2.BindingEventResponse:
        v1, _, _ = self._stubs()
        request = callback_pb2.BindingEventRequest(name=name, data=data, metadata=dict(metadata))
        reply, _ = await self._call("OnBindingEvent", v1.OnBindingEvent, request)
        assert isinstance(reply, callback_pb2.BindingEventResponse)
        return reply

    async def on_job_event(self, name: str, data: any_pb2.Any | None) -> None:
        """A triggered job, as daprd sends it (`method` `job/<name>`, POST, the data's type URL as content
        type): `OnJobEvent`, or `OnJobEventAlpha1` for apps without it. Raises `AppUnhealthy` while the app
        is unhealthy, as daprd's channel does."""
        if not self.healthy():
            raise AppUnhealthy()
        v1, alpha, _ = self._stubs()
        request = callback_pb2.JobEventRequest(
            name=name,
            data=data,
            method="job/" + name,
            content_type=data.type_url if data is not None else "",
            http_extension=common_pb2.HTTPExtension(verb=common_pb2.HTTPExtension.POST),
        )
        try:
            await self._call("OnJobEvent", v1.OnJobEvent, request)
        except AppCallError as exc:
            if exc.code != grpc.StatusCode.UNIMPLEMENTED:
                raise
            await self._call("OnJobEventAlpha1", alpha.OnJobEventAlpha1, request)

    async def invoke(
        self,
        method: str,
        data: any_pb2.Any | None,
        content_type: str,
        http_extension: common_pb2.HTTPExtension | None,
        metadata: Mapping[str, str],
    ) -> InvokeReply:
        """Service invocation into the app (`OnInvoke`), the gRPC side of `/v1.0/invoke` and `InvokeService`.

        Raises `AppUnhealthy` while the app is unhealthy, `AppCallError` with the app's status (daprd turns
        it into the caller's status), `AppUnreachable` or TimeoutError."""
        if not self.healthy():
            raise AppUnhealthy()
        v1, _, _ = self._stubs()
        request = common_pb2.InvokeRequest(method=method, content_type=content_type)
        if data is not None:
            request.data.CopyFrom(data)
        if http_extension is not None:
            request.http_extension.CopyFrom(http_extension)
        reply, call = await self._call("OnInvoke", v1.OnInvoke, request, metadata=metadata)
        assert isinstance(reply, common_pb2.InvokeResponse)
        headers = _metadata_pairs(await call.initial_metadata())
        trailers = _metadata_pairs(await call.trailing_metadata())
        return InvokeReply(reply, headers, trailers)

    # AppCallbackHealthCheck --------------------------------------------------------------------

    async def probe_health(self, timeout: float) -> str | None:
        """daprd's gRPC probe: `AppCallbackHealthCheck/HealthCheck`, healthy when it answers OK."""
        try:
            _, _, health = self._stubs()
            await self._call("HealthCheck", health.HealthCheck, empty_pb2.Empty(), timeout=timeout)
        except (AppCallError, OSError, TimeoutError) as exc:
            return f"Health check failed: {exc}"
        return None

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()
