"""`/v1/admin/dead-letters`: list, redrive and discard the dead letters of the app's subscriptions.

A route on the public API rather than a CLI on the sidecar: it works wherever the app runs (a pod under
daprd has no shell for an operator, and the sidecar's state API is loopback-only there), and it comes with
the API's auth, rate limit, tracing, metrics and problem+json errors. Only the JWT subjects listed in
`TODO_ADMIN_USERS` may call it (none by default); any other authenticated caller gets 403. The CLI,
`todo-engine dead-letters` (`api.process.dead_letters_cli`), only calls this route.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from api.channel.dead_letters import DeadLetter, DeadLetterPage, DeadLetters, Redriven
from api.channel.deliveries import DEAD_LETTERED
from api.deps import CurrentUser, ResourcesDep
from api.openapi import problem_responses
from api.problems import ApiProblem
from api.responses import model_response
from todo_actors.errors import NotFound

__all__ = ["Forbidden", "router"]

log = logging.getLogger("api.admin")


class Forbidden(ApiProblem):
    """Authenticated, but not an administrator (`TODO_ADMIN_USERS`). Not retryable."""

    kind, status, title = "forbidden", 403, "Forbidden"


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    responses = problem_responses(*codes)
    if 403 in responses:
        responses[403] = {**responses[403], "description": "The caller is not in TODO_ADMIN_USERS"}
    return responses


router = APIRouter(
    prefix="/v1/admin/dead-letters",
    tags=["admin"],
    responses=_responses(401, 403, 422, 429, 502, 503),
)


async def _dead_letters(user: CurrentUser, resources: ResourcesDep) -> DeadLetters:
    settings = resources.settings
    if user not in settings.admin_users:
        raise Forbidden("only the users in TODO_ADMIN_USERS may operate dead letters")
    return DeadLetters(
        resources.proxies.client.http,
        settings.state_store,
        max_kept=settings.dead_letters_max,
        clock=resources.shared.clock.now,
    )


AdminDeadLetters = Annotated[DeadLetters, Depends(_dead_letters)]
"""The dead letters, for an administrator only (403 for anyone else)."""

DeadLetterId = Annotated[str, Path(pattern=r"^[0-9a-f]{40}$", description="The dead letter's `id`")]


@router.get("", response_model=DeadLetterPage, summary="Dead letters in arrival order, oldest first")
async def list_dead_letters(
    dead_letters: AdminDeadLetters,
    topic: Annotated[
        str | None,
        Query(
            pattern=f"^({'|'.join(map(re.escape, DEAD_LETTERED))})$", description="Only those of this topic"
        ),
    ] = None,
    cursor: Annotated[
        str | None, Query(pattern=r"^\d{1,18}$", description="`next_cursor` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    page = await dead_letters.page(int(cursor or 0), limit, topic)
    return model_response(page)


@router.get(
    "/{dead_letter_id:segment}",
    response_model=DeadLetter,
    responses=_responses(404),
    summary="One dead letter",
)
async def get_dead_letter(dead_letter_id: DeadLetterId, dead_letters: AdminDeadLetters) -> Response:
    found = await dead_letters.get(dead_letter_id)
    if found is None:
        raise NotFound(f"no dead letter {dead_letter_id}")
    return model_response(found)


@router.post(
    "/{dead_letter_id:segment}/redrive",
    response_model=Redriven,
    responses=_responses(404),
    summary="Publish the original event again to its topic, then remove the dead letter",
)
async def redrive_dead_letter(
    dead_letter_id: DeadLetterId,
    user: CurrentUser,
    dead_letters: AdminDeadLetters,
    resources: ResourcesDep,
) -> Response:
    redriven = await dead_letters.redrive(dead_letter_id, resources.settings.pubsub)
    if redriven is None:
        raise NotFound(f"no dead letter {dead_letter_id}")
    log.info("%s redrove dead letter %s (event %s)", user, dead_letter_id, redriven.event_id)
    return model_response(redriven)


@router.delete(
    "/{dead_letter_id:segment}",
    status_code=204,
    response_class=Response,
    responses=_responses(404),
    summary="Discard a dead letter",
)
async def discard_dead_letter(
    dead_letter_id: DeadLetterId, user: CurrentUser, dead_letters: AdminDeadLetters
) -> Response:
    if not await dead_letters.discard(dead_letter_id):
        raise NotFound(f"no dead letter {dead_letter_id}")
    log.info("%s discarded dead letter %s", user, dead_letter_id)
    return Response(status_code=204)
