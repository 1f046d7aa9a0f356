"""Virtual actors on one host: placement, turns, state, reminders and timers behind daprd's actor API."""

from __future__ import annotations

from sidecar.actors.invoke import MethodReply, invoke_method
from sidecar.actors.reminders import Reminders
from sidecar.actors.runtime import ActorHost
from sidecar.actors.state import ActorState
from sidecar.actors.timers import Timers

__all__ = ["ActorHost", "ActorState", "MethodReply", "Reminders", "Timers", "invoke_method"]
