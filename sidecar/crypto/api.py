"""The cryptography API both wires call (daprd's `EncryptAlpha1`/`DecryptAlpha1` and
`/v1.0-alpha1/crypto/{name}/encrypt|decrypt`): the provider lookup with daprd's errors, then the
encryption scheme over a stream of chunks in and a stream of chunks out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sidecar.crypto.scheme import Decryption, Encryption, EncryptOptions, SchemeError, SegmentError
from sidecar.errors import DaprError, error

if TYPE_CHECKING:
    from sidecar.crypto.localstorage import LocalStorageCrypto

__all__ = [
    "SUBTLE_OPERATIONS",
    "CryptoAPI",
    "DecryptRequest",
    "EncryptRequest",
    "InputError",
    "operation_error",
    "subtle_unimplemented",
]

log = logging.getLogger("sidecar.crypto")


class InputError(SegmentError):
    """The caller's stream went wrong (a chunk out of order, options again): the operation fails with it."""


@dataclass(frozen=True)
class EncryptRequest:
    component: str
    key_name: str
    algorithm: str
    omit_decryption_key_name: bool = False
    decryption_key_name: str = ""
    cipher: str = ""


@dataclass(frozen=True)
class DecryptRequest:
    component: str
    key_name: str = ""


def operation_error(exc: Exception) -> DaprError:
    """daprd's `ErrCryptoOperation`."""
    return error("ERR_CRYPTO", f"failed to perform operation: {exc}")


# The `Subtle*` RPCs (and their `/v1.0-alpha1/subtlecrypto/{name}/...` routes): daprd's release builds answer
# them all with `ErrAPIUnimplemented` (they are served only when daprd is built with the `subtlecrypto` tag).
SUBTLE_OPERATIONS = {
    "getkey": "SubtleGetKeyAlpha1",
    "encrypt": "SubtleEncryptAlpha1",
    "decrypt": "SubtleDecryptAlpha1",
    "wrapkey": "SubtleWrapKeyAlpha1",
    "unwrapkey": "SubtleUnwrapKeyAlpha1",
    "sign": "SubtleSignAlpha1",
    "verify": "SubtleVerifyAlpha1",
}


def subtle_unimplemented() -> DaprError:
    return error("ERR_API_UNIMPLEMENTED", "this API is currently not implemented")


class CryptoAPI:
    """The crypto providers (components) by name, and the operations over them."""

    def __init__(self, providers: Mapping[str, LocalStorageCrypto]) -> None:
        self.providers = providers

    def provider(self, name: str) -> LocalStorageCrypto:
        """daprd's `CryptoValidateRequest`."""
        if not self.providers:
            raise error("ERR_CRYPTO_PROVIDERS_NOT_CONFIGURED", "crypto providers not configured")
        if not name:
            raise error("ERR_BAD_REQUEST", "invalid request: missing component name")
        found = self.providers.get(name)
        if found is None:
            raise error("ERR_CRYPTO_PROVIDER_NOT_FOUND", f"crypto provider {name} not found")
        return found

    async def encrypt(self, request: EncryptRequest, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """Start encrypting, raising `DaprError` for what fails before any output (options, key wrapping);
        the result yields the header, then each sealed segment, raising `SegmentError` if the stream fails."""
        provider = self.provider(request.component)
        options = EncryptOptions(
            key_name=request.key_name,
            algorithm=request.algorithm.upper(),
            decryption_key_name=request.decryption_key_name,
            omit_key_name=request.omit_decryption_key_name,
            cipher=request.cipher.upper(),
        )
        try:
            encryption = Encryption(options, provider.wrap_key)
        except SchemeError as exc:
            log.debug("encrypt with %s: %s", request.component, exc)
            raise operation_error(exc) from None
        return _stream(encryption, aiter(chunks), [encryption.header])

    async def decrypt(self, request: DecryptRequest, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """Start decrypting: reads until the header is complete and verified, raising `DaprError` if it is
        not; the result yields each verified segment's plaintext, raising `SegmentError` on a bad one."""
        provider = self.provider(request.component)
        decryption = Decryption(request.key_name, provider.unwrap_key)
        source = aiter(chunks)
        try:
            async for chunk in source:
                first = decryption.feed(chunk)
                if decryption.started:
                    return _stream(decryption, source, first)
            return _stream(decryption, None, decryption.finish())
        except SegmentError:
            raise
        except SchemeError as exc:
            log.debug("decrypt with %s: %s", request.component, exc)
            raise operation_error(exc) from None


async def _stream(
    operation: Encryption | Decryption, chunks: AsyncIterator[bytes] | None, first: list[bytes]
) -> AsyncIterator[bytes]:
    """`first`, then what the rest of the input turns into (nothing more if `chunks` is None: it ended)."""
    for part in first:
        yield part
    if chunks is None:
        return
    async for chunk in chunks:
        for part in operation.feed(chunk):
            yield part
    for part in operation.finish():
        yield part
