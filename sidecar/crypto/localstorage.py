"""The `crypto.dapr.localstorage` component: keys read from files in one folder (contrib's
`crypto/localstorage`), used to wrap and unwrap file keys as contrib's `LocalCryptoBaseComponent` does with
dapr/kit's algorithms. Keys are read on every use, so a key replaced on disk takes effect at once."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from sidecar.crypto import LOCALSTORAGE_CRYPTO_TYPE
from sidecar.crypto.keys import Key, KeyProblem, parse_key

__all__ = ["LOCALSTORAGE_CRYPTO_TYPE", "LocalStorageCrypto"]

_KEY_WRAP = ("A128KW", "A192KW", "A256KW")
_CBC_NOPAD = ("A128CBC-NOPAD", "A192CBC-NOPAD", "A256CBC-NOPAD")
_OAEP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "RSA-OAEP": hashes.SHA1,
    "RSA-OAEP-256": hashes.SHA256,
    "RSA-OAEP-384": hashes.SHA384,
    "RSA-OAEP-512": hashes.SHA512,
}


def _expected_size(algorithm: str) -> int:
    """kit's `expectedKeySize`: the key length an `A<bits>...` algorithm takes."""
    return {"128": 16, "192": 24, "256": 32}.get(algorithm[1:4], 0)


@dataclass(frozen=True)
class LocalStorageCrypto:
    """One `crypto.dapr.localstorage` component: the folder its `path` metadata names."""

    name: str
    path: Path
    type: str = LOCALSTORAGE_CRYPTO_TYPE

    @classmethod
    def from_metadata(cls, name: str, metadata: Mapping[str, str]) -> LocalStorageCrypto:
        """contrib's `InitWithMetadata`: `path` is required and must be a directory (relative paths are
        taken from the working directory, as daprd's are)."""
        raw = metadata.get("path", "")
        if not raw:
            raise ValueError("metadata property 'path' is required")
        path = os.path.normpath(raw)
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            raise ValueError(f"could not stat path '{path}': {_go_os_error('stat', path, exc)}") from None
        if not stat.S_ISDIR(mode):
            raise ValueError(f"path '{path}' is not a directory")
        return cls(name, Path(path))

    def retrieve_key(self, key_name: str) -> Key:
        """contrib's `retrieveKey`: the file `key_name` inside the folder, never outside it."""
        if ".." in key_name:
            raise KeyProblem("invalid key path: cannot contain '..'")
        path = os.path.normpath(f"{self.path}/{key_name}")  # Go's filepath.Join: a leading "/" stays inside
        try:
            with open(path, "rb") as file:
                data = file.read()
        except IsADirectoryError as exc:
            raise KeyProblem(f"failed to load key '{key_name}': {_go_os_error('read', path, exc)}") from None
        except OSError as exc:
            raise KeyProblem(f"failed to load key '{key_name}': {_go_os_error('open', path, exc)}") from None
        content_type = {".json": "application/json", ".pem": "application/x-pem-file"}.get(
            os.path.splitext(path)[1].lower(), ""
        )
        try:
            key = parse_key(data, content_type)
            if key.kty not in ("EC", "RSA", "OKP", "oct"):
                raise KeyProblem("invalid key type")
        except KeyProblem as exc:
            raise KeyProblem(f"failed to parse key from secret: {exc}") from None
        return key

    def wrap_key(self, plaintext: bytes, algorithm: str, key_name: str) -> bytes:
        """`WrapKey` without nonce or associated data (how the encryption scheme calls it)."""
        return self._with_key(key_name, "wrapKey", algorithm, lambda kek: _encrypt(plaintext, algorithm, kek))

    def unwrap_key(self, wrapped: bytes, algorithm: str, key_name: str) -> bytes:
        """`UnwrapKey` without nonce, tag or associated data; the key comes back as raw bytes."""
        return self._with_key(key_name, "unwrapKey", algorithm, lambda kek: _decrypt(wrapped, algorithm, kek))

    def _with_key(
        self, key_name: str, operation: str, algorithm: str, apply: Callable[[Key], bytes]
    ) -> bytes:
        """contrib's checks before a key is used: it loads, allows `operation` and allows `algorithm`."""
        try:
            key = self.retrieve_key(key_name)
        except KeyProblem as exc:
            raise KeyProblem(f"failed to retrieve the key encryption key: {exc}") from None
        if not key.can_perform(operation):
            raise KeyProblem(f"key cannot perform the '{operation}' operation")
        if not key.allows(algorithm):
            raise KeyProblem(f"key cannot be used with algorithm '{algorithm}'")
        try:
            return apply(key)
        except KeyProblem as exc:
            verb = "encrypt" if operation == "wrapKey" else "decrypt"
            raise KeyProblem(f"failed to {verb} data: {exc}") from None


def _go_os_error(op: str, path: str, exc: OSError) -> str:
    """Go's `*fs.PathError` text (`open /x: no such file or directory`) for an OS error."""
    reason = (exc.strerror or str(exc)).lower()
    return f"{op} {path}: {reason}"


def _encrypt(plaintext: bytes, algorithm: str, key: Key) -> bytes:
    """kit's `crypto.Encrypt` for the algorithms a key-wrapping call can reach with no nonce."""
    if algorithm in _KEY_WRAP or algorithm in _CBC_NOPAD:
        secret = key.symmetric
        if len(secret) != _expected_size(algorithm):
            raise KeyProblem("key type mismatch")
        if algorithm in _CBC_NOPAD:  # kit requires a 16-byte IV, and the scheme passes none
            raise KeyProblem("invalid nonce")
        return aes_key_wrap(secret, plaintext)
    if algorithm in _OAEP_HASHES:
        public = key.material.public_key() if isinstance(key.material, rsa.RSAPrivateKey) else key.material
        if not isinstance(public, rsa.RSAPublicKey):
            raise KeyProblem("key type mismatch")
        return public.encrypt(plaintext, _oaep(algorithm))
    raise KeyProblem("unsupported algorithm")


def _decrypt(ciphertext: bytes, algorithm: str, key: Key) -> bytes:
    if algorithm in _KEY_WRAP or algorithm in _CBC_NOPAD:
        secret = key.symmetric
        if len(secret) != _expected_size(algorithm):
            raise KeyProblem("key type mismatch")
        if algorithm in _CBC_NOPAD:
            raise KeyProblem("invalid nonce")
        try:
            return aes_key_unwrap(secret, ciphertext)
        except (InvalidUnwrap, ValueError):
            raise KeyProblem("integrity check failed - unexpected IV") from None
    if algorithm in _OAEP_HASHES:
        if not isinstance(key.material, rsa.RSAPrivateKey):
            raise KeyProblem("key type mismatch")
        try:
            return key.material.decrypt(ciphertext, _oaep(algorithm))
        except ValueError:
            raise KeyProblem("crypto/rsa: decryption error") from None
    raise KeyProblem("unsupported algorithm")


def _oaep(algorithm: str) -> padding.OAEP:
    digest = _OAEP_HASHES[algorithm]()
    return padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None)
