"""Components' outbound policies, as daprd's runner wraps each component operation: every state store
operation (the state APIs, transactions, actor state) and output binding call runs under its component's
policy; pub/sub publishing takes its policy in the pub/sub engine (`run_outbound`).

Refused at load instead of left unapplied: inbound policies (named targets, `*ComponentInbound*`
defaults), since the durable broker redelivers on its own schedule (stacking daprd's inbound retries on it
would multiply attempts), and outbound policies named for secret, lock or configuration stores. The broad
defaults (`DefaultComponent*Policy`, `Default*Policy`) reach the wrapped kinds only: a documented deviation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from sidecar.bindings.output import BindingError, BindingResponse, OutputBinding
from sidecar.pubsub.broker import BrokerClosed
from sidecar.resiliency.policy import Policy, run_outbound
from sidecar.resiliency.provider import Resiliency
from sidecar.state.store import DeleteOp, OutboxRecord, SetOp, StateError, StateItem, StateStore

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sidecar.components import Components

__all__ = ["WRAPPED_KINDS", "apply_outbound", "component_kinds", "publish_guard"]

WRAPPED_KINDS = ("Statestore", "Pubsub", "Binding")


def component_kinds(components: Components) -> dict[str, str]:
    """Every component's name with daprd's resiliency component type."""
    kinds = {name: "Statestore" for name in components.state_stores}
    kinds |= {name: "Pubsub" for name in components.pubsubs}
    kinds |= {name: "Binding" for name in (*components.bindings, *components.output_bindings)}
    kinds |= {name: "Secretstore" for name in components.secret_stores}
    kinds |= {name: "Lock" for name in components.locks}
    kinds |= {name: "Configuration" for name in components.configurations}
    return kinds


def apply_outbound(resiliency: Resiliency, components: Components) -> None:
    """Check every component target, then wrap the state stores and output bindings a policy applies to
    (in place, so every API and the actor state use the one wrapped store); raises ComponentError."""
    resiliency.applied_components(component_kinds(components), WRAPPED_KINDS)
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

    async def get(self, key: str) -> StateItem | None:
        return await run_outbound(self.policy, lambda: self.store.get(key), StateError)

    async def bulk_get(self, keys: Sequence[str]) -> list[tuple[str, StateItem | None]]:
        return await run_outbound(self.policy, lambda: self.store.bulk_get(keys), StateError)

    async def set(self, op: SetOp) -> None:
        await run_outbound(self.policy, lambda: self.store.set(op), StateError)

    async def delete(self, op: DeleteOp) -> None:
        await run_outbound(self.policy, lambda: self.store.delete(op), StateError)

    async def transact(self, ops: Sequence[SetOp | DeleteOp], events: Sequence[OutboxRecord] = ()) -> None:
        await run_outbound(self.policy, lambda: self.store.transact(ops, events), StateError)

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
