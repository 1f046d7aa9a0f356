"""The S1 peer: the same endpoints as the facade, in plain FastAPI + SQLite, with no actors and no sidecar.

    .venv/bin/python bench/plain_peer.py --port 8100 --db /tmp/peer.db [--secret S] [--synchronous FULL]
        [--workers 2]

Same bearer-token check (HS256), same JSON shapes, ownership checked per request, SQLite in WAL mode with
the sidecar's durability (`synchronous=FULL` by default), queries run on the event loop (the fastest
plain setup measured in performance-anchors §3.2). `bench/api.py` starts it as a child process, once as
one process and once with `--workers 2` (uvicorn's worker processes on one socket, SQLite's write lock
between them), as the facade uses both cores with its app and sidecar processes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import uuid
from typing import Annotated, Any

import jwt
import uvicorn
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

ITEM_COLUMNS = "id, title, status, position, version, created_at, updated_at, completed_at"

SCHEMA = """
CREATE TABLE IF NOT EXISTS lists (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL, version INTEGER NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    list_id TEXT NOT NULL, id TEXT NOT NULL, title TEXT NOT NULL, status TEXT NOT NULL,
    position INTEGER NOT NULL, version INTEGER NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, completed_at TEXT, PRIMARY KEY (list_id, id));
CREATE INDEX IF NOT EXISTS items_order ON items (list_id, position, created_at, id);
"""


Auth = Annotated[str | None, Header()]


class ListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=500)


def build_app(db_path: str, secret: str, synchronous: str) -> FastAPI:
    db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=5000")  # with --workers, the other process may hold the write lock
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.executescript(SCHEMA)
    app = FastAPI()

    def user_of(authorization: str | None) -> str:
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(401)
        try:
            claims = jwt.decode(authorization[7:], secret, algorithms=["HS256"], options={"require": ["sub"]})
        except jwt.InvalidTokenError:
            raise HTTPException(401) from None
        return str(claims["sub"])

    def now() -> str:
        return dt.datetime.now(dt.UTC).isoformat()

    def owned(list_id: str, user: str) -> tuple[Any, ...]:
        row = db.execute("SELECT id, owner, title, version FROM lists WHERE id = ?", (list_id,)).fetchone()
        if row is None or row[1] != user:
            raise HTTPException(404)
        return tuple(row)

    def item_json(list_id: str, row: tuple[Any, ...]) -> dict[str, Any]:
        keys = ("id", "title", "status", "position", "version", "created_at", "updated_at", "completed_at")
        return dict(zip(keys, row, strict=True))

    @app.post("/v1/lists", status_code=201)
    async def create_list(body: ListIn, authorization: Auth = None) -> Response:
        user = user_of(authorization)
        list_id, at = uuid.uuid4().hex, now()
        db.execute("INSERT INTO lists VALUES (?, ?, ?, 1, ?, ?)", (list_id, user, body.title, at, at))
        out = {"id": list_id, "owner": user, "title": body.title, "version": 1, "created_at": at}
        return Response(json.dumps(out), 201, media_type="application/json", headers={"ETag": '"1"'})

    @app.get("/v1/lists/{list_id}/items")
    async def list_items(list_id: str, limit: int = 50, authorization: Auth = None) -> Response:
        user = user_of(authorization)
        version = owned(list_id, user)[3]
        rows = db.execute(
            f"SELECT {ITEM_COLUMNS} FROM items WHERE list_id = ? ORDER BY position, created_at, id LIMIT ?",
            (list_id, limit),
        ).fetchall()
        out = {"items": [item_json(list_id, r) for r in rows], "next_cursor": None, "list_version": version}
        return Response(json.dumps(out), media_type="application/json", headers={"ETag": f'"{version}"'})

    @app.post("/v1/lists/{list_id}/items", status_code=201)
    async def add_item(list_id: str, body: ItemIn, authorization: Auth = None) -> Response:
        user = user_of(authorization)
        owned(list_id, user)
        item_id, at = uuid.uuid4().hex, now()
        db.execute("BEGIN IMMEDIATE")
        try:
            (position,) = db.execute(
                "SELECT COALESCE(MAX(position), 0) + 1024 FROM items WHERE list_id = ?", (list_id,)
            ).fetchone()
            db.execute(
                "INSERT INTO items VALUES (?, ?, ?, 'open', ?, 1, ?, ?, NULL)",
                (list_id, item_id, body.title, position, at, at),
            )
            db.execute("UPDATE lists SET version = version + 1, updated_at = ? WHERE id = ?", (at, list_id))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        out = item_json(list_id, (item_id, body.title, "open", position, 1, at, at, None))
        return Response(json.dumps(out), 201, media_type="application/json", headers={"ETag": '"1"'})

    @app.post("/v1/lists/{list_id}/items/{item_id}:complete")
    async def complete(list_id: str, item_id: str, authorization: Auth = None) -> Response:
        user = user_of(authorization)
        owned(list_id, user)
        at = now()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                f"SELECT {ITEM_COLUMNS} FROM items WHERE list_id = ? AND id = ?",
                (list_id, item_id),
            ).fetchone()
            if row is None:
                raise HTTPException(404)
            if row[2] != "completed":
                db.execute(
                    "UPDATE items SET status = 'completed', version = version + 1, updated_at = ?, "
                    "completed_at = ? WHERE list_id = ? AND id = ?",
                    (at, at, list_id, item_id),
                )
                db.execute(
                    "UPDATE lists SET version = version + 1, updated_at = ? WHERE id = ?", (at, list_id)
                )
                row = (*row[:2], "completed", row[3], row[4] + 1, row[5], at, at)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return Response(
            json.dumps(item_json(list_id, row)),
            media_type="application/json",
            headers={"ETag": f'"{row[4]}"'},
        )

    return app


_ENV = "PLAIN_PEER_ARGS"


def from_environment() -> FastAPI:
    """The app of a `--workers` process (uvicorn imports it by name in each worker)."""
    db, secret, synchronous = json.loads(os.environ[_ENV])
    return build_app(db, secret, synchronous)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    p.add_argument("--workers", type=int, default=1, help="worker processes (uvicorn's --workers)")
    args = p.parse_args()
    options: dict[str, Any] = {"host": "127.0.0.1", "port": args.port, "log_level": "warning"}
    if args.workers == 1:
        uvicorn.run(build_app(args.db, args.secret, args.synchronous), access_log=False, **options)
        return
    os.environ[_ENV] = json.dumps([args.db, args.secret, args.synchronous])
    here = os.path.dirname(os.path.abspath(__file__))
    uvicorn.run(
        "plain_peer:from_environment",
        factory=True,
        workers=args.workers,
        app_dir=here,
        access_log=False,
        **options,
    )


if __name__ == "__main__":
    main()
