"""Pages of items go from the list actor to the client as the actor wrote them, without a second decode
and encode in the API.

A page is tens of kilobytes of JSON; validating it back into models and dumping it again would be a large
part of a read's CPU. The actor's reply is `Reply[TodoPage]` dumped by
pydantic: `{"value":<page>,"error":null}`, and `<page>` is byte for byte the public `ItemPage` (same
fields, same order; a test holds them together). Anything else (a domain error, a shape this module does
not expect) takes the ordinary, fully validated path.
"""

from __future__ import annotations

import re
from typing import cast

from dapr.actor import ActorProxy
from starlette.responses import Response

from api.responses import etag, model_response
from api.schemas import ItemPage
from todo_actors.interface import QueryTodos, TodoListActorInterface, TodoPageReply

__all__ = ["relay_page", "split_page_reply"]

_PREFIX = b'{"value":'
_SUFFIX = b',"error":null}'
# The page's last field: `list_version` is an int, so nothing inside the page can end the body like this.
_VERSION_AT_END = re.compile(rb',"list_version":(\d{1,18})\}\Z')
_METHOD: str = TodoListActorInterface.query_todos.__actormethod__  # the name the proxy sends


def split_page_reply(raw: bytes) -> tuple[bytes, int] | None:
    """(page JSON, list version) of a successful reply in the expected shape, else None."""
    if not (raw.startswith(_PREFIX) and raw.endswith(_SUFFIX)):
        return None
    page = raw[len(_PREFIX) : -len(_SUFFIX)]
    match = _VERSION_AT_END.search(page)
    if match is None or not page.startswith(b'{"items":['):
        return None
    return page, int(match.group(1))


async def relay_page(actor: TodoListActorInterface, query: QueryTodos) -> Response:
    """Ask the list actor for a page and answer with it (ETag = the list's version)."""
    proxy = cast(ActorProxy, actor)
    raw = await proxy.invoke_method(_METHOD, query.model_dump_json().encode("utf-8"))
    split = split_page_reply(raw)
    if split is not None:
        page, version = split
        return Response(page, media_type="application/json", headers={"ETag": etag(version)})
    result = TodoPageReply.model_validate_json(raw).unwrap()  # raises the domain error, if any
    body = ItemPage(items=result.items, next_cursor=result.next_cursor, list_version=result.list_version)
    return model_response(body, version=result.list_version)
