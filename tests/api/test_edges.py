"""Edges of the served app, over raw sockets against `todo-engine up` (the real servers, real sidecar):
oversized headers are a 431, slow clients are cut off, tokens must expire, and NUL or non-UTF-8 input is
handled as documented. Timeouts are set small (TODO_HEADER_TIMEOUT, TODO_BODY_IDLE_TIMEOUT) so each
test is bounded to a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

from api.process.local_secrets import read
from tests.harness import engine_env, up_command

ROOT = Path(__file__).resolve().parents[2]
HEADER_TIMEOUT, BODY_IDLE, MAX_HEADER = 1.0, 1.0, 16_384
SIDECAR_CONNECTIONS = 2  # per pool: far fewer than the concurrent requests some tests send


@dataclass
class Engine:
    url: str
    host: str
    port: int
    token: str
    secret: str


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    data = tmp_path_factory.mktemp("edges") / "data"
    env = {
        **engine_env(),
        "TODO_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "TODO_BODY_IDLE_TIMEOUT": str(BODY_IDLE),
        "TODO_MAX_HEADER_BYTES": str(MAX_HEADER),
        "TODO_JWT_MAX_TTL": "3600",
        "TODO_SIDECAR_CONNECTIONS": str(SIDECAR_CONNECTIONS),
    }
    proc = subprocess.Popen(
        up_command(data, "--dev-clock"), cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        banner = _banner(proc)
        url = re.search(r"API (http://\S+)/v1", banner)
        token = re.search(r"dev token \(user 'dev'\): (\S+)", banner)
        assert url and token, banner
        host, port = url.group(1).removeprefix("http://").rsplit(":", 1)
        local = read(data)
        assert local is not None
        yield Engine(url.group(1), host, int(port), token.group(1), local.jwt_secret)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def _banner(proc: subprocess.Popen[str]) -> str:
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=0.2))
        except queue.Empty:
            continue
        if "dev token" in seen[-1]:
            return "".join(seen)
    raise AssertionError("todo-engine up did not start: " + "".join(seen))


def _connect(engine: Engine) -> socket.socket:
    sock = socket.create_connection((engine.host, engine.port), timeout=10)
    return sock


def _read_all(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed)."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed `sock` (fails if it stays open `seconds`)."""
    start = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open for {seconds} s") from None
    return time.monotonic() - start


