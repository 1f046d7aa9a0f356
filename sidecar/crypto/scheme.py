"""The Dapr encryption scheme v1 (`dapr.io/enc/v1`, dapr/kit `schemes/enc/v1`), byte for byte: a header
(scheme line, JSON manifest with the wrapped file key, HMAC of both), then 64 KiB segments sealed with
AES-GCM or ChaCha20-Poly1305 under a per-segment nonce. Fed incrementally, so a stream never waits for
the whole message and no unverified plaintext is ever returned."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

__all__ = [
    "SCHEME_NAME",
    "SEGMENT_SIZE",
    "Decryption",
    "EncryptOptions",
    "Encryption",
    "SchemeError",
    "SegmentError",
]

SCHEME_NAME = b"dapr.io/enc/v1"
SEGMENT_SIZE = 64 << 10
SEGMENT_OVERHEAD = 16  # the AEAD tag
NONCE_PREFIX_LENGTH = 7
_MAX_SEGMENTS = 1 << 32

KEY_ALGORITHMS = {"A256KW": 1, "A128CBC-NOPAD": 2, "A192CBC-NOPAD": 3, "A256CBC-NOPAD": 4, "RSA-OAEP-256": 5}
_ALGORITHM_ALIASES = {"AES": "A256KW", "RSA": "RSA-OAEP-256"}
CIPHERS = {"AES-GCM": 1, "CHACHA20-POLY1305": 2}

# (file key, algorithm, key name) -> wrapped key, and back; they raise on failure.
WrapFn = Callable[[bytes, str, str], bytes]
UnwrapFn = Callable[[bytes, str, str], bytes]


class SchemeError(Exception):
    """The message could not be started (options, key wrapping, header): nothing was produced yet."""


class SegmentError(SchemeError):
    """The stream failed after it started (a segment, the input); daprd reports these apart."""


@dataclass(frozen=True)
class EncryptOptions:
    key_name: str
    algorithm: str
    decryption_key_name: str = ""
    omit_key_name: bool = False
    cipher: str = ""  # empty: AES-GCM


class _FileKey:
    """The random 256-bit file key with the header key and payload key HKDF derives from it."""

    def __init__(self, file_key: bytes, nonce_prefix: bytes, cipher: str) -> None:
        self.file_key = file_key
        self.nonce_prefix = nonce_prefix
        self.header_key = _hkdf(file_key, b"header", None)
        payload_key = _hkdf(file_key, b"payload", nonce_prefix)
        # `cryptography` is loaded on first use: ~10 MB an idle sidecar without crypto components never pays
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

        self.aead = AESGCM(payload_key) if cipher == "AES-GCM" else ChaCha20Poly1305(payload_key)

    def header_mac(self, manifest: bytes) -> bytes:
        return hmac.new(self.header_key, SCHEME_NAME + b"\n" + manifest + b"\n", sha256).digest()

    def nonce(self, num: int, last: bool) -> bytes:
        return self.nonce_prefix + num.to_bytes(4, "big") + (b"\x01" if last else b"\x00")

    def seal(self, data: bytes, num: int, last: bool) -> bytes:
        return self.aead.encrypt(self.nonce(num, last), data, None)

    def open(self, data: bytes, num: int, last: bool) -> bytes:
        from cryptography.exceptions import InvalidTag

        try:
            return self.aead.decrypt(self.nonce(num, last), data, None)
        except InvalidTag:
            raise SegmentError(f"error processing segment {num}: failed to decrypt segment") from None


def _hkdf(key: bytes, info: bytes, salt: bytes | None) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


class _Segments:
    """kit's `processSegments`: whole segments out as soon as one more byte shows they are not the last."""

    def __init__(self, size: int, process: Callable[[bytes, int, bool], bytes]) -> None:
        self._size = size
        self._process = process
        self._buffer = bytearray()
        self._num = 0

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out = []
        start = 0  # consumed once at the end: a large chunk is not moved once per segment
        while len(self._buffer) - start > self._size:
            if self._num == _MAX_SEGMENTS - 1:
                raise SegmentError("input stream is too large")
            out.append(self._process(bytes(self._buffer[start : start + self._size]), self._num, False))
            start += self._size
            self._num += 1
        del self._buffer[:start]
        return out

    def finish(self) -> list[bytes]:
        if not self._buffer:  # only an empty message ends here with nothing left
            return []
        return [self._process(bytes(self._buffer), self._num, True)]


