"""Hosting the todo actors in an app channel: register both types with the project serializer and config.

The app that serves the sidecar's calls (`DaprActor` routes) awaits `register_actors` in its lifespan.
The config reaches the actor instances through the SDK's `actor_factory`, at registration, never at import.
"""

from __future__ import annotations

import logging

from dapr.actor import ActorId, ActorRuntime
from dapr.actor.runtime.context import ActorRuntimeContext
from dapr.ext.fastapi import DaprActor

from todo_actors.actor import TodoListActor
from todo_actors.config import ActorsConfig, wall_clock
from todo_actors.interface import LIST_ACTOR_TYPE, OWNER_ACTOR_TYPE
from todo_actors.owner import OwnerIndexActor
from todo_actors.publisher import DaprPublisher, EventPublisher
from todo_actors.serializer import PydanticSerializer

__all__ = ["ActorsConfig", "DaprPublisher", "EventPublisher", "register_actors", "wall_clock"]

log = logging.getLogger("todo_actors.host")


async def register_actors(actor: DaprActor | type[ActorRuntime], config: ActorsConfig) -> None:
    """Register `TodoListActor` and `OwnerIndexActor` on `actor` (the app channel's `DaprActor`).

    Both use one `PydanticSerializer` for messages and state, and `config.actor_client` for their calls
    to the sidecar. Without `config.publisher`, the lists publish through a `DaprPublisher` created here
    and connected on the first event.
    """
    publisher = config.publisher if config.publisher is not None else DaprPublisher()
    serializer = PydanticSerializer()

    def make_list(ctx: ActorRuntimeContext, actor_id: ActorId) -> TodoListActor:
        return TodoListActor(ctx, actor_id, config, publisher)

    def make_owner(ctx: ActorRuntimeContext, actor_id: ActorId) -> OwnerIndexActor:
        return OwnerIndexActor(ctx, actor_id, config)

    for cls, make in ((TodoListActor, make_list), (OwnerIndexActor, make_owner)):
        # actor_client None: the SDK's own `DaprActorHttpClient`.
        await actor.register_actor(
            cls,
            message_serializer=serializer,
            state_serializer=serializer,
            actor_factory=make,
            actor_client=config.actor_client,
        )
    # The SDK names an actor type after its class; the API proxies by these constants.
    missing = {LIST_ACTOR_TYPE, OWNER_ACTOR_TYPE} - set(ActorRuntime.get_registered_actor_types())
    if missing:
        raise RuntimeError(f"the actors registered under other types than {sorted(missing)}")
    log.info("registered %s and %s (pubsub %r)", LIST_ACTOR_TYPE, OWNER_ACTOR_TYPE, config.pubsub_name)
