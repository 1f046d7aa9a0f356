"""`python -m api ...` — the same as `todo-engine ...`."""

from api.process.cli import main

raise SystemExit(main())
