"""Where webhooks may deliver: only public addresses (no loopback, link-local, private, unique-local,
shared, multicast, reserved or unspecified ones) over https, unless the operator allows private targets
(`TODO_WEBHOOKS_ALLOW_PRIVATE=true`, which also allows plain http, for local development and tests).

A host name is resolved and every address checked; the connection then goes to the addresses checked
(the resolver below is the HTTP client's own), so a name cannot resolve to something else in between.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

__all__ = ["AddressPolicy", "GuardedResolver", "RefusedTarget"]

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedTarget(OSError):
    """The URL or an address it resolves to may not receive webhooks. Not retryable as is."""


class AddressPolicy:
    """The one rule for webhook targets, used at registration and at every delivery."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    def check_url(self, url: str) -> tuple[str, int]:
        """The URL's host and port, or RefusedTarget naming what is wrong with it."""
        parts = urlsplit(url)
        schemes = ("https", "http") if self.allow_private else ("https",)
        if parts.scheme not in schemes:
            raise RefusedTarget(
                f"webhook URLs must use {' or '.join(schemes)}"
                + ("" if self.allow_private else " (http is allowed only with TODO_WEBHOOKS_ALLOW_PRIVATE)")
            )
        if parts.username or parts.password:
            raise RefusedTarget("webhook URLs may not carry credentials")
        host = parts.hostname
        if not host:
            raise RefusedTarget("the webhook URL has no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise RefusedTarget(f"the webhook URL's port is invalid: {exc}") from None
        literal = _literal(host)
        if literal is not None:
            self.check_address(literal, host)
        return host, port

    def check_address(self, address: _Address, host: str) -> None:
        if self.allow_private or _public(address):
            return
        raise RefusedTarget(
            f"{host} resolves to {address}, which is not a public address "
            "(loopback, private, link-local, multicast and the like are refused unless "
            "TODO_WEBHOOKS_ALLOW_PRIVATE=true)"
        )

    async def check(self, url: str) -> None:
        """Registration's check: the URL is acceptable and its host resolves to allowed addresses only."""
        host, port = self.check_url(url)
        if _literal(host) is not None:
            return
        resolver = GuardedResolver(self)
        try:
            await resolver.resolve(host, port, socket.AF_UNSPEC)
        except RefusedTarget:
            raise
        except OSError as exc:
            raise RefusedTarget(f"{host} does not resolve: {exc}") from exc
        finally:
            await resolver.close()


class GuardedResolver(AbstractResolver):
    """aiohttp's threaded resolver, refusing a name when any of its addresses is not allowed."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner: ThreadedResolver | None = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = ThreadedResolver(asyncio.get_running_loop())
        found = await self._inner.resolve(host, port, family)
        for result in found:
            self._policy.check_address(ipaddress.ip_address(result["host"]), host)
        return found

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def _literal(host: str) -> _Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _public(address: _Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is not None:
            return _public(embedded)
    return address.is_global and not address.is_multicast
