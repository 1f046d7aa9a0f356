"""Serves the reference page (`/`) and its static files (`/web/...`) with a self-only Content-Security-
Policy and revalidated caching. Hidden from the OpenAPI document: the page is a client, not the API.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "router"]

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"

CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        # The page's forms are handled by script; without it a form must not send a token anywhere.
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

# File names are not content-hashed (no build step), so every response is revalidated with its ETag:
# an upgrade shows at once and an unchanged file costs a 304.
_CACHE_CONTROL: Final = "no-cache"

_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

_MEDIA_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

# Only plain relative names below the static directory: no dots at the start of a segment, no `..`.
_ASSET_NAME: Final = re.compile(r"^(?:[a-z0-9][a-z0-9_-]*/)*[a-z0-9][a-z0-9_.-]*\.(?:js|css|svg)$")

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class _Asset:
    body: bytes
    etag: str
    media_type: str
    mtime_ns: int


class _AssetCache:
    """File contents and ETags, read on first use and again whenever a file's mtime changes."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._assets: dict[str, _Asset] = {}

    def get(self, name: str) -> _Asset | None:
        path = self._root / name
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        cached = self._assets.get(name)
        if cached is not None and cached.mtime_ns == stat.st_mtime_ns:
            return cached
        body = path.read_bytes()
        asset = _Asset(
            body=body,
            etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"',
            media_type=_MEDIA_TYPES[path.suffix],
            mtime_ns=stat.st_mtime_ns,
        )
        self._assets[name] = asset
        return asset


_cache = _AssetCache(STATIC_DIR)


def _not_modified(request: Request, etag: str) -> bool:
    sent = request.headers.get("if-none-match")
    if sent is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in sent.split(",")}
    return "*" in tags or etag in tags


def _serve(request: Request, name: str) -> Response:
    asset = _cache.get(name)
    if asset is None:
        raise HTTPException(404, f"no file {name!r}")
    headers = {**_SECURITY_HEADERS, "Cache-Control": _CACHE_CONTROL, "ETag": asset.etag}
    if _not_modified(request, asset.etag):
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else asset.body
    response = Response(body, media_type=asset.media_type, headers=headers)
    if request.method == "HEAD":
        response.headers["Content-Length"] = str(len(asset.body))
    return response


@router.api_route("/", methods=["GET", "HEAD"])
async def index(request: Request) -> Response:
    """The page itself."""
    return _serve(request, "index.html")


@router.api_route("/web/{name:path}", methods=["GET", "HEAD"])
async def asset(request: Request, name: str) -> Response:
    """A script, style sheet or icon of the page."""
    if not _ASSET_NAME.fullmatch(name):
        raise HTTPException(404, f"no file {name!r}")
    return _serve(request, name)
