"""Each user's webhooks in the Dapr state store: one key per user (`webhooks|<user hash>`) holding all of
them, changed read-modify-write under its ETag and retried on conflict.

The state store rather than a per-user actor: the event fan-out reads the registries of every user in a
delivery batch, and one bulk state read does that, where actors would cost a call (three hops) per user.
Writers are rare (the owner's edits, and a delivery's outcome when it changes the failure count), so
optimistic concurrency costs next to nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Final, TypeVar
from urllib.parse import quote

from api.channel.feed import bulk_get
from api.webhooks.models import Registry, StoredSecret, StoredWebhook, WebhookCreate, WebhookPatch
from api.webhooks.sender import new_secret
from todo_actors.errors import LimitExceeded, NotFound, VersionConflict
from todo_actors.sidecar_http import SidecarHttp, SidecarHttpError

__all__ = ["WebhookRegistry", "registry_key", "state_path"]

log = logging.getLogger("api.webhooks")

T = TypeVar("T")

_ATTEMPTS: Final = 30


def registry_key(user: str) -> str:
    # Users are free text; state keys must not contain the store's "||" separator, so hash them.
    return "webhooks|" + hashlib.sha256(user.encode("utf-8")).hexdigest()[:32]


def state_path(store: str) -> str:
    """The Dapr HTTP API's path of state store `store`."""
    return f"/v1.0/state/{quote(store, safe='')}"