def test_an_oversized_header_is_a_431_problem(engine: Engine) -> None:
    sock = _connect(engine)
    head = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: "
    sent = 0
    try:
        sock.sendall(head)
        chunk = b"a" * 65536
        while sent < 8 * 1024 * 1024:  # 8 MB
            sock.sendall(chunk)
            sent += len(chunk)
        sock.sendall(b"\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server stopped reading: fine, as long as it answered first
    reply = _read_all(sock)
    sock.close()
    status, _, rest = reply.partition(b"\r\n")
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large", reply[:300]
    assert b"content-type: application/problem+json" in rest.lower()
    body = json.loads(reply.partition(b"\r\n\r\n")[2])
    assert body["status"] == 431 and body["type"] == "/problems/header-fields-too-large"
    # headers up to the limit are served
    r = httpx.get(f"{engine.url}/health/live", headers={"X-Fill": "a" * (MAX_HEADER - 1000)})
    assert r.status_code == 200


def test_slow_header_senders_are_cut_off(engine: Engine) -> None:
    """Slowloris: 20 connections trickling header lines, plus 5 that send nothing, all closed."""
    trickling = [_connect(engine) for _ in range(20)]
    silent = [_connect(engine) for _ in range(5)]
    start = time.monotonic()
    for sock in trickling:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
    closed: set[int] = set()
    while time.monotonic() - start < HEADER_TIMEOUT + 3 and len(closed) < len(trickling):
        for n, sock in enumerate(trickling):
            if n in closed:
                continue
            try:
                sock.sendall(b"X-More: a\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed.add(n)
        time.sleep(0.1)
    assert len(closed) == len(trickling), f"only {len(closed)} of {len(trickling)} cut off"
    assert time.monotonic() - start < HEADER_TIMEOUT + 3
    for sock in silent:
        _closed_within(sock, HEADER_TIMEOUT + 3)
    for sock in trickling + silent:
        sock.close()
    # the server still serves
    assert httpx.get(f"{engine.url}/health/live").status_code == 200


def test_an_idle_body_is_cut_off_and_a_paused_keep_alive_is_not(engine: Engine) -> None:
    sock = _connect(engine)
    sock.sendall(
        b"POST /v1/lists HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + engine.token.encode() + b'\r\nContent-Length: 100\r\n\r\n{"title"'
    )
    waited = _closed_within(sock, BODY_IDLE + 3)
    assert BODY_IDLE * 0.8 <= waited, waited
    sock.close()
    # Between requests of a kept-alive connection, longer than the header timeout: still served.
    with httpx.Client(base_url=engine.url) as client:
        assert client.get("/health/live").status_code == 200
        time.sleep(HEADER_TIMEOUT + 0.5)
        assert client.get("/health/live").status_code == 200


def test_tokens_must_expire_within_the_maximum(engine: Engine) -> None:
    now = int(time.time())
    ok = jwt.encode({"sub": "dev", "iat": now, "exp": now + 3600}, engine.secret, algorithm="HS256")
    forever = jwt.encode({"sub": "dev", "iat": now}, engine.secret, algorithm="HS256")
    too_long = jwt.encode({"sub": "dev", "iat": now, "exp": now + 7200}, engine.secret, algorithm="HS256")
    assert httpx.get(f"{engine.url}/v1/lists", headers={"Authorization": f"Bearer {ok}"}).status_code == 200
    # the dev token `up` printed respects TODO_JWT_MAX_TTL too
    claims = jwt.decode(engine.token, engine.secret, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] <= 3600
    for token in (forever, too_long):
        r = httpx.get(f"{engine.url}/v1/lists", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json", r.text
    assert os.environ.get("TODO_JWT_MAX_TTL") is None  # the fixture's setting stayed in its child


def test_nul_round_trips_and_a_body_that_is_not_utf8_is_a_400(engine: Engine) -> None:
    """Text may hold NUL and other control characters: JSON escapes them, SQLite stores the JSON, and
    they come back as sent. A lone surrogate (no UTF-8 form) is a 422; a body that is not UTF-8 a 400."""
    auth = {"Authorization": f"Bearer {engine.token}"}
    with httpx.Client(base_url=engine.url, headers=auth) as client:
        created = client.post("/v1/lists", json={"title": "a\x00b\x01c"})
        assert created.status_code == 201, created.text
        list_id = created.json()["id"]
        item = client.post(f"/v1/lists/{list_id}/items", json={"title": "nul\x00", "notes": "\x00"})
        assert item.status_code == 201, item.text
        assert client.get(f"/v1/lists/{list_id}").json()["title"] == "a\x00b\x01c"
        got = client.get(f"/v1/lists/{list_id}/items/{item.json()['id']}").json()
        assert (got["title"], got["notes"]) == ("nul\x00", "\x00")
        json_headers = {"Content-Type": "application/json"}
        surrogate = client.post("/v1/lists", content=b'{"title": "a\\ud800"}', headers=json_headers)
        assert surrogate.status_code == 422 and surrogate.json()["errors"][0]["loc"] == ["body", "title"]
        for url in ("/v1/lists", f"/v1/lists/{list_id}/items"):  # the second one is a hot route
            r = client.post(url, content='{"title": "caf\xe9"}'.encode("latin-1"), headers=json_headers)
            assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
            assert "not UTF-8" in r.json()["detail"], r.text


def test_methods_a_path_lacks_are_405_with_every_method_it_has(engine: Engine) -> None:
    """What the slow schemathesis run's coverage phase checks, here in the default run."""
    auth = {"Authorization": f"Bearer {engine.token}"}
    with httpx.Client(base_url=engine.url, headers=auth) as client:
        cases = [
            ("OPTIONS", "/v1/lists", "GET, POST"),
            ("PUT", "/v1/lists/abc", "DELETE, GET, PATCH"),
            ("PATCH", "/v1/lists/abc/items/def:complete", "POST"),  # an action, not an item id
            ("GET", "/v1/workflows/w1:pause", "POST"),
            ("GET", "/v1/series/s1:skip", "POST"),
        ]
        for method, path, allow in cases:
            r = client.request(method, path)
            assert (r.status_code, r.headers.get("allow")) == (405, allow), (method, path, r.text)
            assert r.headers["content-type"] == "application/problem+json"
        # A malformed If-Match is input (422, with the path's own errors), a stale one state (412).
        r = client.delete("/v1/lists/%C2%84", headers={"If-Match": "null"})
        assert r.status_code == 422 and {tuple(e["loc"]) for e in r.json()["errors"]} == {
            ("path", "list_id"),
            ("header", "if-match"),
        }
        list_id = client.post("/v1/lists", json={"title": "etag"}).json()["id"]
        assert client.delete(f"/v1/lists/{list_id}", headers={"If-Match": '"7"'}).status_code == 412
        # A query instant is RFC 3339 text, not a Unix time.
        r = client.get(f"/v1/lists/{list_id}/items", params={"due_before": "0.5"})
        assert r.status_code == 422, r.text


def test_a_large_body_on_a_kept_alive_connection_does_not_count_as_the_next_requests_headers(
    engine: Engine,
) -> None:
    """A request whose body arrives in the chunk that completes it (a bulk delivery, a batch) leaves nothing
    to count against the next request's header limit: the connection keeps serving."""
    headers = {"Authorization": f"Bearer {engine.token}"}
    with httpx.Client(base_url=engine.url, headers=headers, timeout=30) as c:
        list_id = c.post("/v1/lists", json={"title": "big"}).json()["id"]
        commands = [
            {
                "type": "item_add",
                "uuid": f"big-{n}",
                "args": {"list_id": list_id, "title": "x", "notes": "n" * 900},
            }
            for n in range(60)
        ]
        for _ in range(3):  # the same keep-alive connection each time
            r = c.post("/v1/batch", json={"commands": commands})
            assert r.status_code == 200, r.text
            assert c.get("/health/live").status_code == 200


def test_more_callers_waiting_for_one_actor_than_connections_all_complete(engine: Engine) -> None:
    """Each waiting request holds a connection of the callers' pool until the actor's turn is done; the
    turn's state calls use the actors' own pool. In one pool the callers would hold every connection, each
    turn would wait for one, and every request would end in the client's 60 s timeout."""
    headers = {"Authorization": f"Bearer {engine.token}"}

    async def adds() -> tuple[list[int], float, set[str]]:
        async with httpx.AsyncClient(base_url=engine.url, headers=headers, timeout=120) as client:
            created = await client.post("/v1/lists", json={"title": "hot"})
            assert created.status_code == 201, created.text
            list_id = created.json()["id"]
            start = time.monotonic()
            replies = await asyncio.gather(
                *(client.post(f"/v1/lists/{list_id}/items", json={"title": f"t{n}"}) for n in range(12))
            )
            elapsed = time.monotonic() - start
            page = await client.get(f"/v1/lists/{list_id}/items", params={"limit": 50})
            titles = {item["title"] for item in page.json()["items"]}
            return [r.status_code for r in replies], elapsed, titles

    statuses, elapsed, titles = asyncio.run(adds())
    assert statuses == [201] * 12
    assert titles == {f"t{n}" for n in range(12)}
    assert elapsed < 30, f"12 adds to one list over {SIDECAR_CONNECTIONS} connections took {elapsed:.1f} s"
