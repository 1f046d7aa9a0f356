"""How daprd carries headers through service invocation (pkg/messaging/v1/util.go): which request headers
reach the app, which reply headers reach the caller, and how HTTP headers become gRPC metadata."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "CALLEE_ID",
    "CALLER_ID",
    "CALLER_NAMESPACE",
    "clean_path",
    "grpc_metadata_from_http",
    "http_headers_to_forward",
    "joined_headers",
    "normalize_method",
]

CALLER_ID = "dapr-caller-app-id"
CALLER_NAMESPACE = "dapr-caller-namespace"
CALLEE_ID = "dapr-callee-app-id"

# RFC 7230 6.1 hop-by-hop headers, never forwarded (util.go IsHopByHopHeader).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "http2-settings",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-authenticate",
    }
)

# HTTP/1.1 headers that gRPC metadata cannot carry as they are: daprd prefixes them with `dapr-`
# (util.go isPermanentHTTPHeader) when an HTTP reply goes back as gRPC metadata.
_PERMANENT = frozenset(
    h.lower()
    for h in (
        "Accept Accept-Charset Accept-Language Accept-Ranges Connection Keep-Alive Proxy-Connection "
        "Transfer-Encoding Upgrade Cache-Control Content-Type Content-Length Cookie Date Expect From Host "
        "If-Match If-Modified-Since If-None-Match If-Schedule-Tag-Match If-Unmodified-Since Max-Forwards "
        "Origin Pragma Referer Via Warning"
    ).split()
)


def http_headers_to_forward(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """daprd's `InternalMetadataToHTTPHeader`: every header but content type/length (set from the message),
    `-bin` metadata, hop-by-hop headers and those a `Connection` header nominates; gRPC pseudo-headers and
    `grpc-*` keys get the `dapr-` prefix. Names come out lower-cased, as Go's metadata keys are."""
    items = [(k.lower(), v) for k, v in headers]
    nominated = {
        token.strip().lower()
        for k, v in items
        if k == "connection"
        for token in v.split(",")
        if token.strip()
    }
    out: list[tuple[str, str]] = []
    for key, value in items:
        if key in ("content-type", "content-length", "destination-app-id") or key.endswith("-bin"):
            continue
        if key in _HOP_BY_HOP or key in nominated:
            continue
        if key in (":method", ":scheme", ":path", ":authority"):
            key = "dapr-" + key[1:]
        elif key.startswith("grpc-"):
            key = "dapr-" + key
        out.append((key, value))
    return out


def joined_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """One value per name, as an HTTP/1.1 client sends them: repeated headers join with commas (RFC 9110
    5.3)."""
    out: dict[str, str] = {}
    for key, value in headers:
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def grpc_metadata_from_http(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """daprd's `InternalMetadataToGrpcMetadata` with HTTP conversion: keys lower-cased, the permanent HTTP
    headers prefixed with `dapr-`, binary (`-bin`) keys dropped (an HTTP app sends none we could decode)."""
    out: list[tuple[str, str]] = []
    for key, value in headers:
        name = key.lower()
        if name.endswith("-bin") or name == "destination-app-id":
            continue
        if name in _PERMANENT:
            name = "dapr-" + name
        out.append((name, value))
    return out


def normalize_method(method: str) -> str:
    """daprd's `method.NormalizeMethod`: refuse `#`, `?`, NUL and control characters, then resolve `.` and
    `..` segments as Go's `path.Clean` does, never climbing above the root. Raises ValueError."""
    for ch in ("#", "?", "\x00"):
        if ch in method:
            raise ValueError(f"method contains forbidden character: {method!r}")
    for pos, ch in enumerate(method):
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise ValueError(f"method contains control character at position {pos}: {method!r}")
    return clean_path(method)


def clean_path(path: str) -> str:
    """Go's `path.Clean` of a rootless method name, with leading `..` removed and `.` as the empty string."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue  # above the root: dropped (daprd strips leading "../")
        parts.append(part)
    cleaned = "/".join(parts)
    return "/" + cleaned if rooted else cleaned
