"""The REST facade and the `todo-engine` command line (the composition root)."""

__all__: list[str] = []
