"""`/v1/webhooks`: the caller's webhooks. Register (the signing secret is shown once), list, read, edit
(re-enable after failures), delete, send a test ping, rotate the secret, and read the delivery log.

Each event of the caller's feed whose type a webhook lists is delivered by a durable workflow
(`api.webhooks.delivery`); the parts are opened by the lifespan and put on `app.state.webhooks`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from api.deps import ID_PATTERN, CurrentUser, IdempotencyKey, IfMatch, if_match_version
from api.openapi import problem_responses
from api.problems import ServiceUnavailable
from api.responses import model_response
from api.webhooks import RefusedTarget, Webhooks
from api.webhooks.models import (
    PAGE_CURSOR_PATTERN,
    AttemptsPage,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookPage,
    WebhookPatch,
    WebhookPing,
    WebhookSecret,
)
from todo_actors.errors import InvalidInput

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/webhooks", tags=["webhooks"], responses=problem_responses(400, 401, 404, 422, 429, 502, 503)
)

DEFAULT_GRACE_SECONDS = 24 * 3600


def _webhooks(request: Request) -> Webhooks:
    webhooks: Webhooks | None = getattr(request.app.state, "webhooks", None)
    if webhooks is None:
        raise ServiceUnavailable("webhooks are not enabled in this app")
    return webhooks


WebhooksDep = Annotated[Webhooks, Depends(_webhooks)]
WebhookId = Annotated[str, Path(pattern=ID_PATTERN, description="The webhook's id")]


async def _checked(webhooks: Webhooks, url: str) -> None:
    """The address guard's verdict on `url`, as a 422 naming the field."""
    try:
        await webhooks.policy.check(url)
    except RefusedTarget as exc:
        raise InvalidInput(
            f"webhook URL refused: {exc}",
            errors=[{"loc": ["body", "url"], "msg": str(exc), "type": "url_refused"}],
        ) from None


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses=problem_responses(409, 413),
    summary="Register a webhook (the response shows its signing secret, once)",
)
async def create_webhook(
    body: WebhookCreate,
    user: CurrentUser,
    webhooks: WebhooksDep,
    idempotency_key: IdempotencyKey = None,  # replayed by the middleware: a retry gets the same secret
) -> Response:
    await _checked(webhooks, str(body.url))
    hook, secret = await webhooks.registry.create(user, body)
    created = WebhookCreated.model_validate({**Webhook.of(hook).model_dump(), "secret": secret})
    return model_response(created, 201, version=hook.version, location=f"/v1/webhooks/{hook.id}")


@router.get("", response_model=WebhookPage, summary="The caller's webhooks, oldest first")
async def list_webhooks(
    user: CurrentUser,
    webhooks: WebhooksDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    cursor: Annotated[
        str | None, Query(pattern=PAGE_CURSOR_PATTERN, description="`next_cursor` of the previous page")
    ] = None,
) -> Response:
    return model_response(WebhookPage.of(await webhooks.registry.all(user), cursor, limit))


@router.get("/{webhook_id:segment}", response_model=Webhook, summary="One webhook and its health")
async def get_webhook(webhook_id: WebhookId, user: CurrentUser, webhooks: WebhooksDep) -> Response:
    hook = await webhooks.registry.get(user, webhook_id)
    return model_response(Webhook.of(hook), version=hook.version)


@router.patch(
    "/{webhook_id:segment}",
    response_model=Webhook,
    responses=problem_responses(412, 413),
    summary="Change the URL, events or description; `enabled: true` re-enables a disabled webhook",
)
async def edit_webhook(
    webhook_id: WebhookId,
    body: WebhookPatch,
    user: CurrentUser,
    webhooks: WebhooksDep,
    if_match: IfMatch = None,
) -> Response:
    if body.url is not None:
        await _checked(webhooks, str(body.url))
    hook = await webhooks.registry.patch(user, webhook_id, body, if_match_version(if_match))
    return model_response(Webhook.of(hook), version=hook.version)


@router.delete(
    "/{webhook_id:segment}",
    status_code=204,
    responses=problem_responses(412),
    summary="Delete a webhook (pending deliveries stop) and its delivery log",
)
async def delete_webhook(
    webhook_id: WebhookId, user: CurrentUser, webhooks: WebhooksDep, if_match: IfMatch = None
) -> Response:
    await webhooks.registry.delete(user, webhook_id, if_match_version(if_match))
    await webhooks.log.forget(webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id:segment}:ping",
    response_model=WebhookPing,
    summary="Send a signed `webhook.ping` now and answer what happened (not retried, not counted)",
)
async def ping_webhook(webhook_id: WebhookId, user: CurrentUser, webhooks: WebhooksDep) -> Response:
    return model_response(WebhookPing(attempt=await webhooks.ping(user, webhook_id)))


@router.post(
    "/{webhook_id:segment}:rotate-secret",
    response_model=WebhookSecret,
    summary="A new signing secret (shown once); the previous one keeps signing for `grace_seconds`",
)
async def rotate_secret(
    webhook_id: WebhookId,
    user: CurrentUser,
    webhooks: WebhooksDep,
    grace_seconds: Annotated[
        int,
        Query(
            ge=0,
            le=7 * 24 * 3600,
            description="How long deliveries also carry a signature with the previous secret (0: not at all)",
        ),
    ] = DEFAULT_GRACE_SECONDS,
    idempotency_key: IdempotencyKey = None,  # replayed by the middleware: a retry gets the same secret
) -> Response:
    hook, secret, expires = await webhooks.registry.rotate(
        user, webhook_id, dt.timedelta(seconds=grace_seconds)
    )
    return model_response(WebhookSecret(secret=secret, previous_expires_at=expires), version=hook.version)


@router.get(
    "/{webhook_id:segment}/deliveries",
    response_model=AttemptsPage,
    summary="The webhook's delivery attempts (status codes, times, outcomes), oldest first",
)
async def list_deliveries(
    webhook_id: WebhookId,
    user: CurrentUser,
    webhooks: WebhooksDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[
        str | None, Query(pattern=r"^\d{1,18}$", description="`next_cursor` of the previous page")
    ] = None,
) -> Response:
    await webhooks.registry.get(user, webhook_id)  # 404 for another user's webhook
    page = await webhooks.log.attempts(webhook_id, int(cursor or 0), limit)
    return model_response(page)
