"""`bindings.localstorage` (components-contrib): an output binding over files under `rootPath`, with
`create`, `get`, `list` and `delete` and the `fileName` metadata, answering as contrib does.

Paths stay inside `rootPath`: `..` is resolved lexically and cannot climb above the root (contrib's
SecureJoin), and a symlink that leads out of the root is refused (SecureJoin would re-root it instead).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path

from sidecar.bindings.output import BindingError, BindingResponse

__all__ = ["LOCALSTORAGE_TYPE", "LocalStorage"]

LOCALSTORAGE_TYPE = "bindings.localstorage"
_DISALLOWED = ("/proc", "/sys", "/boot", "/var/run/secrets")


class LocalStorage:
    type = LOCALSTORAGE_TYPE
    operations: tuple[str, ...] = ("create", "get", "list", "delete")

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root

    @classmethod
    def from_metadata(cls, name: str, metadata: Mapping[str, str]) -> LocalStorage:
        raw = next((v for k, v in metadata.items() if k.lower() == "rootpath"), "")
        if not raw:
            raise ValueError("failed to parse metadata: property rootPath must not be empty")
        root = Path(os.path.realpath(os.path.abspath(raw)))
        if root.exists() and not root.is_dir():
            raise ValueError(
                "failed to parse metadata: property rootPath represents a file and not a directory"
            )
        if any(str(root) == p or str(root).startswith(p + "/") for p in _DISALLOWED):
            raise ValueError("failed to parse metadata: property rootPath points to a disallowed location")
        root.mkdir(parents=True, exist_ok=True)
        return cls(name, root)

    def _path(self, filename: str) -> tuple[Path, str]:
        parts: list[str] = []
        for part in filename.replace("\\", "/").split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(part)
        path = self.root.joinpath(*parts)
        real = os.path.realpath(path)
        if real != str(self.root) and not real.startswith(str(self.root) + os.sep):
            raise BindingError(f"error getting absolute path for file {filename}: path escapes rootPath")
        return path, "/".join(parts) or "."

    async def invoke(self, operation: str, data: bytes, metadata: Mapping[str, str]) -> BindingResponse:
        filename = metadata.get("fileName", "")
        if not filename and operation == "create":
            filename = str(uuid.uuid4())
        return await asyncio.to_thread(getattr(self, "_" + operation), filename, data)

    def _create(self, filename: str, data: bytes) -> BindingResponse:
        try:  # contrib: unquote a JSON string, then decode base64 when it is base64
            text = json.loads(data)
            if isinstance(text, str):
                data = text.encode()
        except ValueError:
            pass
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            pass
        path, relative = self._path(filename)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except OSError as exc:
            raise BindingError(f"error creating file {path}: {exc}") from None
        return BindingResponse(json.dumps({"fileName": relative}, separators=(",", ":")).encode())

    def _get(self, filename: str, data: bytes) -> BindingResponse:
        path, _ = self._path(filename)
        try:
            return BindingResponse(path.read_bytes())
        except FileNotFoundError:
            raise BindingError(f"file not found: {path}") from None
        except OSError as exc:
            raise BindingError(f"error opening path {path}: {exc}") from None

    def _delete(self, filename: str, data: bytes) -> BindingResponse:
        path, _ = self._path(filename)
        try:
            path.unlink()
        except OSError as exc:
            raise BindingError(f"error deleting file {path}: {exc}") from None
        return BindingResponse()

    def _list(self, filename: str, data: bytes) -> BindingResponse:
        path, _ = self._path(filename)
        if not path.exists():
            raise BindingError(f"error getting stats for path {path}: no such file or directory")
        if not path.is_dir():
            raise BindingError(f"unable to list files as the file specified is not a directory: {path}")
        files = sorted(str(Path(d) / f) for d, _, names in os.walk(path) for f in names)
        return BindingResponse(json.dumps(files or None, separators=(",", ":")).encode())
