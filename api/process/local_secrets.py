"""Secrets of a local instance (`todo-engine up`), generated once and kept in the data directory (0600):
APP_API_TOKEN, DAPR_API_TOKEN and the JWT secret. `todo-engine token` reads the same file, so tokens it
mints work against an instance started with the same data directory.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["SECRETS_FILE", "LocalSecrets", "load_or_create"]

SECRETS_FILE = "secrets.json"


@dataclass(frozen=True)
class LocalSecrets:
    app_api_token: str
    dapr_api_token: str
    jwt_secret: str


def _fresh() -> LocalSecrets:
    return LocalSecrets(
        app_api_token=secrets.token_urlsafe(32),
        dapr_api_token=secrets.token_urlsafe(32),
        jwt_secret=secrets.token_urlsafe(48),
    )


def read(data_dir: Path) -> LocalSecrets | None:
    path = data_dir / SECRETS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"cannot read {path}: {exc}") from exc
    try:
        return LocalSecrets(**{k: str(raw[k]) for k in ("app_api_token", "dapr_api_token", "jwt_secret")})
    except (KeyError, TypeError) as exc:
        raise RuntimeError(f"{path} is incomplete ({exc}); delete it to generate new secrets") from exc


def load_or_create(data_dir: Path) -> LocalSecrets:
    """The data directory's secrets, created (readable by the owner only) on first use."""
    found = read(data_dir)
    if found is not None:
        return found
    data_dir.mkdir(parents=True, exist_ok=True)
    fresh = _fresh()
    path = data_dir / SECRETS_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(asdict(fresh), f)
    os.replace(tmp, path)
    return fresh
