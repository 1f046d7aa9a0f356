"""`python -m sidecar run ...` — the same as `todo-engine sidecar run ...`."""

import sys

from sidecar.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["run"]:
        args = args[1:]
    raise SystemExit(main(args))
