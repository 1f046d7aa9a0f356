"""`bindings.http` (components-contrib): an output binding that sends one HTTP request to `url` per call,
so an app can reach a plain web endpoint through the bindings API as it would with daprd.

It follows contrib's `HTTPSource`: the operation is the method (`create` is POST), `metadata.path` is
appended to the url, metadata keys starting with a capital letter are request headers, the answer is the
body with `statusCode`, `status` and the response headers (Go's canonical names, values joined by ", "),
and a status outside 2xx fails with `received status code N` unless `errorIfNot2XX` is false. Redirects
are followed (up to 10), as Go's http.Client does. The mTLS options are refused at load.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping

import aiohttp
from multidict import CIMultiDict

from sidecar.bindings.output import BindingError, BindingResponse
from sidecar.state.properties import ComponentProperties, PropertyError, is_truthy

__all__ = ["HTTP_TYPE", "HttpBinding", "parse_byte_size"]

HTTP_TYPE = "bindings.http"
_DEFAULT_MAX_BODY = 100 << 20  # contrib's defaultMaxResponseBodySizeBytes
_DIAL_TIMEOUT = 15.0  # contrib's net.Dialer timeout; the request itself has none unless responseTimeout
_WITH_BODY = ("PUT", "POST", "PATCH")
_TRACE_KEYS = ("traceparent", "tracestate", "baggage")
_MTLS = ("mtlsRootCA", "mtlsClientCert", "mtlsClientKey", "mtlsRenegotiation")
# resource.Quantity suffixes as dapr/kit's ByteSize reads them
_SUFFIXES = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 1 << 10,
    "Mi": 1 << 20,
    "Gi": 1 << 30,
    "Ti": 1 << 40,
}
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def parse_byte_size(text: str) -> int:
    """dapr/kit `ByteSize`: a number of bytes, optionally with a quantity suffix (`10Mi`, `2M`)."""
    match = re.fullmatch(r"\s*([0-9]+)([a-zA-Z]*)\s*", text)
    if match is None or match.group(2) not in _SUFFIXES:
        raise PropertyError(f"invalid value for maxResponseBodySize: {text!r} is not a byte size")
    return int(match.group(1)) * _SUFFIXES[match.group(2)]


def canonical_header(key: str) -> str:
    """Go's `CanonicalMIMEHeaderKey`: `content-type` -> `Content-Type`; keys with other characters as-is."""
    if not _TOKEN.fullmatch(key):
        return key
    return "-".join(part[:1].upper() + part[1:].lower() for part in key.split("-"))


