"""The Dapr gRPC cryptography streams, `EncryptAlpha1` and `DecryptAlpha1`, as daprd's
`pkg/api/grpc/crypto.go` serves them: options in the first message, payload chunks in `seq` order both
ways; kept apart from `dapr_service` (which mixes them in)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import crypto_pb2

from sidecar.crypto import (
    SUBTLE_OPERATIONS,
    DecryptRequest,
    EncryptRequest,
    InputError,
    SegmentError,
    operation_error,
    subtle_unimplemented,
)
from sidecar.errors import DaprError, error

if TYPE_CHECKING:
    from sidecar.server import Sidecar

__all__ = ["CryptoMixin"]

# daprd's `cryptoFirstChunkTimeout`: how long a stream may stay silent before its options arrive.
FIRST_CHUNK_TIMEOUT = 5.0


async def _abort(context: grpc.aio.ServicerContext, exc: DaprError) -> NoReturn:
    # daprd's messages.APIError: a status and message, no details.
    await context.abort(exc.grpc_status, exc.message)
    raise AssertionError("grpc's abort raises")  # pragma: no cover


def _bad_request(message: str) -> DaprError:
    return error("ERR_BAD_REQUEST", f"invalid request: {message}")


async def _first_message(requests: AsyncIterator[Any]) -> Any:
    """The leading message, within `FIRST_CHUNK_TIMEOUT` and with options, or daprd's error for its lack."""
    try:
        first = await asyncio.wait_for(anext(requests), FIRST_CHUNK_TIMEOUT)
    except TimeoutError:
        raise _bad_request("error waiting for first message: context deadline exceeded") from None
    except StopAsyncIteration:
        raise operation_error(Exception("error receiving the first message: EOF")) from None
    if not first.HasField("options"):
        raise _bad_request("first message does not contain the required options")
    return first


async def _payloads(first: Any, requests: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    """The payload bytes of `first` and what follows, each chunk's `seq` checked as daprd checks it."""
    expect = 0
    message = first
    while True:
        if message.HasField("payload"):
            if message.payload.data:
                yield message.payload.data
            if message.payload.seq != expect:
                raise InputError(
                    f"invalid sequence number received: {message.payload.seq} (expected: {expect})"
                )
            expect += 1
        try:
            message = await anext(requests)
        except StopAsyncIteration:
            return
        if message.HasField("options"):
            raise InputError("options found in non-leading message")


class CryptoMixin:
    sidecar: Sidecar

    async def EncryptAlpha1(
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        requests = aiter(request_iterator)
        try:
            first = await _first_message(requests)
            options = first.options
            if not options.key_name:
                raise _bad_request("missing property 'keyName' in the options message")
            if not options.key_wrap_algorithm:
                raise _bad_request("missing property 'keyWrapAlgorithm' in the options message")
            request = EncryptRequest(
                component=options.component_name,
                key_name=options.key_name,
                algorithm=options.key_wrap_algorithm,
                omit_decryption_key_name=options.omit_decryption_key_name,
                decryption_key_name=options.decryption_key_name,
                cipher=options.data_encryption_cipher,
            )
            output = await self.sidecar.crypto.encrypt(request, _payloads(first, requests))
        except DaprError as exc:
            await _abort(context, exc)
        async for response in _responses(output, crypto_pb2.EncryptResponse, context):
            yield response

    async def DecryptAlpha1(
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        requests = aiter(request_iterator)
        try:
            first = await _first_message(requests)
            request = DecryptRequest(component=first.options.component_name, key_name=first.options.key_name)
            output = await self.sidecar.crypto.decrypt(request, _payloads(first, requests))
        except SegmentError as exc:
            await _abort(context, operation_error(exc))
        except DaprError as exc:
            await _abort(context, exc)
        async for response in _responses(output, crypto_pb2.DecryptResponse, context):
            yield response


async def _responses(
    output: AsyncIterator[bytes], kind: Any, context: grpc.aio.ServicerContext
) -> AsyncIterator[Any]:
    """One response per piece daprd would send (the header, then each segment), numbered from 0; a failure
    mid-stream ends the RPC with daprd's `ErrCryptoOperation`."""
    seq = 0
    try:
        async for data in output:
            yield kind(payload=common_pb2.StreamPayload(data=data, seq=seq))
            seq += 1
    except SegmentError as exc:
        await _abort(context, operation_error(exc))


def _subtle(name: str) -> Callable[..., Awaitable[None]]:
    async def handler(self: CryptoMixin, request: Any, context: grpc.aio.ServicerContext) -> None:
        await _abort(context, subtle_unimplemented())

    handler.__name__ = name
    return handler


for _name in SUBTLE_OPERATIONS.values():
    setattr(CryptoMixin, _name, _subtle(_name))
