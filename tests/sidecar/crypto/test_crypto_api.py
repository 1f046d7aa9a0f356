"""The cryptography API of a real embedded sidecar with a `crypto.dapr.localstorage` component: the SDK's
`DaprClient.encrypt/decrypt` over gRPC, raw HTTP with daprd's headers, one wire's output read by the other,
and daprd's errors on both."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dapr.clients import DaprClient
from dapr.clients.grpc._crypto import DecryptOptions, EncryptOptions
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import crypto_pb2, dapr_pb2_grpc

from sidecar.components import ComponentError, load_components
from sidecar.thread import SidecarThread
from tests.harness import use_sidecar
from tests.stack import sidecar_thread

pytestmark = pytest.mark.filterwarnings("ignore:The (En|De)crypt API:UserWarning")

COMPONENT = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: localkeys
spec:
  type: crypto.dapr.localstorage
  version: v1
  metadata:
    - name: path
      value: {path}
"""
LARGE = os.urandom(300 << 10)  # five segments of 64 KiB, the last one short


def _pem(key: rsa.RSAPrivateKey, public: bool = False) -> bytes:
    if public:
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarThread]:
    data: Path = tmp_path_factory.mktemp("crypto")
    keys = data / "keys"
    keys.mkdir()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (keys / "rsa-private-key.pem").write_bytes(_pem(rsa_key))
    (keys / "rsa-public-key.pem").write_bytes(_pem(rsa_key, public=True))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (keys / "other-rsa-key.pem").write_bytes(_pem(other))
    (keys / "symmetric-key-256").write_bytes(os.urandom(32))
    (data / "components").mkdir()
    (data / "components" / "crypto.yaml").write_text(COMPONENT.format(path=keys))
    with sidecar_thread(data, app_id="crypto-app", resources_paths=[data / "components"]) as thread:
        yield thread


@pytest.fixture
def client(sidecar: SidecarThread) -> Iterator[DaprClient]:
    use_sidecar(sidecar.http_port, sidecar.grpc_port)
    with DaprClient(f"127.0.0.1:{sidecar.grpc_port}") as dapr:
        yield dapr


@pytest.fixture
def http(sidecar: SidecarThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{sidecar.http_port}/v1.0-alpha1/crypto", timeout=30) as c:
        yield c


@pytest.mark.parametrize(
    ("key", "algorithm", "cipher"),
    [
        ("rsa-private-key.pem", "RSA", "aes-gcm"),
        ("symmetric-key-256", "AES", "aes-gcm"),
        ("symmetric-key-256", "A256KW", "chacha20-poly1305"),
    ],
)
def test_sdk_round_trip(client: DaprClient, key: str, algorithm: str, cipher: str) -> None:
    options = EncryptOptions("localkeys", key, algorithm, data_encryption_cipher=cipher)
    sealed = client.encrypt(LARGE, options).read()
    assert sealed.startswith(b'dapr.io/enc/v1\n{"k":"' + key.encode())
    assert len(sealed) > len(LARGE) + 5 * 16  # a tag per segment
    assert client.decrypt(sealed, DecryptOptions("localkeys")).read() == LARGE
    small = client.encrypt("hello dapr", options).read()
    assert client.decrypt(small, DecryptOptions("localkeys", key)).read() == b"hello dapr"


def test_sdk_public_key_encrypts_for_its_private_key(client: DaprClient) -> None:
    options = EncryptOptions(
        "localkeys", "rsa-public-key.pem", "RSA-OAEP-256", decryption_key_name="rsa-private-key.pem"
    )
    sealed = client.encrypt(b"for the holder of the private key", options).read()
    assert client.decrypt(sealed, DecryptOptions("localkeys")).read() == b"for the holder of the private key"
    with pytest.raises(grpc.RpcError) as failed:  # the public key cannot unwrap
        client.decrypt(sealed, DecryptOptions("localkeys", "rsa-public-key.pem")).read()
    assert failed.value.code() == grpc.StatusCode.INTERNAL


def test_sdk_errors(client: DaprClient) -> None:
    sealed = client.encrypt(b"secret", EncryptOptions("localkeys", "rsa-private-key.pem", "RSA")).read()
    with pytest.raises(grpc.RpcError) as failed:
        client.decrypt(sealed, DecryptOptions("localkeys", "other-rsa-key.pem")).read()
    assert (failed.value.code(), failed.value.details()) == (
        grpc.StatusCode.INTERNAL,
        "failed to perform operation: failed to validate the document's signature",
    )
    with pytest.raises(grpc.RpcError) as failed:
        client.encrypt(b"x", EncryptOptions("nope", "rsa-private-key.pem", "RSA")).read()
    assert (failed.value.code(), failed.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "crypto provider nope not found",
    )
    with pytest.raises(grpc.RpcError) as failed:
        client.encrypt(b"x", EncryptOptions("localkeys", "missing.pem", "RSA")).read()
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert failed.value.details().startswith(
        "failed to perform operation: failed to wrap the file key: failed to retrieve the key encryption "
        "key: failed to load key 'missing.pem': open "
    )
    with pytest.raises(grpc.RpcError) as failed:  # an RSA key cannot do AES key wrap
        client.encrypt(b"x", EncryptOptions("localkeys", "rsa-private-key.pem", "A256KW")).read()
    assert failed.value.details() == (
        "failed to perform operation: failed to wrap the file key: failed to encrypt data: key type mismatch"
    )


def test_grpc_stream_order_is_checked(sidecar: SidecarThread) -> None:
    options = crypto_pb2.EncryptRequestOptions(
        component_name="localkeys", key_name="symmetric-key-256", key_wrap_algorithm="AES"
    )
    requests = [
        crypto_pb2.EncryptRequest(options=options, payload=common_pb2.StreamPayload(data=b"a", seq=0)),
        crypto_pb2.EncryptRequest(payload=common_pb2.StreamPayload(data=b"b", seq=2)),
    ]
    with grpc.insecure_channel(f"127.0.0.1:{sidecar.grpc_port}") as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)
        with pytest.raises(grpc.RpcError) as failed:
            list(stub.EncryptAlpha1(iter(requests)))
        assert failed.value.details() == (
            "failed to perform operation: invalid sequence number received: 2 (expected: 1)"
        )
        with pytest.raises(grpc.RpcError) as failed:
            list(stub.DecryptAlpha1(iter([crypto_pb2.DecryptRequest()])))
        assert (failed.value.code(), failed.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid request: first message does not contain the required options",
        )


