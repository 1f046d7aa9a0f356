"""Components' policies. Outbound, as daprd's runner wraps each component operation: every state store
operation (the state APIs, transactions, actor state) and output binding call runs under its component's
policy, and so does each publish (a hook of the pub/sub engine). Inbound, a pub/sub component's timeout and
retries become its deliveries' attempts: the broker's one delivery loop, with daprd's schedule.

Refused at load instead of left unapplied (`Resiliency.applied_components`): inbound breakers and inbound
policies of input bindings, outbound policies for secret, lock, configuration, crypto or conversation
components.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from sidecar.bindings.output import BindingError, BindingResponse, OutputBinding
from sidecar.pubsub.broker import BrokerClosed
from sidecar.pubsub.retry import RetryPolicy as DeliveryRetry
from sidecar.resiliency.policy import Permanent, Policy, run_outbound
from sidecar.resiliency.provider import Resiliency
from sidecar.state.store import (
    DeleteOp,
    ETagInvalid,
    ETagMismatch,
    OutboxRecord,
    SetOp,
    StateError,
    StateItem,
    StateStore,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sidecar.components import Components

__all__ = ["WRAPPED_KINDS", "apply_outbound", "component_kinds", "delivery_retry", "publish_guard"]

WRAPPED_KINDS = ("Statestore", "Pubsub", "Binding")

T = TypeVar("T")


def component_kinds(components: Components) -> dict[str, str]:
    """Every component's name with daprd's resiliency component type."""
    kinds = {name: "Statestore" for name in components.state_stores}
    kinds |= {name: "Pubsub" for name in components.pubsubs}
    kinds |= {name: "Binding" for name in (*components.bindings, *components.output_bindings)}
    kinds |= {name: "Secretstore" for name in components.secret_stores}
    kinds |= {name: "Lock" for name in components.locks}
    kinds |= {name: "Configuration" for name in components.configurations}
    kinds |= {name: "Crypto" for name in components.crypto}
    kinds |= {name: "Conversation" for name in components.conversations}
    return kinds


def apply_outbound(resiliency: Resiliency, components: Components) -> None:
    """Check every component target, then wrap the state stores and output bindings a policy applies to
    (in place, so every API and the actor state use the one wrapped store); raises ComponentError."""
    resiliency.applied_components(component_kinds(components), WRAPPED_KINDS, components.bindings)
    for name, store in list(components.state_stores.items()):
        policy = resiliency.component_outbound(name, "Statestore")
        if policy is not None:
            components.state_stores[name] = _GuardedStore(store, policy)
    for name, binding in list(components.output_bindings.items()):
        policy = resiliency.component_outbound(name, "Binding")
        if policy is not None:
            components.output_bindings[name] = _GuardedBinding(binding, policy)


def publish_guard(resiliency: Resiliency) -> Callable[[str, Callable[[], Awaitable[int]]], Awaitable[int]]:
    """The pub/sub engine's hook: each publish under its component's outbound policy (a timeout or an
    open breaker fails the publish, `ERR_PUBSUB_PUBLISH_MESSAGE`, as a closed broker does)."""

    async def guard(pubsub: str, publish: Callable[[], Awaitable[int]]) -> int:
        return await run_outbound(resiliency.component_outbound(pubsub, "Pubsub"), publish, BrokerClosed)

    return guard


def delivery_retry(resiliency: Resiliency) -> Callable[[str], DeliveryRetry | None]:
    """The pub/sub engine's hook: a component's inbound policy as its deliveries' attempts (one, then one
    per retry, waiting as the retry policy waits, without its jitter; `maxRetries: -1` as 2**31 - 1), each
    under the policy's timeout. None (the broker's own schedule) when no inbound policy applies."""

    def schedule(pubsub: str) -> DeliveryRetry | None:
        found = resiliency.component_inbound(pubsub, "Pubsub")
        if found is None:
            return None
        timeout, retry = found
        if retry is None:
            return DeliveryRetry(attempts=1, timeout=timeout)
        attempts = retry.max_retries + 1 if retry.max_retries >= 0 else 2**31 - 1
        if retry.policy == "constant":
            return DeliveryRetry(attempts, retry.duration, retry.duration, 1.0, timeout)
        return DeliveryRetry(attempts, retry.initial_interval, retry.max_interval, retry.multiplier, timeout)

    return schedule


class _GuardedStore:
    """A state store whose every operation runs under its component's outbound policy."""

    def __init__(self, store: StateStore, policy: Policy) -> None:
        self.store = store
        self.policy = policy
        self.name = store.name
        self.component_type = store.component_type
        self.features = store.features
        self.key_prefix = store.key_prefix

    # The outbox's own bookkeeping is the relay's, retried by it: not a component operation of daprd's.
    def enable_outbox(self) -> None:
        self.store.enable_outbox()

    async def outbox_pending(self, limit: int) -> list[OutboxRecord]:
        return await self.store.outbox_pending(limit)

    async def outbox_remove(self, seq: int) -> None:
        await self.store.outbox_remove(seq)

    async def outbox_count(self) -> int:
        return await self.store.outbox_count()

    async def _run(self, operation: Callable[[], Awaitable[T]]) -> T:
        async def once() -> T:
            try:
                return await operation()
            except (ETagMismatch, ETagInvalid) as exc:  # daprd: an ETag error is never retried
                raise Permanent(exc) from None

        return await run_outbound(self.policy, once, StateError)

    async def get(self, key: str) -> StateItem | None:
        return await self._run(lambda: self.store.get(key))

    async def bulk_get(self, keys: Sequence[str]) -> list[tuple[str, StateItem | None]]:
        return await self._run(lambda: self.store.bulk_get(keys))

    async def set(self, op: SetOp) -> None:
        await self._run(lambda: self.store.set(op))

    async def delete(self, op: DeleteOp) -> None:
        await self._run(lambda: self.store.delete(op))

    async def transact(self, ops: Sequence[SetOp | DeleteOp], events: Sequence[OutboxRecord] = ()) -> None:
        await self._run(lambda: self.store.transact(ops, events))

    async def close(self) -> None:
        await self.store.close()


class _GuardedBinding:
    """An output binding whose calls run under its component's outbound policy."""

    def __init__(self, binding: OutputBinding, policy: Policy) -> None:
        self.binding = binding
        self.policy = policy
        self.type = binding.type
        self.operations = binding.operations

    async def invoke(self, operation: str, data: bytes, metadata: Mapping[str, str]) -> BindingResponse:
        return await run_outbound(
            self.policy, lambda: self.binding.invoke(operation, data, metadata), BindingError
        )
