"""`todo-engine`: the command line. Subcommands are dispatched lazily so each loads only what it needs."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_USAGE = """usage: todo-engine <command> [options]

commands:
  sidecar run [dapr run flags] [-- <app command>]
                 run the embedded Dapr-compatible sidecar (a drop-in for `dapr run`)

`todo-engine <command> --help` shows a command's options.
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(_USAGE)
        return 0
    if args[0] == "sidecar":
        if len(args) < 2 or args[1] != "run":
            sys.stderr.write("usage: todo-engine sidecar run [dapr run flags] [-- <app command>]\n")
            return 2
        from sidecar.cli import main as sidecar_main

        return sidecar_main(args[2:])
    sys.stderr.write(f"todo-engine: unknown command {args[0]!r}\n\n{_USAGE}")
    return 2
