"""Actor activations on the single local host: who is active, their turn locks, idle deactivation.

Every call into the app for an actor (method, reminder, timer) goes through `call_in_turn`, which activates
the actor, takes its FIFO turn, refreshes its idle deadline and maps the app's reply as daprd does.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from sidecar.actors.hostconfig import HostConfig, parse_host_config
from sidecar.actors.turns import TurnLock
from sidecar.appchannel import AppChannel, AppResponse
from sidecar.clock import Clock
from sidecar.errors import error

__all__ = ["REENTRANCY_HEADER", "Activation", "ActorHost", "app_path"]

_DeactivateHook = Callable[["Activation"], None]

log = logging.getLogger("sidecar.actors")

REENTRANCY_HEADER = "Dapr-Reentrancy-Id"


def app_path(actor_type: str, actor_id: str, rest: str = "") -> str:
    """The app channel path of an actor, `rest` after it. An actor id is any string (a user id, say), so
    it goes percent-encoded like daprd's (Go escapes a URL path), and the app's router decodes it back."""
    return f"/actors/{actor_type}/{_escaped(actor_id)}{rest}"


@functools.lru_cache(maxsize=16_384)
def _escaped(actor_id: str) -> str:
    return quote(actor_id, safe="")  # per call, as much as the rest of building the request


# daprd DaprBuiltInActorNotFoundRetries: placement lookups for unknown types retried 5 times at 1 s.
_NOT_FOUND_RETRIES = 5
_NOT_FOUND_BACKOFF = 1.0
_IDLE_SCAN_INTERVAL = 1.0
# Headers never forwarded to the app: hop-by-hop, and the caller's sidecar token.
_DROP_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "transfer-encoding",
        "dapr-api-token",
        "keep-alive",
        "accept-encoding",
    }
)


@dataclass(slots=True)
class Activation:
    """One active actor. Slotted, and its timer names made on first use: a host keeps 100,000s."""

    actor_type: str
    actor_id: str
    lock: TurnLock = field(default_factory=TurnLock)
    deadline: float = 0.0
    timers: set[str] | None = None


class ActorHost:
    """The single-host actor placement table and turn dispatcher."""

    def __init__(self, channel: AppChannel, clock: Clock) -> None:
        self.channel = channel
        self.clock = clock
        self.config = HostConfig()
        self.ready = asyncio.Event()
        self.closed = False
        self._active: dict[tuple[str, str], Activation] = {}
        self._idle_task: asyncio.Task[None] | None = None
        self._on_deactivate: list[_DeactivateHook] = []

    # lifecycle ---------------------------------------------------------------------------------

    async def load_config(self) -> None:
        """Read `/dapr/config` once from the app (after its port opened)."""
        try:
            resp = await self.channel.request(
                "GET", "/dapr/config", headers={"dapr-app-config-version": "v1"}
            )
        except OSError as exc:
            log.warning("could not read app config: %s; hosting no actors", exc)
            resp = AppResponse(503, b"")
        if resp.status == 200:
            self.config = parse_host_config(resp.body)
        if self.config.entities:
            log.info("actor runtime ready; hosted types: %s", ", ".join(sorted(self.config.entities)))
        else:
            log.info("app hosts no actors")
        self.ready.set()
        self._idle_task = asyncio.create_task(self._idle_loop(), name="actor-idle-scan")

    def mark_no_app(self) -> None:
        """No app channel: the actor runtime is ready and hosts nothing."""
        self.ready.set()

    def on_deactivate(self, hook: _DeactivateHook) -> None:
        self._on_deactivate.append(hook)

    async def stop(self) -> None:
        """Deactivate every active actor (daprd sends DELETE to each on shutdown)."""
        self.closed = True
        if self._idle_task is not None:
            self._idle_task.cancel()
            await asyncio.gather(self._idle_task, return_exceptions=True)
        keys = list(self._active)
        await asyncio.gather(*(self.deactivate(t, i) for t, i in keys), return_exceptions=True)

    # placement -----------------------------------------------------------------------------------

    def hosts(self, actor_type: str) -> bool:
        return actor_type in self.config.entities

    async def wait_ready(self) -> None:
        """Actor API calls wait until the app's actor types are known; they do not fail fast."""
        if not self.ready.is_set():
            await self.ready.wait()
        if self.closed:
            raise error("ERR_ACTOR_RUNTIME_CLOSED", "actor runtime is closed")

    async def wait_ready_for_state(self, actor_type: str, actor_id: str) -> None:
        """`wait_ready` for the actor state API: while the runtime stops, an actor not yet deactivated
        may still read and save its state (the app's deactivation hook runs then, as in daprd)."""
        if not self.ready.is_set():
            await self.ready.wait()
        if self.closed and not self.is_active(actor_type, actor_id):
            raise error("ERR_ACTOR_RUNTIME_CLOSED", "actor runtime is closed")

    async def require_hosted(self, actor_type: str) -> None:
        """Resolve the placement of `actor_type`, retrying like daprd before giving up."""
        await self.wait_ready()
        for attempt in range(_NOT_FOUND_RETRIES + 1):
            if self.hosts(actor_type):
                return
            if attempt < _NOT_FOUND_RETRIES:
                await asyncio.sleep(_NOT_FOUND_BACKOFF)
        raise error(
            "ERR_ACTOR_INVOKE_METHOD",
            f"error invoke actor method: did not find address for actor {actor_type}",
        )

    def is_active(self, actor_type: str, actor_id: str) -> bool:
        return (actor_type, actor_id) in self._active

    def active_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t, _ in self._active:
            counts[t] = counts.get(t, 0) + 1
        return counts

    def activation(self, actor_type: str, actor_id: str) -> Activation:
        key = (actor_type, actor_id)
        act = self._active.get(key)
        if act is None:
            act = Activation(actor_type, actor_id)
            self._active[key] = act
        return act

    # turns ---------------------------------------------------------------------------------------

    async def call_in_turn(
        self,
        actor_type: str,
        actor_id: str,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        reentrancy_id: str | None = None,
        fresh_reentrancy: bool = False,
        timeout: float | None = None,
    ) -> AppResponse:
        """PUT `path` on the app inside the actor's turn; returns the app's raw reply.

        `fresh_reentrancy` is for reminders and timers, which always get a new reentrancy id. `timeout`
        (an actors target's, daprd's post-lock policy) bounds the app call once the turn is taken; it
        raises `TimeoutError`.
        """
        tconf = self.config.for_type(actor_type)
        hdrs = {k: v for k, v in headers.items() if k.lower() not in _DROP_HEADERS}
        rid: str | None = None
        if tconf.reentrancy:
            rid = None if fresh_reentrancy else reentrancy_id
            rid = rid or str(uuid.uuid4())
            hdrs = {k: v for k, v in hdrs.items() if k.lower() != REENTRANCY_HEADER.lower()}
            hdrs[REENTRANCY_HEADER] = rid
        act = self.activation(actor_type, actor_id)
        await act.lock.acquire(rid, tconf.max_stack_depth)
        try:
            reply = self.channel.request("PUT", path, body=body, headers=hdrs)
            return await (reply if timeout is None else asyncio.wait_for(reply, timeout))
        finally:
            # The idle scan never touches a busy actor, so the deadline only matters from the turn's end.
            act.deadline = self.clock.now() + tconf.idle_timeout
            act.lock.release()

    async def deactivate(self, actor_type: str, actor_id: str) -> None:
        """Take the actor's turn, tell the app to deactivate it, forget it (whatever the app says)."""
        act = self._active.get((actor_type, actor_id))
        if act is None:
            return
        await act.lock.acquire(None)
        try:
            if self._active.get((actor_type, actor_id)) is not act:
                return
            try:
                resp = await self.channel.request("DELETE", app_path(actor_type, actor_id))
                if resp.status != 200:
                    log.warning("deactivating %s/%s: app answered %s", actor_type, actor_id, resp.status)
            except OSError as exc:
                log.warning("deactivating %s/%s failed: %s", actor_type, actor_id, exc)
            # Calls queued behind the deactivation keep this activation (and its lock): the app
            # re-activates the actor on their turn, so two locks never exist for one actor.
            if not act.lock.has_waiters:
                del self._active[(actor_type, actor_id)]
            for hook in self._on_deactivate:
                hook(act)
        finally:
            act.lock.release()

    async def _idle_loop(self) -> None:
        while True:
            await self.clock.wait_until(self.clock.now() + _IDLE_SCAN_INTERVAL)
            now = self.clock.now()
            idle = [
                key
                for key, act in self._active.items()
                if act.deadline and act.deadline <= now and not act.lock.busy
            ]
            for actor_type, actor_id in idle:
                asyncio.create_task(self.deactivate(actor_type, actor_id))
