"""Dapr's cryptography building block: the `crypto.dapr.localstorage` component and the `dapr.io/enc/v1`
encryption scheme behind `EncryptAlpha1`/`DecryptAlpha1` and `/v1.0-alpha1/crypto/...`."""

from __future__ import annotations

from sidecar.crypto.api import (
    SUBTLE_OPERATIONS,
    CryptoAPI,
    DecryptRequest,
    EncryptRequest,
    InputError,
    operation_error,
    subtle_unimplemented,
)
from sidecar.crypto.scheme import SegmentError

# The component type; the component itself (sidecar.crypto.localstorage, which loads `cryptography`) is
# imported only when a resource declares one, so an idle sidecar without it does not carry the library.
LOCALSTORAGE_CRYPTO_TYPE = "crypto.dapr.localstorage"

__all__ = [
    "LOCALSTORAGE_CRYPTO_TYPE",
    "SUBTLE_OPERATIONS",
    "CryptoAPI",
    "DecryptRequest",
    "EncryptRequest",
    "InputError",
    "SegmentError",
    "operation_error",
    "subtle_unimplemented",
]