class HttpBinding:
    type = HTTP_TYPE
    operations: tuple[str, ...] = (
        "create",
        "get",
        "head",
        "post",
        "put",
        "patch",
        "delete",
        "options",
        "trace",
    )

    def __init__(
        self,
        name: str,
        url: str,
        *,
        max_body: int = _DEFAULT_MAX_BODY,
        response_timeout: float | None = None,
        error_if_not_2xx: bool = True,
        token: tuple[str, str] | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.max_body = max_body
        self.response_timeout = response_timeout
        self.error_if_not_2xx = error_if_not_2xx
        self.token = token  # (header, value)

    @classmethod
    def from_metadata(cls, name: str, metadata: Mapping[str, str]) -> HttpBinding:
        props = ComponentProperties(metadata)
        url = props.text("url")
        if not url:
            raise PropertyError("metadata 'url' is required")
        given = [key for key in _MTLS if props.text(key)]
        if given:
            raise PropertyError(
                f"{', '.join(given)}: mTLS to the endpoint is not supported by the embedded sidecar's "
                "bindings.http (run this component beside a real daprd)"
            )
        size = props.text("maxResponseBodySize")
        timeout = props.text("responseTimeout")
        token, header = props.text("securityToken"), props.text("securityTokenHeader")
        flag = props.get("errorIfNot2XX")
        return cls(
            name,
            url,
            max_body=parse_byte_size(size) if size else _DEFAULT_MAX_BODY,
            response_timeout=props.duration("responseTimeout", default=0.0) if timeout else None,
            error_if_not_2xx=is_truthy(flag) if flag else True,
            token=(header, token) if token and header else None,
        )

    async def invoke(self, operation: str, data: bytes, metadata: Mapping[str, str]) -> BindingResponse:
        url = self.url
        if metadata.get("path"):
            url = url.rstrip("/") + "/" + metadata["path"].lstrip("/")
        error_if_not_2xx = self.error_if_not_2xx
        if metadata.get("errorIfNot2XX"):
            error_if_not_2xx = is_truthy(metadata["errorIfNot2XX"])
        method = "POST" if operation == "create" else operation.upper()
        body = data if method in _WITH_BODY else None
        headers = self._headers(metadata, with_body=body is not None)
        ours_gzip = "Accept-Encoding" not in headers
        if ours_gzip:  # Go asks for gzip itself and then decodes it transparently
            headers["Accept-Encoding"] = "gzip"
        timeout = aiohttp.ClientTimeout(total=self.response_timeout, sock_connect=_DIAL_TIMEOUT)
        op = method[:1] + method[1:].lower()  # Go's url.Error names the method so: `Post "url": ...`
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session,
                session.request(method, url, data=body, headers=headers, max_redirects=10) as resp,
            ):
                answer, gzipped = _response_metadata(resp, ours_gzip=ours_gzip)
                if gzipped:
                    payload = _gunzip(await resp.read(), self.max_body)
                else:
                    payload = await _read(resp, self.max_body)
        except TimeoutError:
            raise BindingError(f'{op} "{url}": context deadline exceeded') from None
        except aiohttp.TooManyRedirects:
            raise BindingError(f'{op} "{url}": stopped after 10 redirects') from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise BindingError(f'{op} "{url}": {_reason(exc)}') from None
        if error_if_not_2xx and resp.status // 100 != 2:
            raise BindingError(f"received status code {resp.status}", answer)
        return BindingResponse(payload, answer)

    def _headers(self, metadata: Mapping[str, str], *, with_body: bool) -> CIMultiDict[str]:
        # Go's http.Client defaults, then contrib's: JSON Content-Type/Accept unless given as metadata
        headers: CIMultiDict[str] = CIMultiDict({"User-Agent": "Go-http-client/1.1"})
        if with_body and "Content-Type" not in metadata:
            headers["Content-Type"] = "application/json; charset=utf-8"
        if "Accept" not in metadata:
            headers["Accept"] = "application/json; charset=utf-8"
        if self.token is not None:
            headers[self.token[0]] = self.token[1]
        for key, value in metadata.items():
            if key[:1].isascii() and key[:1].isupper():
                headers[canonical_header(key)] = value
        for key in _TRACE_KEYS:
            if metadata.get(key):
                headers[key] = metadata[key]
        return headers


def _response_metadata(resp: aiohttp.ClientResponse, *, ours_gzip: bool) -> tuple[dict[str, str], bool]:
    """contrib's metadata of the answer, and whether the body is gzip that Go would decode itself."""
    answer = {"statusCode": str(resp.status), "status": f"{resp.status} {resp.reason or ''}".rstrip()}
    joined: dict[str, list[str]] = {}
    for key, value in resp.headers.items():
        joined.setdefault(canonical_header(key), []).append(value)
    joined.pop("Transfer-Encoding", None)  # Go moves it out of the header map
    gzipped = ours_gzip and ",".join(joined.get("Content-Encoding", [])).strip().lower() == "gzip"
    if gzipped:  # Go's transparent gzip drops both headers
        joined.pop("Content-Encoding", None)
        joined.pop("Content-Length", None)
    answer.update({key: ", ".join(values) for key, values in joined.items()})
    return answer, gzipped


async def _read(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, cut at `limit` bytes as contrib's io.LimitReader does (no limit when <= 0)."""
    if limit <= 0:
        return await resp.read()
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = await resp.content.read(min(left, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _gunzip(raw: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        return inflater.decompress(raw, limit if limit > 0 else 0)
    except zlib.error as exc:
        raise BindingError(f"gzip: invalid header: {exc}") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"dial tcp {exc.host}:{exc.port}: connect: {(exc.os_error.strerror or str(exc)).lower()}"
    if isinstance(exc, aiohttp.InvalidURL | ValueError):
        return f"unsupported or invalid url: {exc}"
    return str(exc) or type(exc).__name__
