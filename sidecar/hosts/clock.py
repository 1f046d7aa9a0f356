"""One dev clock per host: sidecars on one registry that run with the dev clock move their clocks together.

An advance on any of them (`/v1.0-dev/clock/advance`) steps through the due instants of all of them, sets
every clock to each instant and waits for every sidecar to settle there (timeskip.py's `Peers`), so work
that crosses apps (a workflow calling another app, an actor of another app) sees one time. A sidecar
joining the host takes the latest clock of those running, and lends its own if it is ahead. Peers without
the dev clock answer 404 on the internal clock route and are left out.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from typing import Any

from sidecar.clock import ManualClock
from sidecar.hosts.peers import INTERNAL_PREFIX, PeerClients
from sidecar.hosts.registry import HostRegistry, SidecarEntry
from sidecar.timeskip import TimeSkipper

__all__ = ["ClockPeers", "LocalClock"]

log = logging.getLogger("sidecar.hosts")

_ROUTE = INTERNAL_PREFIX + "clock"


class LocalClock:
    """This sidecar's side of the internal clock route: its offset, what is due and busy, moving it."""

    def __init__(self, clock: ManualClock, timeskip: TimeSkipper, on_move: Any) -> None:
        self.clock = clock
        self.timeskip = timeskip
        self.on_move = on_move  # saves the offset in the data dir

    async def handle(self, verb: str, query: str, body: bytes) -> dict[str, Any]:
        """GET `?now=` -> {offset, busy, next_due}; POST {"offset"} moves this clock forward to it."""
        if verb == "POST":
            self.move_to(float(json.loads(body)["offset"]))
            return {"offset": self.clock.offset}
        now = urllib.parse.parse_qs(query).get("now", [None])[0]
        due = await self.timeskip.next_due(float(now)) if now is not None else None
        return {"offset": self.clock.offset, "busy": self.timeskip.busy(), "next_due": due}

    def move_to(self, offset: float) -> None:
        if offset > self.clock.offset:  # the clock never moves backwards
            self.clock.advance(offset - self.clock.offset)
            self.on_move()


class ClockPeers:
    """The other dev clocks on the host, reached over their internal routes (timeskip.py's `Peers`)."""

    def __init__(self, registry: HostRegistry, clients: PeerClients) -> None:
        self.registry = registry
        self.clients = clients

    async def next_due(self, now: float) -> float | None:
        times = [s["next_due"] for _, s in await self._states(now) if s.get("next_due") is not None]
        return min(times) if times else None

    async def busy(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for peer, state in await self._states(None):
            found.update({f"{peer.app_id}: {name}": what for name, what in state.get("busy", {}).items()})
        return found

    async def sync(self, offset: float) -> None:
        for peer in self.registry.others():
            await self._call(peer, "POST", _ROUTE, json.dumps({"offset": offset}).encode())

    async def join(self, local: LocalClock) -> None:
        """Take the latest clock of the host's dev clocks, and lend ours to those behind it."""
        states = await self._states(None)
        latest = max((float(s["offset"]) for _, s in states), default=local.clock.offset)
        local.move_to(latest)
        if any(float(s["offset"]) < local.clock.offset for _, s in states):
            await self.sync(local.clock.offset)
        if states:
            log.info(
                "dev clock shared with %d sidecar(s) of this host: %+.0f s", len(states), local.clock.offset
            )

    async def _states(self, now: float | None) -> list[tuple[SidecarEntry, dict[str, Any]]]:
        target = _ROUTE if now is None else f"{_ROUTE}?now={now!r}"
        out = []
        for peer in self.registry.others():
            state = await self._call(peer, "GET", target, b"")
            if state is not None:
                out.append((peer, state))
        return out

    async def _call(self, peer: SidecarEntry, verb: str, target: str, body: bytes) -> dict[str, Any] | None:
        """The peer's answer; None if it runs without the dev clock (404) or cannot be reached."""
        try:
            reply = await self.clients.send(peer, verb, target, body, {"content-type": "application/json"})
        except OSError as exc:
            log.debug("dev clock of %s not reached: %s", peer.app_id, exc)
            return None
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise OSError(f"dev clock of {peer.app_id} answered {reply.status}: {reply.body[:200]!r}")
        state: dict[str, Any] = json.loads(reply.body)
        return state
