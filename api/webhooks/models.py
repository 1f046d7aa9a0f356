"""Webhooks as stored and as shown: a user's registrations (URL, event types, secrets, health) and the
bodies of the `/v1/webhooks` routes. Secrets are stored, but shown only once, when created or rotated.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal, get_args

from pydantic import AfterValidator, AnyUrl, BaseModel, ConfigDict, Field, UrlConstraints

__all__ = [
    "EVENT_TYPES",
    "PAGE_CURSOR_PATTERN",
    "Attempt",
    "AttemptsPage",
    "EventTypes",
    "Registry",
    "StoredSecret",
    "StoredWebhook",
    "Webhook",
    "WebhookCreate",
    "WebhookCreated",
    "WebhookPage",
    "WebhookPatch",
    "WebhookPing",
    "WebhookSecret",
    "page_cursor",
]

EventType = Literal[
    "task.created",
    "task.updated",
    "task.completed",
    "task.reopened",
    "task.deleted",
    "reminder.fired",
    "occurrence.due",
    "member.added",
    "member.updated",
    "member.removed",
]
EVENT_TYPES: Final[tuple[str, ...]] = get_args(EventType)
"""The change feed's event types: what a webhook may subscribe to."""


def _unique(events: list[EventType]) -> list[EventType]:
    if len(set(events)) != len(events):
        raise ValueError("each event type at most once")
    return events


EventTypes = Annotated[
    list[EventType],
    Field(min_length=1, max_length=len(EVENT_TYPES), json_schema_extra={"uniqueItems": True}),
    AfterValidator(_unique),
]
WebhookUrl = Annotated[AnyUrl, UrlConstraints(max_length=2000, allowed_schemes=["https", "http"])]
Description = Annotated[str, Field(max_length=500)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookCreate(_Body):
    url: WebhookUrl = Field(
        description="Where events are POSTed (https; http only where the operator allows)"
    )
    events: EventTypes = Field(description="The change feed's event types to deliver")
    description: Description = ""


class WebhookPatch(_Body):
    """Only the fields present change; `enabled: true` re-enables a webhook disabled after failures."""

    url: WebhookUrl | None = None
    events: EventTypes | None = None
    description: Description | None = None
    enabled: bool | None = None


class StoredSecret(BaseModel):
    """A signing secret (`whsec_<base64>`); a rotated-out one keeps signing until `expires_at`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: str
    expires_at: dt.datetime | None = None


class StoredWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    url: str
    events: list[str]
    description: str = ""
    secrets: list[StoredSecret]
    enabled: bool = True
    disabled_reason: str | None = None
    disabled_at: dt.datetime | None = None
    consecutive_failures: int = 0
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int = 1

    def signing_secrets(self, now: dt.datetime) -> list[str]:
        """The secrets that sign a delivery at `now`: the current one, then any still in their grace."""
        return [s.secret for s in self.secrets if s.expires_at is None or s.expires_at > now]


class Registry(BaseModel):
    """All of one user's webhooks: one state key, written with its ETag."""

    model_config = ConfigDict(extra="forbid")

    hooks: list[StoredWebhook] = []

    def find(self, webhook_id: str) -> StoredWebhook | None:
        return next((h for h in self.hooks if h.id == webhook_id), None)


class Webhook(BaseModel):
    """A webhook as its owner sees it (never its secret). `consecutive_failures` counts deliveries that
    failed every attempt since the last success; at the limit the webhook is disabled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    disabled_at: dt.datetime | None
    consecutive_failures: int
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int

    @classmethod
    def of(cls, hook: StoredWebhook) -> Webhook:
        return cls.model_validate(hook.model_dump(exclude={"secrets"}))


class WebhookCreated(Webhook):
    secret: str = Field(description="The signing secret (`whsec_<base64>`); shown only in this response")


class WebhookSecret(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: str = Field(description="The new signing secret; shown only in this response")
    previous_expires_at: dt.datetime | None = Field(
        description="Until when deliveries are also signed with the previous secret (null: not at all)"
    )


class WebhookPage(BaseModel):
    """Oldest first; `next_cursor` continues after the last one shown (null: there are no more)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhooks: list[Webhook]
    next_cursor: str | None = None

    @classmethod
    def of(cls, hooks: list[StoredWebhook], after: str | None, limit: int) -> WebhookPage:
        """The page of `hooks` (in creation order) after cursor `after` (see `page_cursor`)."""
        rest = sorted((h for h in hooks if after is None or page_cursor(h) > after), key=page_cursor)
        shown = rest[:limit]
        more = len(rest) > limit
        return cls(
            webhooks=[Webhook.of(h) for h in shown], next_cursor=page_cursor(shown[-1]) if more else None
        )


PAGE_CURSOR_PATTERN: Final = r"^\d{20}-[0-9a-f]{32}$"


def page_cursor(hook: StoredWebhook) -> str:
    """A position in creation order that survives deletions: creation time (microseconds, zero-padded so
    strings sort as the numbers) and id."""
    micros = int(hook.created_at.timestamp() * 1_000_000)
    return f"{micros:020d}-{hook.id}"


class Attempt(BaseModel):
    """One delivery attempt: `outcome` is `delivered`, `retry` (failed; another attempt follows), `failed`
    (failed, and the last attempt) or `refused` (the target address is not allowed: nothing was sent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cursor: str = ""
    message_id: str
    event_id: str
    event_type: str
    attempt: int
    at: dt.datetime
    outcome: str
    status_code: int | None = None
    error: str | None = None
    duration_ms: float | None = None


class AttemptsPage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: list[Attempt]
    next_cursor: str
    has_more: bool


class WebhookPing(BaseModel):
    """What a test ping did: one attempt, made while the request waited (never retried)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempt: Attempt
