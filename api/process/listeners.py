"""Listening sockets bound before anything starts: a busy port fails at once, and the app channel's port is
known before the sidecar is told where to find it. A standard-library leaf, so `todo-engine up` can bind
and start its sidecar before it loads the app."""

from __future__ import annotations

import socket

__all__ = ["bind"]


def bind(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) TCP socket; port 0 picks a free one.

    Made with IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only for such sockets, and
    without it small replies stall on delayed ACKs.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock
