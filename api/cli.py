"""`todo-engine`: the command line. Subcommands are dispatched lazily so each loads only what it needs."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

_USAGE = """usage: todo-engine <command> [options]

commands:
  up [--host H] [--port P] [--data-dir DIR] [--dev-clock] [--log-format text|json]
                 run the embedded sidecar and the app together (local SQLite under the data directory)
  serve [--log-format text|json] [--log-level L] [--access-log]
                 run the app (public API + app channel) from environment settings, e.g. under `dapr run`
  token <user> [--data-dir DIR] [--ttl SECONDS]
                 print a bearer token for <user>, valid for an instance with the same data directory
                 (or the same TODO_JWT_SECRET)
  dead-letters [--url URL] [--token T] list|show|redrive|discard [ID]
                 operate the dead letters of an instance through its admin API (TODO_ADMIN_USERS)
  sidecar run [dapr run flags] [-- <app command>]
                 run the embedded Dapr-compatible sidecar (a drop-in for `dapr run`)

`todo-engine <command> --help` shows a command's options.
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(_USAGE)
        return 0
    command, rest = args[0], args[1:]
    if command == "sidecar":
        if not rest or rest[0] != "run":
            sys.stderr.write("usage: todo-engine sidecar run [dapr run flags] [-- <app command>]\n")
            return 2
        from sidecar.cli import main as sidecar_main

        return sidecar_main(rest[1:])
    if command == "up":
        from api.up import main_up

        return main_up(rest, dict(os.environ))
    if command == "serve":
        from api.server import main_serve

        return main_serve(dict(os.environ), rest)
    if command == "token":
        return _token(rest)
    if command == "dead-letters":
        from api.dead_letters_cli import main_dead_letters

        return main_dead_letters(rest, dict(os.environ))
    sys.stderr.write(f"todo-engine: unknown command {command!r}\n\n{_USAGE}")
    return 2


def _token(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="todo-engine token", description="Print a bearer token for a user.")
    p.add_argument("user")
    p.add_argument("--data-dir", type=Path, default=Path(".data"))
    p.add_argument("--ttl", type=int, default=30 * 24 * 3600, help="seconds the token stays valid")
    args = p.parse_args(argv)
    from api.auth import mint_token
    from api.local_secrets import read

    secret = os.environ.get("TODO_JWT_SECRET")
    if not secret:
        local = read(args.data_dir)
        if local is None:
            sys.stderr.write(
                f"todo-engine token: no TODO_JWT_SECRET and no secrets in {args.data_dir} "
                "(run `todo-engine up` with that --data-dir once, or set TODO_JWT_SECRET)\n"
            )
            return 1
        secret = local.jwt_secret
    if not args.user or len(args.user) > 200 or args.ttl <= 0:
        sys.stderr.write("todo-engine token: the user must be 1-200 characters and --ttl positive\n")
        return 2
    token = mint_token(
        secret,
        args.user,
        now=int(time.time()),
        ttl_seconds=args.ttl,
        issuer=os.environ.get("TODO_JWT_ISSUER") or None,
        audience=os.environ.get("TODO_JWT_AUDIENCE") or None,
    )
    sys.stdout.write(token + "\n")
    return 0