class Encryption:
    """One message being encrypted: `header` first, then what `feed` and `finish` return, in order."""

    def __init__(self, options: EncryptOptions, wrap: WrapFn) -> None:
        if not options.key_name:
            raise SchemeError("option KeyName is required")
        if not options.algorithm:
            raise SchemeError("option Algorithm is required")
        algorithm = _ALGORITHM_ALIASES.get(options.algorithm, options.algorithm)
        if algorithm not in KEY_ALGORITHMS:
            raise SchemeError(
                f"option Algorithm is not valid: algorithm {options.algorithm} is not supported"
            )
        cipher = options.cipher or "AES-GCM"
        if cipher not in CIPHERS:
            raise SchemeError(f"option Cipher is not valid: cipher {cipher} is not supported")
        random = os.urandom(32 + NONCE_PREFIX_LENGTH)
        key = _FileKey(random[:32], random[32:], cipher)
        try:
            wrapped = wrap(key.file_key, algorithm, options.key_name)
        except Exception as exc:  # the component's error, whatever its kind, as daprd words it
            raise SchemeError(f"failed to wrap the file key: {exc}") from exc
        key_name = "" if options.omit_key_name else options.decryption_key_name or options.key_name
        manifest = _manifest_json(
            key_name, KEY_ALGORITHMS[algorithm], wrapped, CIPHERS[cipher], key.nonce_prefix
        )
        self.header = (
            SCHEME_NAME + b"\n" + manifest + b"\n" + base64.b64encode(key.header_mac(manifest)) + b"\n"
        )
        if len(self.header) > SEGMENT_SIZE:
            raise SchemeError("failed to sign header: header is too long")
        self._segments = _Segments(SEGMENT_SIZE, key.seal)

    def feed(self, data: bytes) -> list[bytes]:
        return self._segments.feed(data)

    def finish(self) -> list[bytes]:
        return self._segments.finish()


def _manifest_json(key_name: str, algorithm: int, wrapped: bytes, cipher: int, nonce_prefix: bytes) -> bytes:
    """Go's `json.Marshal` of kit's `Manifest` (field order `k`, `kw`, `wfk`, `cph`, `np`; `k` omitted when
    empty; `<`, `>`, `&`, U+2028 and U+2029 escaped as Go escapes them)."""
    parts = []
    if key_name:
        quoted = json.dumps(key_name, ensure_ascii=False)
        for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
            quoted = quoted.replace(char, escape)
        quoted = quoted.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        parts.append(f'"k":{quoted}')
    parts.append(f'"kw":{algorithm}')
    parts.append(f'"wfk":"{base64.b64encode(wrapped).decode()}"')
    parts.append(f'"cph":{cipher}')
    parts.append(f'"np":"{base64.b64encode(nonce_prefix).decode()}"')
    return ("{" + ",".join(parts) + "}").encode()


