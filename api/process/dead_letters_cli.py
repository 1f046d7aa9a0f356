"""`todo-engine dead-letters`: the admin route `/v1/admin/dead-letters` from a shell. It only calls the route
(one implementation, one authorization: the token's subject must be in the instance's TODO_ADMIN_USERS),
so it works against any instance an operator can reach, under daprd too.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from urllib.parse import quote, urlencode

__all__ = ["main_dead_letters"]

_PATH = "/v1/admin/dead-letters"


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="todo-engine dead-letters",
        description="List, show, redrive or discard the dead letters of a todo-engine instance.",
    )
    p.add_argument("--url", default=environ.get("TODO_URL") or "http://127.0.0.1:8000", help="the public API")
    p.add_argument(
        "--token",
        default=environ.get("TODO_TOKEN"),
        help="bearer token of a user in TODO_ADMIN_USERS (default: $TODO_TOKEN; `todo-engine token <user>`)",
    )
    actions = p.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="one page, oldest first (JSON)")
    listing.add_argument("--topic", help="only those of this topic (task-events, reminders)")
    listing.add_argument("--cursor", default="0", help="next_cursor of the previous page")
    listing.add_argument("--limit", type=int, default=50)
    for action, what in (
        ("show", "one dead letter (JSON)"),
        ("redrive", "publish the original event again to its topic, then remove the dead letter"),
        ("discard", "remove a dead letter"),
    ):
        actions.add_parser(action, help=what).add_argument("id", help="the dead letter's id")
    return p


def main_dead_letters(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    args = _parser(environ).parse_args(argv)
    if not args.token:
        sys.stderr.write("todo-engine dead-letters: no token (--token or TODO_TOKEN)\n")
        return 2
    if args.action == "list":
        query = {"cursor": args.cursor, "limit": str(args.limit)}
        if args.topic:
            query["topic"] = args.topic
        method, path = "GET", f"{_PATH}?{urlencode(query)}"
    else:
        item = f"{_PATH}/{quote(args.id, safe='')}"
        method, path = {
            "show": ("GET", item),
            "redrive": ("POST", f"{item}/redrive"),
            "discard": ("DELETE", item),
        }[args.action]
    request = urllib.request.Request(
        args.url.rstrip("/") + path, method=method, headers={"Authorization": f"Bearer {args.token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        sys.stderr.write(f"todo-engine dead-letters: {exc.code} {_detail(exc.read())}\n")
        return 1
    except OSError as exc:  # URLError included: the instance cannot be reached
        sys.stderr.write(f"todo-engine dead-letters: cannot reach {args.url}: {exc}\n")
        return 1
    if body:
        sys.stdout.write(json.dumps(json.loads(body), indent=2) + "\n")
    return 0


def _detail(body: bytes) -> str:
    """A problem+json answer's title and detail, else the start of the body."""
    try:
        problem = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", errors="replace")
    if not isinstance(problem, dict):
        return str(problem)[:200]
    return ": ".join(str(problem[k]) for k in ("title", "detail") if problem.get(k))