class WebhookRegistry:
    """`per_user` webhooks at most; a webhook is disabled after `disable_after` consecutive deliveries
    that failed every attempt."""

    def __init__(
        self,
        http: SidecarHttp,
        store: str,
        *,
        per_user: int,
        disable_after: int,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._http = http
        self._state = state_path(store)
        self._per_user = per_user
        self._disable_after = disable_after
        self._clock = clock

    async def registries(self, users: Iterable[str]) -> dict[str, Registry]:
        """The registries of `users` (one bulk read); users without webhooks are left out."""
        keys = {registry_key(u): u for u in users}
        found = await bulk_get(self._http, self._state, list(keys))
        return {keys[key]: Registry.model_validate(value) for key, (value, _) in found.items()}

    async def all(self, user: str) -> list[StoredWebhook]:
        return (await self.registries([user])).get(user, Registry()).hooks

    async def get(self, user: str, webhook_id: str) -> StoredWebhook:
        hook = Registry(hooks=await self.all(user)).find(webhook_id)
        if hook is None:
            raise NotFound(f"webhook {webhook_id} not found")
        return hook

    async def create(self, user: str, spec: WebhookCreate) -> tuple[StoredWebhook, str]:
        """A new webhook and its secret (to show once)."""
        now, secret = self._clock(), new_secret()
        hook = StoredWebhook(
            id=uuid.uuid4().hex,
            url=str(spec.url),
            events=list(dict.fromkeys(spec.events)),
            description=spec.description,
            secrets=[StoredSecret(secret=secret)],
            created_at=now,
            updated_at=now,
        )

        def add(registry: Registry) -> StoredWebhook:
            if len(registry.hooks) >= self._per_user:
                raise LimitExceeded(
                    f"at most {self._per_user} webhooks per user",
                    limit_name="webhooks_per_user",
                    limit=self._per_user,
                )
            registry.hooks.append(hook)
            return hook

        return await self._change(user, add), secret

    async def patch(
        self, user: str, webhook_id: str, patch: WebhookPatch, if_version: int | None
    ) -> StoredWebhook:
        def edit(registry: Registry) -> StoredWebhook:
            hook = _owned(registry, webhook_id, if_version)
            fields = patch.model_fields_set
            if "url" in fields and patch.url is not None:
                hook.url = str(patch.url)
            if "events" in fields and patch.events is not None:
                hook.events = list(dict.fromkeys(patch.events))
            if "description" in fields:
                hook.description = patch.description or ""
            if "enabled" in fields and patch.enabled is not None:
                hook.enabled = patch.enabled
                if patch.enabled:
                    hook.disabled_reason = hook.disabled_at = None
                    hook.consecutive_failures = 0
                else:
                    hook.disabled_reason, hook.disabled_at = "disabled by its owner", self._clock()
            return _touched(hook, self._clock())

        return await self._change(user, edit)

    async def delete(self, user: str, webhook_id: str, if_version: int | None) -> None:
        def drop(registry: Registry) -> None:
            hook = _owned(registry, webhook_id, if_version)
            registry.hooks.remove(hook)

        await self._change(user, drop)

    async def rotate(
        self, user: str, webhook_id: str, grace: dt.timedelta
    ) -> tuple[StoredWebhook, str, dt.datetime | None]:
        """A new secret; the current one keeps signing (beside it) for `grace`, older ones stop."""
        secret, now = new_secret(), self._clock()
        expires = now + grace if grace > dt.timedelta(0) else None

        def rotate(registry: Registry) -> StoredWebhook:
            hook = _owned(registry, webhook_id, None)
            kept = [StoredSecret(secret=hook.secrets[0].secret, expires_at=expires)] if expires else []
            hook.secrets = [StoredSecret(secret=secret), *kept]
            return _touched(hook, now)

        return await self._change(user, rotate), secret, expires

    async def count_outcome(self, user: str, webhook_id: str, delivered: bool) -> StoredWebhook | None:
        """Record how a delivery ended: success clears the failure count, failure adds one and disables
        the webhook at `disable_after`. Returns the webhook when it was disabled just now."""

        def count(registry: Registry) -> StoredWebhook | None:
            hook = registry.find(webhook_id)
            if hook is None or (delivered and hook.consecutive_failures == 0):
                return None
            if delivered:
                hook.consecutive_failures = 0
                return None
            hook.consecutive_failures += 1
            if hook.enabled and hook.consecutive_failures >= self._disable_after:
                hook.enabled = False
                hook.disabled_at = self._clock()
                hook.disabled_reason = f"{hook.consecutive_failures} consecutive failed deliveries"
                _touched(hook, hook.disabled_at)
                return hook
            return None

        return await self._change(user, count, only_if_changed=True)

    async def _change(
        self, user: str, change: Callable[[Registry], T], *, only_if_changed: bool = False
    ) -> T:
        """Apply `change` to the user's registry and save it under the ETag read; re-read on conflict."""
        key = registry_key(user)
        for _ in range(_ATTEMPTS):
            found = (await bulk_get(self._http, self._state, [key])).get(key)
            registry = Registry() if found is None else Registry.model_validate(found[0])
            before = registry.model_dump_json()
            result = change(registry)
            after = registry.model_dump_json()
            if only_if_changed and after == before:
                return result
            request: dict[str, object] = {
                "key": key,
                "value": json.loads(after),
                "options": {"concurrency": "first-write"},
            }
            if found is not None and found[1] is not None:
                request["etag"] = found[1]
            try:
                await self._http.request("POST", self._state, json.dumps([request]).encode())
            except SidecarHttpError as exc:
                if exc.status != 409:
                    raise
                log.debug("webhooks of a user changed concurrently; retrying: %s", exc)
                continue
            return result
        raise TimeoutError(f"could not change the webhooks after {_ATTEMPTS} attempts (contention)")


def _owned(registry: Registry, webhook_id: str, if_version: int | None) -> StoredWebhook:
    hook = registry.find(webhook_id)
    if hook is None:
        raise NotFound(f"webhook {webhook_id} not found")
    if if_version is not None and if_version != hook.version:
        raise VersionConflict(
            f"webhook {webhook_id} is at version {hook.version}, not {if_version}",
            expected=if_version,
            actual=hook.version,
        )
    return hook


def _touched(hook: StoredWebhook, now: dt.datetime) -> StoredWebhook:
    hook.updated_at = now
    hook.version += 1
    return hook
