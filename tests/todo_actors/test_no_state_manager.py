"""The shared stand-in for the SDK's state manager in list actors: the calls the SDK makes around every
actor method do nothing, anything else fails loudly."""

from __future__ import annotations

import pytest

from todo_actors.actor_state import NO_STATE_MANAGER


async def test_the_sdk_calls_are_no_ops_and_anything_else_fails() -> None:
    await NO_STATE_MANAGER.clear_cache()
    await NO_STATE_MANAGER.save_state()
    NO_STATE_MANAGER.set_state_context("ctx")
    with pytest.raises(AttributeError, match="ActorStore"):
        NO_STATE_MANAGER.get_state("items:00")
