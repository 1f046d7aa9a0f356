"""Housekeeping, run each time the sidecar's `housekeeping` cron binding fires (`POST /housekeeping` on the
app channel): finished workflows purged after their retention, change-feed events older than theirs deleted.

Everything goes through Dapr: the purge is the workflow service's filtered `PurgeInstances`, the feed is
compacted with state calls. Dapr's state API cannot list keys, so the users whose feeds may need it are
kept in 16 registry keys (`housekeeping|feed-users|<hex>`), each `{user: [floor, oldest]}`: the cursor an
earlier run reached and the time of the oldest event kept. A user is read again only once that time falls
behind the retention or the user's feed grew. Idempotency records and the feed's dedup marks need nothing
here: they carry a state TTL (`TODO_IDEMPOTENCY_TTL`, the feed's seen TTL) and the state store's
`cleanupInterval` sweep deletes them once expired.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from api.channel.feed import Feed
from api.middleware.metrics import ApiMetrics
from todo_actors.sidecar_http import SidecarHttp, SidecarHttpError
from workflows.taskhub import TaskHub

__all__ = ["HOUSEKEEPING_ROUTE", "Housekeeping", "HousekeepingRun", "tick_time"]

log = logging.getLogger("api.channel.housekeeping")

# The binding's name in dapr/components/housekeeping.yaml and the sidecar's default set: daprd POSTs a
# tick to the route named after it.
HOUSEKEEPING_ROUTE = "/housekeeping"
_SHARDS = "0123456789abcdef"
_MAX_PURGE_BATCHES = 200  # per run: a backlog larger than this is finished by the next runs

_Users = dict[str, tuple[int, float | None]]  # a registry shard: user -> (floor cursor, oldest kept event)


@dataclass(frozen=True)
class HousekeepingRun:
    """What one run did (the channel answers it as JSON)."""

    at: dt.datetime
    workflows_purged: int
    workflows_complete: bool  # False: more finished workflows past retention are left for the next run
    feed_events_deleted: int
    feed_users_checked: int
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "workflows_purged": self.workflows_purged,
            "workflows_complete": self.workflows_complete,
            "feed_events_deleted": self.feed_events_deleted,
            "feed_users_checked": self.feed_users_checked,
            "seconds": round(self.seconds, 3),
        }


def tick_time(headers: Mapping[str, str]) -> dt.datetime | None:
    """The binding's `readTimeUTC` (Go's `Time.String()` in UTC): the sidecar's clock when it fired, which
    is the clock workflow creation times are on (a dev clock included)."""
    raw = headers.get("readtimeutc", "")
    stamp, _, zone = raw.partition(" +0000 ")
    if zone != "UTC":
        return None
    whole, _, fraction = stamp.partition(".")
    try:
        moment = dt.datetime.strptime(whole, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return moment + dt.timedelta(microseconds=int(fraction[:6].ljust(6, "0") or 0))


class Housekeeping:
    def __init__(
        self,
        *,
        taskhub: TaskHub,
        feed: Feed,
        http: SidecarHttp,
        store: str,
        metrics: ApiMetrics,
        clock: Callable[[], dt.datetime],
        workflow_retention_seconds: int,
        feed_retention_seconds: int,
    ) -> None:
        self._taskhub = taskhub
        self._feed = feed
        self._http = http
        self._state = f"/v1.0/state/{quote(store, safe='')}"
        self._metrics = metrics
        self._clock = clock
        self._workflow_retention = dt.timedelta(seconds=workflow_retention_seconds)
        self._feed_retention = dt.timedelta(seconds=feed_retention_seconds)
        self._touched: set[str] = set()
        self._running = asyncio.Lock()

    def touched(self, user: str) -> None:
        """The feed's append hook: `user`'s feed grew, so its registry entry is checked at the next run."""
        self._touched.add(user)

    async def run(self, now: dt.datetime | None = None) -> HousekeepingRun | None:
        """One run at `now` (default: the app's clock); None if a run is already going on here."""
        if self._running.locked():
            log.info("housekeeping tick skipped: the previous run is still going on")
            self._metrics.count_housekeeping_run("skipped")
            return None
        async with self._running:
            started = time.perf_counter()
            at = now or self._clock()
            try:
                purged, complete = await self._purge_workflows(at - self._workflow_retention)
                deleted, checked = await self._compact_feeds(at - self._feed_retention)
            except Exception:
                self._metrics.count_housekeeping_run("error")
                raise
            run = HousekeepingRun(at, purged, complete, deleted, checked, time.perf_counter() - started)
        self._metrics.count_housekeeping_run("ok")
        self._metrics.count_housekeeping_items("workflows_purged", purged)
        self._metrics.count_housekeeping_items("feed_events_deleted", deleted)
        log.info(
            "housekeeping at %s: purged %d finished workflows created before %s%s; deleted %d feed events "
            "older than %s (%d users checked) in %.2f s",
            at.isoformat(),
            purged,
            (at - self._workflow_retention).isoformat(),
            "" if complete else " (more left for the next run)",
            deleted,
            (at - self._feed_retention).isoformat(),
            checked,
            run.seconds,
        )
        return run

    async def _purge_workflows(self, cutoff: dt.datetime) -> tuple[int, bool]:
        total = 0
        for _ in range(_MAX_PURGE_BATCHES):
            count, complete = await self._taskhub.purge_finished(cutoff.timestamp())
            total += count
            if complete:
                return total, True
        return total, False

    async def _compact_feeds(self, cutoff: dt.datetime) -> tuple[int, int]:
        touched, self._touched = self._touched, set()
        keys = [f"housekeeping|feed-users|{shard}" for shard in _SHARDS]
        try:
            shards = await self._read(keys)
            deleted = checked = 0
            for key, shard in zip(keys, _SHARDS, strict=True):
                users, etag = shards.get(key, ({}, None))
                fresh = {u for u in touched if _shard(u) == shard}
                changed = bool(fresh - users.keys())
                for user in sorted(users.keys() | fresh):
                    floor, oldest = users.get(user, (0, None))
                    due = oldest is not None and oldest < cutoff.timestamp()
                    if not due and not (user in fresh and oldest is None):
                        continue
                    result = await self._feed.compact(user, cutoff, floor)
                    checked += 1
                    deleted += result.deleted
                    users[user] = (result.floor, None if result.oldest is None else result.oldest.timestamp())
                    changed = True
                if changed and not await self._write(key, users, etag):
                    self._touched |= fresh
        except BaseException:
            self._touched |= touched  # checked again next run
            raise
        return deleted, checked

    async def _read(self, keys: list[str]) -> dict[str, tuple[_Users, str | None]]:
        body = json.dumps({"keys": keys, "parallelism": len(keys)}).encode()
        _, _, raw = await self._http.request("POST", f"{self._state}/bulk", body)
        found: dict[str, tuple[_Users, str | None]] = {}
        for item in json.loads(raw):
            if item.get("data") is not None:
                users = {u: (int(v[0]), v[1]) for u, v in item["data"]["users"].items()}
                found[item["key"]] = (users, item.get("etag"))
        return found

    async def _write(self, key: str, users: _Users, etag: str | None) -> bool:
        """Save a registry shard guarded by its ETag; False if a concurrent run (another replica) changed
        it first: that run wins, and this run's changes to the shard are redone next time."""
        entry: dict[str, Any] = {"key": key, "value": {"users": {u: list(v) for u, v in users.items()}}}
        if etag is None:
            entry["options"] = {"concurrency": "first-write"}
        else:
            entry["etag"] = etag
        try:
            await self._http.request("POST", self._state, json.dumps([entry]).encode())
        except SidecarHttpError as exc:
            if exc.status != 409:
                raise
            log.info("housekeeping registry %s changed meanwhile (another replica); redone next run", key)
            return False
        return True


def _shard(user: str) -> str:
    return hashlib.sha256(user.encode("utf-8")).hexdigest()[0]
