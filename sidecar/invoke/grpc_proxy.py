"""gRPC proxying, as daprd's `messaging/grpc_proxy.go`: a call of a method the sidecar does not serve (not a
Dapr API), carrying `dapr-app-id` (or `dapr-callee-app-id`) metadata, is passed through unchanged, as raw
messages in both directions, to that app's gRPC server: this sidecar's own app, or another app through its
sidecar on the host registry (which then applies its access control list to the caller, as daprd's callee
does). daprd proves the calling sidecar with mTLS; here a peer presents the host secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from sidecar.appchannel_grpc import GrpcAppChannel
from sidecar.invoke.acl import AccessControlList, CallerIdentity
from sidecar.invoke.invoker import Invoker
from sidecar.resiliency import CircuitOpen, Policy

__all__ = ["GrpcProxy", "PeerFinder"]

log = logging.getLogger("sidecar.invoke")

APP_ID_KEY = "dapr-app-id"
CALLEE_KEY = "dapr-callee-app-id"
CALLER_KEY = "dapr-caller-app-id"
CALLER_NAMESPACE_KEY = "dapr-caller-namespace"
STREAM_KEY = "dapr-stream"  # a streaming call: the policy covers opening it only, as daprd's proxy
SECRET_KEY = "dapr-internal-host-secret"
# Never passed on: the caller's API token and the peers' secret (each hop adds its own), HTTP/2 framing.
_DROPPED = frozenset({"dapr-api-token", SECRET_KEY, APP_ID_KEY, "content-type", "user-agent", "te"})

# app id -> (host, gRPC API port) of a live sidecar of that app on this host, or None.
PeerFinder = Callable[[str], "tuple[str, int] | None"]


class GrpcProxy(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Registered after every service, so it sees only methods nothing else serves."""

    def __init__(self, invoker: Invoker, peers: PeerFinder | None = None, secret: str | None = None) -> None:
        self.invoker = invoker
        # daprd checks a proxied call's method as a gRPC operation (case-sensitive, no HTTP verb).
        self.acl = AccessControlList(invoker.acl.spec, is_http=False) if invoker.acl is not None else None
        self.peers = peers
        self.secret = secret.encode() if secret else None
        self._channels: dict[tuple[str, int], grpc.aio.Channel] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = str(handler_call_details.method or "")
        metadata = dict(handler_call_details.invocation_metadata or ())
        target = metadata.get(CALLEE_KEY) or metadata.get(APP_ID_KEY)
        if not target or method.startswith("/dapr.proto."):
            return None

        async def proxy(
            requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
        ) -> AsyncIterator[bytes]:
            async for reply in self._proxy(method, str(target), requests, context):
                yield reply

        return grpc.stream_stream_rpc_method_handler(proxy)  # no (de)serializers: raw messages

    def trusts(self, value: object) -> bool:
        """Whether `value` (a call's host-secret metadata) proves a peer sidecar of this host."""
        given = value.encode() if isinstance(value, str) else value
        return (
            self.secret is not None and isinstance(given, bytes) and hmac.compare_digest(given, self.secret)
        )

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    async def _proxy(
        self, method: str, target: str, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        incoming: list[tuple[str, Any]] = list(context.invocation_metadata() or ())
        found = {k: v for k, v in incoming if isinstance(v, str)}
        own = self.invoker.identity
        name, _, namespace = target.partition(".")
        passed = [(k, v) for k, v in incoming if k not in _DROPPED and k not in (CALLER_KEY, CALLEE_KEY)]
        try:
            if name == own.app_id and (namespace or own.namespace) == own.namespace:
                multicallable, metadata = self._to_own_app(method, found, passed)
            else:
                multicallable, metadata = self._to_peer(method, name, passed)
        except _Refused as refused:
            # Read the caller's messages first (bounded): an aio client still sending when the status
            # arrives sees INTERNAL ("Internal error from Core") instead of it.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(_drain(requests), _DRAIN_SECONDS)
            await context.abort(refused.code, refused.message)
        # daprd applies the app's endpoint policy to calls it proxies to another sidecar, not to its own app.
        own_target = name == own.app_id and (namespace or own.namespace) == own.namespace
        policy = None if own_target else self.invoker.resiliency.endpoint(target, method)
        if policy is not None and not _truthy(found.get(STREAM_KEY, "")):
            async for reply in _unary_under_policy(policy, multicallable, metadata, requests, context):
                yield reply
            return
        try:
            call = await _opened(policy, multicallable, requests, metadata, context)
        except CircuitOpen as exc:
            await context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        try:
            initial = tuple(await call.initial_metadata())
            if initial:
                await context.send_initial_metadata(initial)
            async for reply in call:
                yield reply
            trailing = tuple(await call.trailing_metadata())
            if trailing:
                context.set_trailing_metadata(trailing)
        except grpc.aio.AioRpcError as exc:  # the app's (or the peer's) status, passed back as it is
            await context.abort(exc.code(), exc.details() or "", tuple(exc.trailing_metadata() or ()))

    def _to_own_app(
        self, method: str, found: dict[str, str], passed: list[tuple[str, Any]]
    ) -> tuple[Any, list[tuple[str, Any]]]:
        caller = own = self.invoker.identity
        if self.trusts(found.get(SECRET_KEY)):  # a peer's proxied call: its app is the caller
            caller = CallerIdentity(found.get(CALLER_KEY, ""), found.get(CALLER_NAMESPACE_KEY, "default"))
            if self.acl is not None:
                allowed, message = self.acl.check(caller, method, "")
                if not allowed:
                    raise _Refused(grpc.StatusCode.PERMISSION_DENIED, message)
        channel = self.invoker.channel
        if not isinstance(channel, GrpcAppChannel) or not channel.configured:
            raise _Refused(
                grpc.StatusCode.UNIMPLEMENTED,
                f"gRPC proxying of {method} to app {own.app_id!r} needs the app to speak gRPC "
                "(--app-protocol grpc and --app-port); this app's channel is "
                f"{channel.protocol if channel.configured else 'not configured'}",
            )
        metadata: list[tuple[str, Any]] = [*passed, (CALLER_KEY, caller.app_id), (CALLEE_KEY, own.app_id)]
        metadata += [(k.lower(), v) for k, v in channel.call_headers().items()]
        return channel.proxy_call(method), metadata

    def _to_peer(
        self, method: str, app_id: str, passed: list[tuple[str, Any]]
    ) -> tuple[Any, list[tuple[str, Any]]]:
        found = self.peers(app_id) if self.peers is not None else None
        if found is None or self.secret is None:
            log.debug("gRPC proxying of %s: no sidecar of app %r", method, app_id)
            raise _Refused(grpc.StatusCode.UNKNOWN, f"couldn't find service: {app_id}")
        channel = self._channels.get(found)
        if channel is None:
            channel = self._channels[found] = grpc.aio.insecure_channel(f"{found[0]}:{found[1]}")
        own = self.invoker.identity
        metadata: list[tuple[str, Any]] = [
            *passed,
            (CALLEE_KEY, app_id),
            (CALLER_KEY, own.app_id),
            (CALLER_NAMESPACE_KEY, own.namespace),
            (SECRET_KEY, self.secret.decode()),
        ]
        return channel.stream_stream(method), metadata


_DRAIN_SECONDS = 1.0


class _Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def _drain(requests: AsyncIterator[bytes]) -> None:
    async for _ in requests:
        pass


def _truthy(value: str) -> bool:
    """dapr/kit's `IsTruthy`."""
    return value.strip().lower() in ("y", "yes", "true", "t", "on", "1")


async def _opened(
    policy: Policy | None,
    multicallable: Any,
    requests: AsyncIterator[bytes],
    metadata: list[tuple[str, Any]],
    context: grpc.aio.ServicerContext,
) -> Any:
    """Open the call; under a policy (a stream) only this step runs under it: the breaker admits it."""

    async def start() -> Any:
        return multicallable(requests, metadata=tuple(metadata), timeout=context.time_remaining())

    return await (policy.run(start) if policy is not None else start())


@dataclass
class _Unary:
    """One whole attempt of a proxied unary call: what the app sent, or its error status."""

    initial: tuple[Any, ...] = ()
    replies: list[bytes] = field(default_factory=list)
    trailing: tuple[Any, ...] = ()
    error: grpc.aio.AioRpcError | None = None


async def _unary_under_policy(
    policy: Policy,
    multicallable: Any,
    metadata: list[tuple[str, Any]],
    requests: AsyncIterator[bytes],
    context: grpc.aio.ServicerContext,
) -> AsyncIterator[bytes]:
    """daprd's proxy for a unary call with a policy: the caller's messages kept for replay, the whole call
    under the timeout, breaker and retries; an error status is a `CodeError` with its gRPC code."""
    messages = [m async for m in requests]

    async def attempt() -> _Unary:
        replay: Iterator[bytes] = iter(messages)
        call = multicallable(replay, metadata=tuple(metadata), timeout=context.time_remaining())
        try:
            initial = tuple(await call.initial_metadata())
            replies = [r async for r in call]
            return _Unary(initial, replies, tuple(await call.trailing_metadata()))
        except grpc.aio.AioRpcError as exc:
            return _Unary(error=exc)
        except asyncio.CancelledError:  # the policy's timeout: the call stops, as daprd cancels its context
            call.cancel()
            raise

    def failed(result: _Unary) -> int | None:
        return None if result.error is None else int(result.error.code().value[0])

    try:
        result = await policy.run(attempt, failed)
    except TimeoutError:
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "context deadline exceeded")
    except CircuitOpen as exc:
        await context.abort(grpc.StatusCode.UNKNOWN, str(exc))
    error = result.error
    if error is not None:
        await context.abort(error.code(), error.details() or "", tuple(error.trailing_metadata() or ()))
    if result.initial:
        await context.send_initial_metadata(result.initial)
    for reply in result.replies:
        yield reply
    if result.trailing:
        context.set_trailing_metadata(result.trailing)
