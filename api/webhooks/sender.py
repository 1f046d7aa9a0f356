"""Sending one signed webhook request: aiohttp (already the app's client library; deliveries go to
arbitrary hosts over TLS, which the app<->sidecar wire `sidecar.wire.http1` is not for), through the
address guard's resolver, never following redirects (a 3xx is a failed attempt), with a timeout.

Signatures follow Standard Webhooks (standardwebhooks.com): `webhook-signature: v1,<base64 HMAC-SHA256>` of
`{webhook-id}.{webhook-timestamp}.{body}` keyed with the secret's base64-decoded bytes, one per secret in
use (space-separated), so receivers keep verifying through a secret rotation.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import aiohttp

from api.webhooks.guard import AddressPolicy, GuardedResolver, RefusedTarget

__all__ = ["SECRET_PREFIX", "SendResult", "WebhookSender", "new_secret", "signature_header", "signed_headers"]

log = logging.getLogger("api.webhooks")

_USER_AGENT = "todo-engine-webhooks/0.1"
_READ_AT_MOST = 64 * 1024  # of a receiver's answer: read (to reuse the connection), never stored
SECRET_PREFIX = "whsec_"
_SECRET_BYTES = 32  # the size of the HMAC-SHA256 key, as Standard Webhooks recommends (24-64)


def new_secret() -> str:
    """A fresh secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature_header(secrets_in_use: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<sig>` per secret, space-separated."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets_in_use
    )


def signed_headers(
    secrets_in_use: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt (the timestamp is the attempt's)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_in_use, message_id, timestamp, body),
        "content-type": "application/json",
    }


@dataclass(frozen=True)
class SendResult:
    """`refused`: the target is not allowed (nothing was sent); `failed`: no 2xx answer."""

    outcome: Literal["delivered", "failed", "refused"]
    status_code: int | None
    error: str | None
    duration_ms: float


class WebhookSender:
    """One connection pool, on the loop that made the sender (the app's): a send from another loop (the
    workflow worker's, which runs the attempt activities) runs on that loop, so `aclose()` closes the only
    pool there is, whatever state the worker's loop is in at shutdown."""

    def __init__(self, policy: AddressPolicy, *, timeout_seconds: float) -> None:
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._home = asyncio.get_running_loop()
        self._pool: aiohttp.ClientSession | None = None
        self._closed = False

    def _session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the webhook sender is closed (the app is shutting down)")
        if self._pool is None or self._pool.closed:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._policy), limit_per_host=32)
            self._pool = aiohttp.ClientSession(connector=connector, timeout=self._timeout, trust_env=False)
        return self._pool

    async def send(
        self, url: str, signing: Sequence[str], message_id: str, body: bytes, at: dt.datetime
    ) -> SendResult:
        """POST `body` to `url`, signed with every secret in `signing` and timestamped `at`."""
        sending = self._send(url, signing, message_id, body, at)
        if asyncio.get_running_loop() is self._home:
            return await sending
        try:
            on_home = asyncio.run_coroutine_threadsafe(sending, self._home)
        except RuntimeError:  # the app's loop is gone (shutting down): the activity fails and is retried
            sending.close()
            raise
        return await asyncio.wrap_future(on_home)

    async def _send(
        self, url: str, signing: Sequence[str], message_id: str, body: bytes, at: dt.datetime
    ) -> SendResult:
        started = time.perf_counter()

        def result(
            outcome: Literal["delivered", "failed", "refused"], status: int | None, error: str | None
        ) -> SendResult:
            return SendResult(outcome, status, error, round((time.perf_counter() - started) * 1000, 3))

        try:
            self._policy.check_url(url)
        except RefusedTarget as exc:
            return result("refused", None, str(exc))
        headers = signed_headers(signing, message_id, int(at.timestamp()), body)
        headers["user-agent"] = _USER_AGENT
        try:
            async with self._session().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.content.read(_READ_AT_MOST)
                status = response.status
                location = response.headers.get("location")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, RefusedTarget):
                return result("refused", None, str(exc.os_error))
            return result("failed", None, f"cannot connect: {exc.os_error}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return result("failed", None, f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__)
        if 200 <= status < 300:
            return result("delivered", status, None)
        if 300 <= status < 400:
            return result("failed", status, f"redirect to {location!r} not followed")
        return result("failed", status, f"HTTP {status}")

    async def aclose(self) -> None:
        self._closed = True
        if self._pool is not None:
            await self._pool.close()
