"""`Idempotency-Key` on POST: a retried request gets the first response again and changes nothing twice.

Records live in the Dapr state store with a TTL, keyed by user + key and holding a fingerprint of the
request (method, path, query, canonical JSON body). The first request claims the key with a first-write
save; a retry replays the stored response; a concurrent duplicate gets 409; the same key with another
request gets 422. Server errors (5xx) release the claim so the client can retry.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import grpc
from dapr.aio.clients import DaprClient

# A private module of public types: the SDK exports them nowhere else (its docs import them so).
from dapr.clients.grpc._state import StateItem, StateOptions
from dapr.proto import common_v1
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import TokenVerifier
from api.middleware.body_limit import read_body
from api.problems import (
    ApiProblem,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    problem_response,
)
from api.process.sidecar_link import SidecarError, grpc_status

__all__ = ["HEADER", "IdempotencyMiddleware", "IdempotencyStore", "Replay", "fingerprint"]

log = logging.getLogger("api.middleware.idempotency")

HEADER = "idempotency-key"
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_KEY = re.compile(KEY_PATTERN)
# How long a claim blocks duplicates while its request runs (longer than any actor call may take).
CLAIM_TTL_SECONDS = 120
# Response headers worth replaying (the rest are per-connection or recomputed).
_REPLAYED = ("content-type", "location", "etag", "retry-after")
# The SDK's save_bulk_state hands an item's `options` to the protobuf message unconverted: give it the proto.
_FIRST_WRITE = common_v1.StateOptions(concurrency=common_v1.StateOptions.CONCURRENCY_FIRST_WRITE)


@dataclass(frozen=True)
class Replay:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


# What a claim comes to: None (go ahead and record the answer), the answer to replay, or the problem.
Outcome = Replay | ApiProblem | None


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """The request's identity: JSON bodies are canonicalized, so whitespace and key order don't matter."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyStore:
    """Claims, replays and results of idempotency keys, many at once: `POST /v1/batch` claims all its
    command uuids in one state call and keeps all their results in another; a request's Idempotency-Key
    is the same path with one key."""

    def __init__(self, client: DaprClient, store: str, ttl_seconds: int) -> None:
        self._client = client
        self._store = store
        self._ttl = str(ttl_seconds)

    @staticmethod
    def _key(user: str, key: str) -> str:
        digest = hashlib.sha256(f"{len(user)}:{user}:{key}".encode()).hexdigest()[:48]
        return f"idem|{digest}"

    async def begin(self, user: str, key: str, print_: str) -> Replay | None:
        """Claim the key (None: go ahead) or return the response to replay; raises on misuse."""
        (outcome,) = await self.begin_many(user, [(key, print_)])
        if isinstance(outcome, ApiProblem):
            raise outcome
        return outcome

    async def begin_many(self, user: str, claims: Sequence[tuple[str, str]]) -> list[Outcome]:
        """Claim every (key, fingerprint): None (go ahead), the response to replay, or the problem.

        The common case, no key seen before, is one bulk first-write save. A key that exists makes the
        store refuse (ABORTED), all at once or after saving some of the others (daprd's bulk save is not
        atomic), so every claim carries this call's token: one bulk read then tells the keys this call
        holds from the records of earlier requests, and what is still free is claimed one by one.

        Not a transaction: the SDK's execute_state_transaction sends no per-operation concurrency, and
        daprd answers any failed transaction INTERNAL, so a taken key could not be told from a failure."""
        if not claims:
            return []
        token = uuid.uuid4().hex
        keys = [self._key(user, key) for key, _ in claims]
        claim_ttl = {"ttlInSeconds": str(CLAIM_TTL_SECONDS)}
        items = [
            _first_write(k, json.dumps({"state": "pending", "fingerprint": p, "claim": token}), claim_ttl)
            for k, (_, p) in zip(keys, claims, strict=True)
        ]
        try:
            await self._client.save_bulk_state(self._store, items)
            return [None] * len(claims)
        except SidecarError as exc:
            if grpc_status(exc) != grpc.StatusCode.ABORTED:
                await self._free_own(keys, token)
                raise
        found = await self._records(keys)
        outcomes: list[Outcome] = []
        for state_key, (_, print_) in zip(keys, claims, strict=True):
            record = found.get(state_key)
            if record is None:
                outcomes.append(await self._claim_one(state_key, print_))
            elif record.get("claim") == token:
                outcomes.append(None)
            else:
                outcomes.append(_judge(record, print_))
        return outcomes

    async def _claim_one(self, state_key: str, print_: str) -> Outcome:
        for _ in range(3):
            try:
                record = json.dumps({"state": "pending", "fingerprint": print_})
                ttl = {"ttlInSeconds": str(CLAIM_TTL_SECONDS)}
                await self._client.save_bulk_state(self._store, [_first_write(state_key, record, ttl)])
                return None
            except SidecarError as exc:
                if grpc_status(exc) != grpc.StatusCode.ABORTED:
                    raise
            found = await self._client.get_state(self._store, state_key)
            if found.data:
                return _judge(json.loads(found.data), print_)
            # expired between the two calls: claim again
        return IdempotencyInProgress()

    async def _records(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        found = await self._client.get_bulk_state(self._store, list(keys))
        return {item.key: json.loads(item.data) for item in found.items if item.data}

    async def _free_own(self, keys: Sequence[str], token: str) -> None:
        """After a failed bulk claim, free what it may have claimed before failing (best effort)."""
        try:
            found = await self._records(keys)
            await self._delete([k for k, r in found.items() if r.get("claim") == token])
        except SidecarError as exc:
            log.warning("could not free the claims of a failed bulk claim: %r", exc)

    async def finish(self, user: str, key: str, print_: str, response: Replay) -> None:
        await self.finish_many(user, [(key, print_, response)])

    async def finish_many(self, user: str, results: Sequence[tuple[str, str, Replay]]) -> None:
        """Keep every (key, fingerprint, response) for the TTL, in one bulk save."""
        if not results:
            return
        ttl = {"ttlInSeconds": self._ttl}
        items = [
            StateItem(self._key(user, key), json.dumps(_done(print_, response)), metadata=ttl)
            for key, print_, response in results
        ]
        await self._client.save_bulk_state(self._store, items)

    async def release(self, user: str, key: str) -> None:
        await self.release_many(user, [key])

    async def release_many(self, user: str, keys: Sequence[str]) -> None:
        """Free claims so the requests can be sent again (the rare path: a failure stopped them)."""
        await self._delete([self._key(user, key) for key in keys])

    async def _delete(self, state_keys: Sequence[str]) -> None:
        await asyncio.gather(*(self._client.delete_state(self._store, k) for k in state_keys))


def _first_write(state_key: str, value: str, metadata: dict[str, str]) -> StateItem:
    return StateItem(state_key, value, options=cast(StateOptions, _FIRST_WRITE), metadata=metadata)


def _judge(record: dict[str, Any], print_: str) -> Outcome:
    """What a key already claimed or answered means for this request."""
    if record.get("fingerprint") != print_:
        return IdempotencyKeyReused(
            "this Idempotency-Key was already used for a different request; use a new key"
        )
    if record.get("state") != "done":
        return IdempotencyInProgress()
    return Replay(
        int(record["status"]), [(k, v) for k, v in record["headers"]], base64.b64decode(record["body"])
    )


def _done(print_: str, response: Replay) -> dict[str, Any]:
    return {
        "state": "done",
        "fingerprint": print_,
        "status": response.status,
        "headers": response.headers,
        "body": base64.b64encode(response.body).decode("ascii"),
    }


class IdempotencyMiddleware:
    """Pure ASGI: wraps POST requests that carry an `Idempotency-Key` (after body limits, before routes)."""

    def __init__(
        self,
        app: ASGIApp,
        store: Callable[[Scope], IdempotencyStore | None],
        verifier: Callable[[Scope], TokenVerifier | None],
    ) -> None:
        self.app = app
        self._store = store
        self._verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get(HEADER)
        store, verifier = self._store(scope), self._verifier(scope)
        if key is None or store is None or verifier is None:
            await self.app(scope, receive, send)
            return
        try:
            user = verifier.user_of(headers.get("authorization"))
        except ApiProblem:
            await self.app(scope, receive, send)  # the route answers 401
            return
        path = scope["path"]
        if not _KEY.fullmatch(key):
            await problem_response(
                "validation-error",
                422,
                "Request validation failed",
                "Idempotency-Key must be 1-255 printable ASCII characters",
                instance=path,
                errors=[{"loc": ["header", "Idempotency-Key"], "msg": "1-255 printable ASCII characters"}],
            )(scope, receive, send)
            return
        try:
            body = await read_body(receive)  # whole already: the body limit read it
        except ClientDisconnect:
            return  # nobody is left to answer, and nothing was claimed
        try:
            print_ = fingerprint("POST", path, scope.get("query_string", b"").decode("latin-1"), body)
            replay = await store.begin(user, key, print_)
        except ApiProblem as exc:
            await _problem(exc, path)(scope, receive, send)
            return
        except SidecarError as exc:
            log.warning("idempotency store unavailable: %r", exc)
            await problem_response(
                "service-unavailable",
                503,
                "Service unavailable",
                "the idempotency store cannot be reached",
                instance=path,
                headers={"Retry-After": "1"},
            )(scope, receive, send)
            return
        if replay is not None:
            await _send_replay(replay, send)
            return
        await self._run(scope, body, send, store, user, key, print_)

    async def _run(
        self,
        scope: Scope,
        body: bytes,
        send: Send,
        store: IdempotencyStore,
        user: str,
        key: str,
        print_: str,
    ) -> None:
        status = 500
        headers: list[tuple[str, str]] = []
        held: list[Message] = []
        chunks: list[bytes] = []
        recorded = False
        sent_body = False

        async def replay_receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        async def record() -> None:
            nonlocal recorded
            recorded = True
            try:
                if status < 500:
                    await store.finish(user, key, print_, Replay(status, headers, b"".join(chunks)))
                else:
                    await store.release(user, key)
            except SidecarError as exc:
                log.warning("could not record the idempotent response: %r", exc)

        async def capture(message: Message) -> None:
            # Hold the response until it is recorded: a retry sent the moment the client has the answer
            # must find the record (POST answers are small JSON documents).
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.extend(
                    (k.decode("latin-1").lower(), v.decode("latin-1"))
                    for k, v in message.get("headers", [])
                    if k.decode("latin-1").lower() in _REPLAYED
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                await record()
                for pending in held:
                    await send(pending)
                held.clear()

        try:
            await self.app(scope, replay_receive, capture)
        finally:
            if not recorded:
                status = 500  # the app failed before finishing its answer: free the key
                await record()


def _problem(exc: ApiProblem, path: str) -> Any:
    return problem_response(
        exc.kind, exc.status, exc.title, exc.detail, instance=path, headers=exc.headers, **exc.extra
    )


async def _send_replay(replay: Replay, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in replay.headers]
    headers.append((b"idempotent-replayed", b"true"))
    headers.append((b"content-length", str(len(replay.body)).encode()))
    await send({"type": "http.response.start", "status": replay.status, "headers": headers})
    await send({"type": "http.response.body", "body": replay.body})
