"""ASGI middleware of the two apps. Each wraps requests (traces, counts, limits bodies, replays idempotent
POSTs, checks the channel's token); none serves a route."""
