"""JSON responses straight from pydantic models (one serialization, no second validation), with the
`ETag` and `Location` headers the API conventions ask for."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import Response

__all__ = ["etag", "model_response"]


def etag(version: int) -> str:
    """A strong ETag for a version: `"3"`."""
    return f'"{version}"'


def model_response(
    model: BaseModel,
    status_code: int = 200,
    *,
    version: int | None = None,
    location: str | None = None,
) -> Response:
    headers: dict[str, str] = {}
    if version is not None:
        headers["ETag"] = etag(version)
    if location is not None:
        headers["Location"] = location
    return Response(
        model.model_dump_json(), status_code=status_code, media_type="application/json", headers=headers
    )
