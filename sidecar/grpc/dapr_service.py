"""The `dapr.proto.runtime.v1.Dapr` gRPC service: the subset `DaprClient` uses for state, publish, secrets,
service invocation and metadata, served with the SDK's own generated stubs. Every other RPC answers
UNIMPLEMENTED naming itself. Errors carry daprd's `google.rpc` details (`sidecar.errors`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import dapr_pb2_grpc, pubsub_pb2, secret_pb2, state_pb2
from google.protobuf import any_pb2, empty_pb2

from sidecar.errors import DaprError, error, http_reply_error
from sidecar.grpc.actors_service import ActorsMixin
from sidecar.grpc.blocks_service import BuildingBlocksMixin
from sidecar.grpc.conversation_service import ConversationMixin
from sidecar.grpc.crypto_service import CryptoMixin
from sidecar.grpc.workflow_service import WorkflowMixin
from sidecar.invoke import InvokeFailure, InvokeRequest
from sidecar.invoke.headers import grpc_metadata_from_http
from sidecar.metadata import grpc_metadata, metadata_of
from sidecar.pubsub import BulkEntry
from sidecar.pubsub.streaming import serve_stream
from sidecar.state import (
    DeleteOp,
    ETagInvalid,
    ETagMismatch,
    SetOp,
    StateError,
    StateStore,
    api_error,
    query_unsupported,
    run_bulk,
    state_key,
)
from sidecar.state.outbox import CONTENT_TYPE, EventPayload
from sidecar.supervision import FORCE_SHUTDOWN

if TYPE_CHECKING:
    from sidecar.server import Sidecar

__all__ = ["DaprService", "add_dapr_service"]

log = logging.getLogger("sidecar.grpc")

_CONCURRENCY = {1: "first-write", 2: "last-write"}


def _concurrency(options: common_pb2.StateOptions) -> str:
    return _CONCURRENCY.get(options.concurrency, "last-write")


async def _abort(context: grpc.aio.ServicerContext, exc: DaprError) -> NoReturn:
    await context.abort(exc.grpc_status, exc.message, trailing_metadata=exc.grpc_trailer())
    raise AssertionError("grpc's abort raises")  # pragma: no cover


def _state_error(exc: StateError, code: str) -> DaprError:
    if isinstance(exc, ETagMismatch):
        return api_error(exc, code, f"possible etag mismatch. error from state store: {exc}")
    if isinstance(exc, ETagInvalid):
        return api_error(exc, code, f"invalid etag value: {exc}")
    return api_error(exc, code, f"failed operation on state store: {exc}")


class DaprService(
    ActorsMixin,
    BuildingBlocksMixin,
    ConversationMixin,
    CryptoMixin,
    WorkflowMixin,
    dapr_pb2_grpc.DaprServicer,
):
    """Translations from the Dapr gRPC API into the sidecar's engines."""

    def __init__(self, sidecar: Sidecar) -> None:
        self.sidecar = sidecar

    def _store(self, name: str) -> StateStore:
        stores = self.sidecar.components.state_stores
        app = {"appID": self.sidecar.config.app_id}
        if not stores:
            raise error(
                "ERR_STATE_STORE_NOT_CONFIGURED", f"state store {name} is not configured", metadata=app
            )
        store = stores.get(name)
        if store is None:
            raise error("ERR_STATE_STORE_NOT_FOUND", f"state store {name} is not found", metadata=app)
        return store

    def _key(self, store_name: str, key: str) -> str:
        return state_key(self.sidecar.config.app_id, self._store(store_name), key)

    async def GetState(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            store = self._store(request.store_name)
            item = await store.get(self._key(request.store_name, request.key))
        except DaprError as exc:
            await _abort(context, exc)
        except StateError as exc:
            await _abort(context, _state_error(exc, "ERR_STATE_GET"))
        if item is None:
            return state_pb2.GetStateResponse()
        return state_pb2.GetStateResponse(data=item.value, etag=item.etag or "", metadata=item.metadata)

    async def GetBulkState(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            store = self._store(request.store_name)
            keys = [self._key(request.store_name, k) for k in request.keys]
            found = await store.bulk_get(keys)
        except DaprError as exc:
            await _abort(context, exc)
        except StateError as exc:
            await _abort(context, _state_error(exc, "ERR_STATE_BULK_GET"))
        items = []
        for key, (_, item) in zip(request.keys, found, strict=True):
            if item is None:
                items.append(state_pb2.BulkStateItem(key=key))
            else:
                items.append(
                    state_pb2.BulkStateItem(
                        key=key, data=item.value, etag=item.etag or "", metadata=item.metadata
                    )
                )
        return state_pb2.GetBulkStateResponse(items=items)

    def _set_op(self, store_name: str, item: Any) -> SetOp:
        return SetOp(
            self._key(store_name, item.key),
            bytes(item.value),
            etag=item.etag.value if item.HasField("etag") and item.etag.value else None,
            metadata=dict(item.metadata),
            concurrency=_concurrency(item.options),  # type: ignore[arg-type]
        )

    async def SaveState(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            store = self._store(request.store_name)
            ops = [self._set_op(request.store_name, s) for s in request.states]
            await run_bulk(ops, store.set, "ERR_STATE_SAVE", "saving", request.store_name)
        except DaprError as exc:
            await _abort(context, exc)
        except StateError as exc:
            await _abort(context, _state_error(exc, "ERR_STATE_SAVE"))
        return empty_pb2.Empty()

    def _delete_op(self, store_name: str, item: Any) -> DeleteOp:
        return DeleteOp(
            self._key(store_name, item.key),
            etag=item.etag.value if item.HasField("etag") and item.etag.value else None,
            metadata=dict(item.metadata),
            concurrency=_concurrency(item.options),  # type: ignore[arg-type]
        )

    async def DeleteState(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            await self._store(request.store_name).delete(self._delete_op(request.store_name, request))
        except DaprError as exc:
            await _abort(context, exc)
        except StateError as exc:
            await _abort(context, _state_error(exc, "ERR_STATE_DELETE"))
        return empty_pb2.Empty()

    async def DeleteBulkState(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            store = self._store(request.store_name)
            ops = [self._delete_op(request.store_name, s) for s in request.states]
            await run_bulk(ops, store.delete, "ERR_STATE_BULK_DELETE", "deleting", request.store_name)
        except DaprError as exc:
            await _abort(context, exc)
        return empty_pb2.Empty()

    async def QueryStateAlpha1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            self._store(request.store_name)
            raise query_unsupported(request.store_name)
        except DaprError as exc:
            await _abort(context, exc)

    async def ExecuteStateTransaction(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            store = self._store(request.storeName)
            outbox = self.sidecar.transactions.enabled(request.storeName)
            ops: list[SetOp | DeleteOp] = []
            payloads: list[EventPayload | None] = []
            for op in request.operations:
                if op.operationType == "upsert":
                    set_op = self._set_op(request.storeName, op.request)
                    ops.append(set_op)
                    # daprd publishes gRPC values as the bytes they are; only metadata names a content type
                    payloads.append(
                        EventPayload(set_op.value, set_op.metadata.get(CONTENT_TYPE, "")) if outbox else None
                    )
                elif op.operationType == "delete":
                    r = op.request
                    ops.append(
                        DeleteOp(
                            self._key(request.storeName, r.key),
                            etag=r.etag.value if r.HasField("etag") and r.etag.value else None,
                            metadata=dict(r.metadata),
                            concurrency=_concurrency(r.options),  # type: ignore[arg-type]
                        )
                    )
                    payloads.append(None)
                else:
                    raise error(
                        "ERR_STATE_TRANSACTION",
                        f"operation type {op.operationType} not supported",
                    )
            trace = dict(context.invocation_metadata() or ())
            await self.sidecar.transactions.execute(
                request.storeName,
                store,
                ops,
                payloads,
                traceparent=str(trace.get("traceparent", "")),
                tracestate=str(trace.get("tracestate", "")),
            )
        except DaprError as exc:
            await _abort(context, exc)
        except StateError as exc:
            await _abort(context, _state_error(exc, "ERR_STATE_TRANSACTION"))
        return empty_pb2.Empty()

    async def PublishEvent(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            await self.sidecar.pubsub.publish(
                request.pubsub_name,
                request.topic,
                bytes(request.data),
                request.data_content_type or None,
                dict(request.metadata),
            )
        except DaprError as exc:
            await _abort(context, exc)
        return empty_pb2.Empty()

    async def BulkPublishEvent(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            failed = await self.sidecar.pubsub.bulk_publish(
                request.pubsub_name,
                request.topic,
                [
                    # Go treats an empty protobuf map as absent.
                    BulkEntry(e.entry_id, bytes(e.event), e.content_type or None, dict(e.metadata) or None)
                    for e in request.entries
                ],
                dict(request.metadata),
            )
            if failed:  # daprd fails the whole call when any entry failed
                raise error(
                    "ERR_PUBSUB_PUBLISH_MESSAGE",
                    "error when publishing to topic "
                    + request.topic
                    + " in pubsub "
                    + request.pubsub_name
                    + ": "
                    + "; ".join(f"{i}: {e}" for i, e in failed),
                )
        except DaprError as exc:
            await _abort(context, exc)
        return pubsub_pb2.BulkPublishResponse(
            failedEntries=[pubsub_pb2.BulkPublishResponseFailedEntry(entry_id=i, error=e) for i, e in failed]
        )

    async def BulkPublishEventAlpha1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self.BulkPublishEvent(request, context)

    async def SubscribeTopicEventsAlpha1(
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> None:
        await serve_stream(self.sidecar.pubsub.streams, request_iterator, context)

    async def GetSecret(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            data = self.sidecar.secrets.get(request.store_name, request.key)
        except DaprError as exc:
            await _abort(context, exc)
        return secret_pb2.GetSecretResponse(data=data)

    async def GetBulkSecret(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            found = self.sidecar.secrets.bulk(request.store_name)
        except DaprError as exc:
            await _abort(context, exc)
        return secret_pb2.GetBulkSecretResponse(
            data={k: secret_pb2.SecretResponse(secrets=v) for k, v in found.items()}
        )

    async def InvokeService(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """daprd's (deprecated) `InvokeService` to an HTTP app: the reply's headers come back as initial
        metadata with `dapr-http-status`, a non-2xx reply as daprd's status with an `ErrorInfo`."""
        message = request.message
        ext = message.http_extension if message.HasField("http_extension") else None
        verb = common_pb2.HTTPExtension.Verb.Name(ext.verb) if ext is not None else ""
        call = InvokeRequest(
            method=message.method,
            verb="" if verb == "NONE" else verb,
            query=ext.querystring if ext is not None else "",
            headers=[
                (k, v)
                for k, v in context.invocation_metadata() or ()
                if isinstance(v, str) and not (k == "dapr-api-token" and self.sidecar.config.api_token)
            ],  # daprd's token check removes the API token it accepted
            body=bytes(message.data.value),
            content_type=message.content_type,
            type_url=message.data.type_url,
        )
        try:
            reply = await self.sidecar.invoker.invoke(request.id, call, grpc_api=True)
        except InvokeFailure as exc:
            if exc.bare:  # a resiliency policy's own error, returned as daprd returns it
                await context.abort(exc.code, exc.message)
            await _abort(
                context, error("ERR_DIRECT_INVOKE", f"failed to invoke, id: {request.id}, err: {exc}")
            )
        headers = grpc_metadata_from_http(reply.headers.items())
        if reply.grpc is not None:  # a gRPC app: its status and trailers as it gave them
            await context.send_initial_metadata(headers)
            context.set_trailing_metadata(grpc_metadata_from_http(reply.grpc.trailers.items()))
            if reply.grpc.code:
                await context.abort(reply.grpc.status_code, reply.grpc.message)
            data = any_pb2.Any(type_url=reply.type_url, value=reply.body)
            return common_pb2.InvokeResponse(data=data, content_type=reply.content_type)
        await context.send_initial_metadata([*headers, ("dapr-http-status", str(reply.status))])
        if not 200 <= reply.status < 300:
            await _abort(context, http_reply_error(reply.status, reply.body))
        return common_pb2.InvokeResponse(data=any_pb2.Any(value=reply.body), content_type=reply.content_type)

    async def GetMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return grpc_metadata(metadata_of(self.sidecar))

    async def Shutdown(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        metadata = context.invocation_metadata() or ()
        force = any(k == FORCE_SHUTDOWN and str(v).lower() == "true" for k, v in metadata)
        self.sidecar.shutdown(force=force)
        return empty_pb2.Empty()

    async def SetMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.sidecar.extended_metadata[request.key] = request.value
        return empty_pb2.Empty()


def _unimplemented(name: str) -> Callable[..., Awaitable[None]]:
    async def handler(self: DaprService, request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"dapr.proto.runtime.v1.Dapr/{name} is not supported by the embedded todo-engine sidecar",
        )

    handler.__name__ = name
    return handler


def _fill_unimplemented() -> None:
    """Every RPC neither `DaprService` nor a mixin defines (still the generated base's) answers
    UNIMPLEMENTED naming itself, instead of the generated stub's anonymous answer."""
    base = dapr_pb2_grpc.DaprServicer
    for name, attr in vars(base).items():
        if name.startswith("_") or not callable(attr) or getattr(DaprService, name) is not attr:
            continue
        setattr(DaprService, name, _unimplemented(name))


_fill_unimplemented()


def add_dapr_service(server: grpc.aio.Server, sidecar: Sidecar) -> None:
    dapr_pb2_grpc.add_DaprServicer_to_server(DaprService(sidecar), server)  # type: ignore[no-untyped-call]