def test_http_round_trip_and_across_wires(http: httpx.Client, client: DaprClient) -> None:
    headers = {"dapr-key-name": "symmetric-key-256", "dapr-key-wrap-algorithm": "aes"}
    sealed = http.put("/localkeys/encrypt", content=LARGE, headers=headers)
    assert sealed.status_code == 200
    assert sealed.headers["content-type"] == "application/octet-stream"
    assert client.decrypt(sealed.content, DecryptOptions("localkeys")).read() == LARGE
    by_grpc = client.encrypt(LARGE, EncryptOptions("localkeys", "rsa-private-key.pem", "RSA")).read()
    opened = http.put("/localkeys/decrypt", content=by_grpc)
    assert (opened.status_code, opened.content == LARGE) == (200, True)
    omit = {**headers, "dapr-omit-decryption-key-name": "true"}
    anonymous = http.put("/localkeys/encrypt", content=b"who", headers=omit).content
    assert http.put("/localkeys/decrypt", content=anonymous).json() == {
        "errorCode": "ERR_CRYPTO",
        "message": "failed to perform operation: document's manifest does not contain a key name, "
        "and no key name was provided",
    }
    named = http.put("/localkeys/decrypt", content=anonymous, headers={"dapr-key-name": "symmetric-key-256"})
    assert named.content == b"who"


def test_http_errors(http: httpx.Client) -> None:
    missing = http.put("/localkeys/encrypt", content=b"x", headers={"dapr-key-name": "symmetric-key-256"})
    assert (missing.status_code, missing.json()) == (
        400,
        {
            "errorCode": "ERR_BAD_REQUEST",
            "message": "invalid request: missing header 'dapr-key-wrap-algorithm'",
        },
    )
    unknown = http.put("/nope/decrypt", content=b"x")
    assert (unknown.status_code, unknown.json()["errorCode"]) == (400, "ERR_CRYPTO_PROVIDER_NOT_FOUND")
    headers = {"dapr-key-name": "symmetric-key-256", "dapr-key-wrap-algorithm": "A256KW"}
    sealed = bytearray(http.put("/localkeys/encrypt", content=LARGE, headers=headers).content)
    sealed[-1] ^= 1  # the last segment's tag
    tampered = http.put("/localkeys/decrypt", content=bytes(sealed))
    assert (tampered.status_code, tampered.json()) == (
        500,
        {"errorCode": "ERROR", "message": "error processing segment 4: failed to decrypt segment"},
    )
    garbage = http.put("/localkeys/decrypt", content=b"not encrypted\n")
    assert garbage.json()["message"] == "failed to perform operation: invalid header: unsupported scheme"


def test_metadata_lists_the_component_and_a_bad_path_stops_start_up(
    sidecar: SidecarThread, tmp_path: Path
) -> None:
    listed = httpx.get(f"http://127.0.0.1:{sidecar.http_port}/v1.0/metadata").json()["components"]
    assert {"name": "localkeys", "type": "crypto.dapr.localstorage"} in [
        {k: c[k] for k in ("name", "type")} for c in listed
    ]
    (tmp_path / "crypto.yaml").write_text(COMPONENT.format(path=tmp_path / "absent"))
    with pytest.raises(ComponentError, match=r"could not stat path '.*absent': stat .*: no such file"):
        load_components([tmp_path], app_id="crypto-app", data_dir=tmp_path)


def test_subtle_apis_answer_as_daprds_release_build(sidecar: SidecarThread, http: httpx.Client) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{sidecar.grpc_port}") as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)
        with pytest.raises(grpc.RpcError) as failed:
            stub.SubtleGetKeyAlpha1(crypto_pb2.SubtleGetKeyRequest(component_name="localkeys", name="x"))
        assert (failed.value.code(), failed.value.details()) == (
            grpc.StatusCode.UNIMPLEMENTED,
            "this API is currently not implemented",
        )
    base = f"http://127.0.0.1:{sidecar.http_port}/v1.0-alpha1/subtlecrypto"
    signed = http.post(f"{base}/localkeys/sign", json={"digest": "AAAA", "algorithm": "PS256"})
    assert (signed.status_code, signed.json()) == (
        501,
        {"errorCode": "ERR_API_UNIMPLEMENTED", "message": "this API is currently not implemented"},
    )
    assert http.post(f"{base}/localkeys/sign", content=b"{").json()["errorCode"] == "ERR_MALFORMED_REQUEST"
