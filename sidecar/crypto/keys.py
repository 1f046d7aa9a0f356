"""Keys as dapr/kit's `ParseKey` reads them (a JWK, a PEM block or raw symmetric bytes, optionally base64),
with the JWK `alg`/`use`/`key_ops` checks contrib's local crypto components apply before using a key."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

__all__ = ["Key", "KeyProblem", "parse_key"]

# jwx's key types that contrib's localstorage accepts (`jwa.EC`, `jwa.RSA`, `jwa.OKP`, `jwa.OctetSeq`).
_EC_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}


class KeyProblem(Exception):
    """A key that cannot be read or cannot do what was asked, with dapr/kit's message."""


@dataclass(frozen=True)
class Key:
    """One key: `kty` is the JWK key type; `material` the `cryptography` key object (or the bytes of an
    `oct` key); `alg`, `use` and `key_ops` restrict it as RFC 7517 says (empty: unrestricted)."""

    kty: str
    material: Any
    alg: str = ""
    use: str = ""
    key_ops: tuple[str, ...] = ()

    def can_perform(self, operation: str) -> bool:
        """contrib's `KeyCanPerformOperation`: `key_ops` must list it, and `use` must match its kind."""
        if not self.key_ops and not self.use:
            return True
        if self.key_ops and operation not in self.key_ops:
            return False
        if self.use:
            if operation in ("encrypt", "decrypt", "wrapKey", "unwrapKey"):
                return self.use == "enc"
            if operation in ("sign", "verify"):
                return self.use == "sig"
        return True

    def allows(self, algorithm: str) -> bool:
        """contrib's `KeyCanPerformAlgorithm`: a key with an `alg` serves only that algorithm."""
        return not self.alg or self.alg == algorithm

    @property
    def symmetric(self) -> bytes:
        if self.kty != "oct":
            raise KeyProblem("key type mismatch")
        return bytes(self.material)


def parse_key(raw: bytes, content_type: str = "") -> Key:
    """dapr/kit's `ParseKey`: by content type if given, else a JWK if it starts with `{` (unless it is 16,
    24 or 32 bytes long: then it is a raw key), PEM if it starts with `-----`, otherwise raw symmetric
    bytes (base64, standard or URL alphabet, accepted)."""
    if not raw:
        raise KeyProblem("key is empty")
    if content_type == "application/json":
        return _parse_jwk(raw)
    if content_type in ("application/x-pem-file", "application/pkcs8"):
        return _parse_pem(raw)
    if raw[:1] == b"{" and len(raw) not in (16, 24, 32):
        return _parse_jwk(raw)
    if len(raw) > 10 and raw[:5] == b"-----":
        return _parse_pem(raw)
    return Key("oct", _symmetric_bytes(raw))


def _symmetric_bytes(raw: bytes) -> bytes:
    """kit's `parseSymmetricKey`: unpadded base64 (standard, then URL-safe) if it decodes, else the bytes."""
    trimmed = raw.rstrip(b"\n=").replace(b"\r", b"").replace(b"\n", b"")
    padded = trimmed + b"=" * (-len(trimmed) % 4)
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    return raw


def _parse_pem(raw: bytes) -> Key:
    obj: Any
    try:
        if b"CERTIFICATE-----" in raw.split(b"\n", 1)[0]:
            obj = x509.load_pem_x509_certificate(raw).public_key()
        elif b"PUBLIC KEY-----" in raw.split(b"\n", 1)[0]:
            obj = load_pem_public_key(raw)
        else:
            obj = load_pem_private_key(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyProblem(f"failed to parse PEM encoded key: {exc}") from None
    return _from_object(obj)


def _from_object(obj: Any) -> Key:
    if isinstance(obj, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return Key("RSA", obj)
    if isinstance(obj, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return Key("EC", obj)
    if isinstance(
        obj,
        (
            ed25519.Ed25519PrivateKey,
            ed25519.Ed25519PublicKey,
            x25519.X25519PrivateKey,
            x25519.X25519PublicKey,
        ),
    ):
        return Key("OKP", obj)
    raise KeyProblem("invalid key type")


def _b64(value: Any, field: str) -> bytes:
    """A JWK member: base64url without padding (RFC 7518); padding or the standard alphabet tolerated."""
    if not isinstance(value, str) or not value:
        raise KeyProblem(f"failed to parse key: required field {field} is missing")
    text = value.rstrip("=")
    try:
        return base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise KeyProblem(f"failed to parse key: failed to decode {field}") from None


def _int(value: Any, field: str) -> int:
    return int.from_bytes(_b64(value, field), "big")


def _parse_jwk(raw: bytes) -> Key:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyProblem(f"failed to unmarshal JSON into key: {exc}") from None
    if not isinstance(doc, dict):
        raise KeyProblem("failed to unmarshal JSON into key: not an object")
    kty = doc.get("kty")
    ops = doc.get("key_ops") or []
    if not isinstance(ops, list):
        raise KeyProblem("failed to parse key: key_ops must be a list")
    try:
        material = _jwk_material(kty, doc)
    except ValueError as exc:
        raise KeyProblem(f"failed to parse key: {exc}") from None
    return Key(
        str(kty),
        material,
        alg=str(doc.get("alg") or ""),
        use=str(doc.get("use") or ""),
        key_ops=tuple(str(op) for op in ops),
    )


def _jwk_material(kty: Any, doc: dict[str, Any]) -> Any:
    if kty == "oct":
        return _b64(doc.get("k"), "k")
    if kty == "RSA":
        public = rsa.RSAPublicNumbers(_int(doc.get("e"), "e"), _int(doc.get("n"), "n"))
        if "d" not in doc:
            return public.public_key()
        d = _int(doc["d"], "d")
        if "p" in doc and "q" in doc:
            p, q = _int(doc["p"], "p"), _int(doc["q"], "q")
        else:
            p, q = rsa.rsa_recover_prime_factors(public.n, public.e, d)
        return rsa.RSAPrivateNumbers(
            p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), public
        ).private_key()
    if kty == "EC":
        curve = _EC_CURVES.get(str(doc.get("crv")))
        if curve is None:
            raise ValueError(f"unsupported curve {doc.get('crv')!r}")
        numbers = ec.EllipticCurvePublicNumbers(_int(doc.get("x"), "x"), _int(doc.get("y"), "y"), curve)
        if "d" not in doc:
            return numbers.public_key()
        return ec.EllipticCurvePrivateNumbers(_int(doc["d"], "d"), numbers).private_key()
    if kty == "OKP":
        crv = doc.get("crv")
        kinds: dict[Any, tuple[Any, Any]] = {
            "Ed25519": (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey),
            "X25519": (x25519.X25519PrivateKey, x25519.X25519PublicKey),
        }
        if crv not in kinds:
            raise ValueError(f"unsupported curve {crv!r}")
        private, public_ = kinds[crv]
        if "d" in doc:
            return private.from_private_bytes(_b64(doc["d"], "d"))
        return public_.from_public_bytes(_b64(doc.get("x"), "x"))
    raise KeyProblem("invalid key type")