class Decryption:
    """One message being decrypted: the header is read from what `feed` gets first; `key_name` overrides
    the manifest's. Output is only ever segments whose tag verified."""

    def __init__(self, key_name: str, unwrap: UnwrapFn) -> None:
        self._key_name = key_name
        self._unwrap = unwrap
        self._head = bytearray()
        self._segments: _Segments | None = None

    @property
    def started(self) -> bool:
        """Whether the header was read and verified (so what follows are segments)."""
        return self._segments is not None

    def feed(self, data: bytes) -> list[bytes]:
        if self._segments is not None:
            return self._segments.feed(data)
        self._head += data
        lines, end = _header_lines(self._head)
        if len(lines) < 3 and len(self._head) < SEGMENT_SIZE:
            return []
        return self._start(lines, end)

    def finish(self) -> list[bytes]:
        out = [] if self._segments is not None else self._start(*_header_lines(self._head))
        return out + self._segments.finish() if self._segments is not None else out

    def _start(self, lines: list[bytes], end: int) -> list[bytes]:
        """kit's `Decrypt` up to its first segment: header, manifest, key name, unwrap, MAC."""
        if not lines:
            raise SchemeError("invalid header: scheme name not found")
        if len(lines) < 2:
            raise SchemeError("invalid header: manifest not found")
        if len(lines) < 3:
            raise SchemeError("invalid header: message authentication code not found")
        manifest, mac = lines[1], lines[2]
        fields = _parse_manifest(manifest)
        key_name = self._key_name or fields["k"]
        if not key_name:
            raise SchemeError("document's manifest does not contain a key name, and no key name was provided")
        try:
            file_key = self._unwrap(fields["wfk"], fields["kw"], key_name)
        except Exception:  # kit hides why: a missing key must look like a bad MAC
            file_key = b""
        if len(file_key) != 32:
            file_key = bytes(32)
        key = _FileKey(file_key, fields["np"], fields["cph"])
        expected = key.header_mac(manifest)
        try:
            given = base64.b64decode(mac.replace(b"\r", b"").replace(b"\n", b""), validate=True)
        except (binascii.Error, ValueError):
            raise SchemeError("failed to decode header's signature: illegal base64 data") from None
        if not hmac.compare_digest(expected, given):
            raise SchemeError("failed to validate the document's signature")
        self._segments = _Segments(SEGMENT_SIZE + SEGMENT_OVERHEAD, key.open)
        rest = bytes(self._head[end:])
        self._head = bytearray()
        return self._segments.feed(rest)


def _header_lines(buffer: bytearray) -> tuple[list[bytes], int]:
    """kit's `readHeader` over the first segment's worth of bytes: up to three non-empty lines, the first of
    which must name the scheme; returns them and where the payload begins."""
    lines: list[bytes] = []
    start = 0
    limit = min(len(buffer), SEGMENT_SIZE)
    while len(lines) < 3:
        newline = buffer.find(b"\n", start, limit)
        if newline < 0:
            break
        if newline == start:
            raise SchemeError("invalid header: invalid format")
        line = bytes(buffer[start:newline])
        if not lines and line != SCHEME_NAME:
            raise SchemeError("invalid header: unsupported scheme")
        lines.append(line)
        start = newline + 1
    return lines, start


def _parse_manifest(raw: bytes) -> dict[str, Any]:
    """Go's `json.Unmarshal` into kit's `Manifest` plus its `Validate`; any problem is reported only as
    "invalid manifest", as kit does (so as to disclose nothing)."""
    invalid = SchemeError("invalid header: invalid manifest")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid from None
    if not isinstance(doc, dict):
        raise invalid

    def field(name: str) -> Any:
        if name in doc:
            return doc[name]
        folded = [v for k, v in doc.items() if k.lower() == name]  # Go matches names case-insensitively
        return folded[-1] if folded else None

    def number(value: Any, table: dict[str, int]) -> str:
        names = {v: k for k, v in table.items()}
        if isinstance(value, bool) or not isinstance(value, int) or value not in names:
            raise invalid
        return names[value]

    def data(value: Any) -> bytes:
        if value is None:
            return b""
        if not isinstance(value, str):
            raise invalid
        try:
            return base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
        except (binascii.Error, ValueError):
            raise invalid from None

    key_name = field("k")
    if key_name is not None and not isinstance(key_name, str):
        raise invalid
    fields = {
        "k": key_name or "",
        "kw": number(field("kw"), KEY_ALGORITHMS),
        "wfk": data(field("wfk")),
        "cph": number(field("cph"), CIPHERS),
        "np": data(field("np")),
    }
    if not fields["wfk"] or len(fields["np"]) != NONCE_PREFIX_LENGTH:
        raise invalid
    return fields
