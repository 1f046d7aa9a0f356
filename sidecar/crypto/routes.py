"""daprd's HTTP cryptography routes, `PUT /v1.0-alpha1/crypto/{name}/encrypt|decrypt`: the body is the data,
options come in `dapr-*` headers, and the whole result is answered at once (as daprd does, so an error
found late still gets an error status)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from dapr.proto.runtime.v1 import crypto_pb2
from google.protobuf import json_format
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sidecar.crypto.api import (
    SUBTLE_OPERATIONS,
    CryptoAPI,
    DecryptRequest,
    EncryptRequest,
    subtle_unimplemented,
)
from sidecar.crypto.scheme import SegmentError
from sidecar.errors import error
from sidecar.state.properties import is_truthy

if TYPE_CHECKING:
    pass

__all__ = ["routes"]

_KEY_NAME = "dapr-key-name"
_KEY_WRAP_ALGORITHM = "dapr-key-wrap-algorithm"
_OMIT_DECRYPTION_KEY_NAME = "dapr-omit-decryption-key-name"
_DECRYPTION_KEY_NAME = "dapr-decryption-key-name"
_DATA_ENCRYPTION_CIPHER = "dapr-data-encryption-cipher"


def routes(api: CryptoAPI) -> list[BaseRoute]:

    async def encrypt(request: Request) -> Response:
        component = str(request.path_params["name"])
        api.provider(component)  # daprd checks the component before the headers
        headers = request.headers
        for header in (_KEY_NAME, _KEY_WRAP_ALGORITHM):
            if not headers.get(header):
                raise error("ERR_BAD_REQUEST", f"invalid request: missing header '{header}'")
        options = EncryptRequest(
            component=component,
            key_name=headers[_KEY_NAME],
            algorithm=headers[_KEY_WRAP_ALGORITHM],
            omit_decryption_key_name=is_truthy(headers.get(_OMIT_DECRYPTION_KEY_NAME, "")),
            decryption_key_name=headers.get(_DECRYPTION_KEY_NAME, ""),
            cipher=headers.get(_DATA_ENCRYPTION_CIPHER, ""),
        )
        return await _answer(await api.encrypt(options, _body(request)))

    async def decrypt(request: Request) -> Response:
        options = DecryptRequest(
            component=str(request.path_params["name"]), key_name=request.headers.get(_KEY_NAME, "")
        )
        try:
            output = await api.decrypt(options, _body(request))
        except SegmentError as exc:
            raise error("ERROR", str(exc)) from None
        return await _answer(output)

    return [
        Route("/v1.0-alpha1/crypto/{name}/encrypt", encrypt, methods=["PUT"]),
        Route("/v1.0-alpha1/crypto/{name}/decrypt", decrypt, methods=["PUT"]),
        Route("/v1.0-alpha1/subtlecrypto/{name}/{operation}", _subtle, methods=["POST"]),
    ]


async def _subtle(request: Request) -> Response:
    """daprd's universal handler: the body is read as protojson into the RPC's request, then the release
    build's `ErrAPIUnimplemented`."""
    rpc = SUBTLE_OPERATIONS.get(str(request.path_params["operation"]))
    if rpc is None:
        raise HTTPException(404)
    body = await request.body()
    if body:
        message = getattr(
            crypto_pb2, rpc.removeprefix("Subtle").removesuffix("Alpha1").join(("Subtle", "Request"))
        )()
        try:
            json_format.Parse(body, message, ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            raise error("ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {exc}") from None
    raise subtle_unimplemented()


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


async def _answer(output: AsyncIterator[bytes]) -> Response:
    """All of `output` as one `application/octet-stream` body; a failure after the start is daprd's
    generic `ERROR` (its `respondWithError` for an error with no code of its own)."""
    try:
        body = b"".join([part async for part in output])
    except SegmentError as exc:
        raise error("ERROR", str(exc)) from None
    return Response(body, media_type="application/octet-stream")
