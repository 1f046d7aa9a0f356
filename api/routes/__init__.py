"""One router per resource of the public API."""

__all__: list[str] = []
