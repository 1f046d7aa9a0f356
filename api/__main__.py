"""`python -m api ...` — the same as `todo-engine ...`."""

from api.cli import main

raise SystemExit(main())
