"""The `dapr.io/enc/v1` scheme against dapr/kit's own test vectors (`schemes/enc/v1/testdata`, whose file key
is the wrapped key itself: kit's tests wrap with an identity function), and the key wrapping against RFC 3394.
The vectors were written by kit's Go code, so decrypting them is what proves the bytes match daprd's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.crypto.keys import parse_key
from sidecar.crypto.localstorage import LocalStorageCrypto
from sidecar.crypto.scheme import Decryption, Encryption, EncryptOptions, SchemeError, SegmentError

VECTORS = Path(__file__).parent / "vectors"

# scheme_test.go's testData
PLAINTEXTS = {
    "single-segment": b"hello world",
    "single-segment-no-key-name": b"hello world",
    "multi-segment": bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 0]) * (12 << 10),
    "one-full-segment": bytes([1, 2, 3, 4, 5, 6, 7, 8]) * (8 << 10),
    "empty-message": b"",
}


def _identity(key: bytes, algorithm: str, key_name: str) -> bytes:
    return key


def _decrypt(raw: bytes, chunk: int, key_name: str = "") -> bytes:
    decryption = Decryption(key_name, _identity)
    out: list[bytes] = []
    for start in range(0, len(raw), chunk):
        out += decryption.feed(raw[start : start + chunk])
    return b"".join(out + decryption.finish())


@pytest.mark.parametrize("name", sorted(PLAINTEXTS))
@pytest.mark.parametrize("chunk", [7, 2048, 1 << 20])
def test_kit_vectors_decrypt(name: str, chunk: int) -> None:
    key_name = "mykey" if name.endswith("no-key-name") else ""
    assert _decrypt((VECTORS / f"{name}.enc").read_bytes(), chunk, key_name) == PLAINTEXTS[name]


def test_a_message_without_key_name_needs_one() -> None:
    with pytest.raises(SchemeError, match="does not contain a key name, and no key name was provided"):
        _decrypt((VECTORS / "single-segment-no-key-name.enc").read_bytes(), 4096)


def test_a_tampered_segment_is_refused_and_a_tampered_header_too() -> None:
    raw = bytearray((VECTORS / "multi-segment.enc").read_bytes())
    raw[-5] ^= 1  # in the last segment: the first one still comes out, verified
    decryption = Decryption("", _identity)
    first = decryption.feed(bytes(raw[: len(raw) - 100]))
    assert b"".join(first) == PLAINTEXTS["multi-segment"][: 64 << 10]
    with pytest.raises(SegmentError, match="error processing segment 1: failed to decrypt segment"):
        decryption.feed(bytes(raw[len(raw) - 100 :]))
        decryption.finish()
    header = (VECTORS / "single-segment.enc").read_bytes().replace(b'"k":"mykey"', b'"k":"mykez"')
    with pytest.raises(SchemeError, match="failed to validate the document's signature"):
        _decrypt(header, 4096)


def test_header_is_kits_manifest_with_options() -> None:
    options = EncryptOptions("mykey", "AES", decryption_key_name="<dec>", cipher="CHACHA20-POLY1305")
    encryption = Encryption(options, _identity)
    scheme, manifest, mac, rest = encryption.header.split(b"\n")
    assert (scheme, rest, len(mac)) == (b"dapr.io/enc/v1", b"", 44)
    assert manifest.startswith(b'{"k":"\\u003cdec\\u003e","kw":1,"wfk":"')
    assert json.loads(manifest)["cph"] == 2
    omitted = Encryption(EncryptOptions("mykey", "RSA", omit_key_name=True), _identity).header
    assert omitted.split(b"\n")[1].startswith(b'{"kw":5,"wfk":')
    data = bytes(range(256)) * 1000
    sealed = encryption.header + b"".join(encryption.feed(data) + encryption.finish())
    assert _decrypt(sealed, 5000, "other") == data
    with pytest.raises(SchemeError, match="algorithm A512KW is not supported"):
        Encryption(EncryptOptions("mykey", "A512KW"), _identity)


def test_aes_key_wrap_matches_rfc_3394(tmp_path: Path) -> None:
    # RFC 3394 4.6: 256 bits of key data wrapped with a 256-bit KEK.
    (tmp_path / "kek").write_bytes(
        bytes.fromhex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
    )
    store = LocalStorageCrypto.from_metadata("keys", {"path": str(tmp_path)})
    data = bytes.fromhex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
    wrapped = store.wrap_key(data, "A256KW", "kek")
    expected = "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"
    assert wrapped == bytes.fromhex(expected)
    assert store.unwrap_key(wrapped, "A256KW", "kek") == data


def test_keys_parse_as_kit_reads_them() -> None:
    assert parse_key(bytes(range(32))).material == bytes(range(32))  # not base64: the bytes themselves
    assert len(parse_key(b"a" * 32).material) == 24  # valid base64, so kit decodes it
    assert parse_key(b"YWJj\n").material == b"abc"  # base64, trailing newline
    jwk = parse_key(b'{"kty":"oct","k":"' + b"QUFB" * 8 + b'","use":"sig"}')
    assert (jwk.kty, jwk.can_perform("wrapKey"), jwk.can_perform("sign")) == ("oct", False, True)


def test_the_sidecar_loads_cryptography_only_for_a_crypto_component() -> None:
    """The idle sidecar's memory budget (#16: <= 80 MB): `cryptography` (~10 MB) is imported by the
    component, not by the sidecar's modules."""
    probe = "import sys, sidecar.server; print([m for m in sys.modules if m.startswith('cryptography')])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
