"""State transactions for the HTTP and gRPC APIs, with the transactional outbox of the stores that enable it.

daprd publishes each event to an internal topic before the commit and relies on a marker row; here the
event commits in the store's own transaction (an outbox table beside the state) and a relay publishes it
after the commit, so a failed transaction publishes nothing and a crash loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

import grpc

from sidecar.clock import Clock
from sidecar.errors import DaprError, ErrorKind
from sidecar.pubsub.cloudevents import TraceContext
from sidecar.state.outbox import EventPayload, OutboxConfig, build_events
from sidecar.state.outbox_relay import OutboxRelay, Publisher
from sidecar.state.store import DeleteOp, SetOp, StateStore

__all__ = ["OUTBOX_ERROR", "PubSubCheck", "StateTransactions"]

log = logging.getLogger("sidecar.state.outbox")

# daprd `errorcodes.PubsubPublishOutbox` (pkg/api/errors/pubsub.go `PubSubOutbox`): 500 / INTERNAL.
OUTBOX_ERROR = ErrorKind("ERR_PUBLISH_OUTBOX", 500, grpc.StatusCode.INTERNAL)


class PubSubCheck(Publisher, Protocol):
    """`PubSubEngine`: `validate` raises DaprError for an unknown pubsub or empty topic."""

    def validate(self, pubsub: str, topic: str, metadata: Mapping[str, str]) -> None: ...


class StateTransactions:
    """One per sidecar: runs transactions and owns the outbox relays (`start`/`open`/`stop`)."""

    def __init__(
        self,
        stores: Mapping[str, StateStore],
        outboxes: Mapping[str, OutboxConfig],
        pubsub: PubSubCheck,
        clock: Clock,
        app_id: str,
        *,
        hold_relays: bool = False,
    ) -> None:
        self._configs = dict(outboxes)
        self._pubsub = pubsub
        self._clock = clock
        self._app_id = app_id
        self.relays: dict[str, OutboxRelay] = {}
        for name, config in self._configs.items():
            store = stores[name]
            store.enable_outbox()
            self.relays[name] = OutboxRelay(name, store, pubsub, clock, held=hold_relays)
            for role, target in (
                ("outboxPubsub", config.outbox_pubsub),
                ("outboxPublishPubsub", config.publish_pubsub),
            ):
                if self._missing(target, config.publish_topic):
                    log.error(
                        "state store %s: %s names pubsub %r, which is not loaded; every transaction on"
                        " this store will fail with ERR_PUBLISH_OUTBOX",
                        name,
                        role,
                        target,
                    )

    def enabled(self, store_name: str) -> bool:
        return store_name in self._configs

    def busy(self) -> bool:
        """Whether any outbox event is committed (or committing) but not yet accepted by the broker."""
        return any(relay.busy() for relay in self.relays.values())

    async def start(self) -> None:
        for relay in self.relays.values():
            await relay.start()

    def open(self) -> None:
        """The app's subscriptions are in place: relays may publish."""
        for relay in self.relays.values():
            relay.open()

    async def stop(self) -> None:
        for relay in self.relays.values():
            await relay.stop()

    def _missing(self, pubsub: str, topic: str) -> bool:
        try:
            self._pubsub.validate(pubsub, topic, {})
        except DaprError:
            return True
        return False

    async def execute(
        self,
        store_name: str,
        store: StateStore,
        ops: Sequence[SetOp | DeleteOp],
        payloads: Sequence[EventPayload | None] = (),
        *,
        traceparent: str = "",
        tracestate: str = "",
    ) -> None:
        """Run one transaction. For an outbox store `payloads` (one per op; None for deletes) are the
        event data. Raises StateError from the store, DaprError(ERR_PUBLISH_OUTBOX) before any write."""
        config = self._configs.get(store_name)
        if config is None:
            await store.transact(ops)
            return
        # daprd publishes to outboxPubsub first and fails the transaction if it is missing; a missing
        # outboxPublishPubsub would lose the event after the commit there, so it fails here as well.
        for pubsub in (config.outbox_pubsub, config.publish_pubsub):
            if self._missing(pubsub, config.publish_topic):
                raise DaprError(
                    OUTBOX_ERROR, f"error while publishing outbox message: pubsub '{pubsub}' not found"
                )
        stored, events = build_events(
            config,
            app_id=self._app_id,
            ops=ops,
            payloads=payloads,
            trace=TraceContext.parse(traceparent, tracestate),
            now=self._clock.now(),
        )
        relay = self.relays[store_name]
        relay.expect(len(events))
        try:
            await store.transact(stored, events)
        except BaseException:
            relay.expect(-len(events))
            raise
        relay.notify()
