"""`todo-engine`: the command line. Subcommands are dispatched lazily so each loads only what it needs."""

from __future__ import annotations

import argparse
import math
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
                 (or the same TODO_JWT_SECRET), for at most TODO_JWT_MAX_TTL seconds (30 days)
  dead-letters [--url URL] [--token T] list|show|redrive|discard [ID]
                 operate the dead letters of an instance through its admin API (TODO_ADMIN_USERS)
  sidecar run [dapr run flags] [-- <app command>]
                 run the embedded Dapr-compatible sidecar (a drop-in for `dapr run`)
  clock show --data-dir DIR | clock advance --data-dir DIR SECONDS
                 show or move forward the stored dev clock of a stopped engine (simulates downtime)

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
        from api.process.up import main_up

        return main_up(rest, dict(os.environ))
    if command == "serve":
        from api.process.serve import main_serve

        return main_serve(dict(os.environ), rest)
    if command == "token":
        return _token(rest)
    if command == "clock":
        return _clock(rest)
    if command == "dead-letters":
        from api.process.dead_letters_cli import main_dead_letters

        return main_dead_letters(rest, dict(os.environ))
    sys.stderr.write(f"todo-engine: unknown command {command!r}\n\n{_USAGE}")
    return 2


def _token(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="todo-engine token", description="Print a bearer token for a user.")
    p.add_argument("user")
    p.add_argument("--data-dir", type=Path, default=Path(".data"))
    p.add_argument(
        "--ttl",
        type=int,
        default=None,
        help="seconds the token stays valid (default and most: TODO_JWT_MAX_TTL)",
    )
    args = p.parse_args(argv)
    from api.auth import mint_token
    from api.process.local_secrets import read
    from api.process.settings import SettingsError, jwt_max_ttl

    try:
        max_ttl = jwt_max_ttl(os.environ)
    except SettingsError as exc:
        sys.stderr.write(f"todo-engine token: {exc}\n")
        return 2
    ttl = max_ttl if args.ttl is None else args.ttl
    if ttl > max_ttl:
        sys.stderr.write(
            f"todo-engine token: --ttl {ttl} is longer than the {max_ttl} s the API accepts "
            "(TODO_JWT_MAX_TTL); such a token would be refused\n"
        )
        return 2

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
    if not args.user or len(args.user) > 200 or ttl <= 0:
        sys.stderr.write("todo-engine token: the user must be 1-200 characters and --ttl positive\n")
        return 2
    token = mint_token(
        secret,
        args.user,
        now=int(time.time()),
        ttl_seconds=ttl,
        issuer=os.environ.get("TODO_JWT_ISSUER") or None,
        audience=os.environ.get("TODO_JWT_AUDIENCE") or None,
    )
    sys.stdout.write(token + "\n")
    return 0


# Far enough for any downtime and still a representable instant (datetime stops at year 9999).
_MAX_ADVANCE_SECONDS = 100 * 366 * 86400.0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 <= value <= _MAX_ADVANCE_SECONDS:
        raise argparse.ArgumentTypeError(
            f"seconds must be a finite number from 0 to {_MAX_ADVANCE_SECONDS:.0f}, not {text!r}"
        )
    return value


def _clock(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="todo-engine clock",
        description="The stored dev clock of a stopped engine (it takes effect when the engine runs with "
        "--dev-clock): move it forward to simulate downtime, so due work fires late on the next start.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    show = sub.add_parser("show", help="print the stored offset and the instant it stands for")
    show.add_argument("--data-dir", type=Path, default=Path(".data"))
    advance = sub.add_parser("advance", help="move the stored clock forward; refused while an engine runs")
    advance.add_argument("--data-dir", type=Path, default=Path(".data"))
    advance.add_argument("seconds", type=_seconds, help="how far forward, in seconds (>= 0)")
    args = p.parse_args(argv)
    from sidecar.datadir import DataDirBusy, DataDirLock, read_dev_clock, write_dev_clock  # a stdlib leaf

    data_dir: Path = args.data_dir
    if not data_dir.is_dir():
        sys.stderr.write(f"todo-engine clock: {data_dir} is not a directory (no engine ran there)\n")
        return 1
    if args.action == "show":
        _print_clock(read_dev_clock(data_dir) or 0.0)
        return 0
    try:  # held while rewriting: no engine may start (or run) meanwhile
        lock = DataDirLock.acquire(data_dir, "todo-engine clock advance")
    except DataDirBusy as exc:
        sys.stderr.write(f"todo-engine clock: refused, the engine is running: {exc}\n")
        return 1
    try:
        offset = (read_dev_clock(data_dir) or 0.0) + args.seconds
        write_dev_clock(data_dir, offset)
    finally:
        lock.release()
    _print_clock(offset)
    return 0


def _print_clock(offset: float) -> None:
    from datetime import UTC, datetime

    instant = datetime.fromtimestamp(time.time() + offset, UTC).isoformat(timespec="seconds")
    instant = instant.replace("+00:00", "Z")
    sys.stdout.write(f"dev clock offset: {offset:+.3f} s\nstands for: {instant} (wall time now + offset)\n")
