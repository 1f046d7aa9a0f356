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
from sidecar.crypto.localstorage import LOCALSTORAGE_CRYPTO_TYPE, LocalStorageCrypto
from sidecar.crypto.scheme import SegmentError

__all__ = [
    "LOCALSTORAGE_CRYPTO_TYPE",
    "SUBTLE_OPERATIONS",
    "CryptoAPI",
    "DecryptRequest",
    "EncryptRequest",
    "InputError",
    "LocalStorageCrypto",
    "SegmentError",
    "operation_error",
    "subtle_unimplemented",
]
