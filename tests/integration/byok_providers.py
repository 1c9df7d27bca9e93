"""What the cloud providers do with an imported blob, written here from their documentation with
``cryptography`` alone (no Strongroom code), for the BYOK tests to unwrap what the server made.

* AWS KMS, "Import key material", Step 3: RSAES_OAEP_SHA_1 / RSAES_OAEP_SHA_256 encrypt the key
  material with the wrapping public key by RSAES-OAEP (MGF1 with the same hash, no label);
  RSA_AES_KEY_WRAP_SHA_1 / _SHA_256 are PKCS#11 CKM_RSA_AES_KEY_WRAP: an AES-256 key encrypted
  by that OAEP, followed by the key material under it by AES Key Wrap with Padding (RFC 5649).
* Google Cloud KMS, "Key wrapping" import methods: rsa-oaep-{3072,4096}-{sha1,sha256}-aes-256
  are CKM_RSA_AES_KEY_WRAP with that RSA size and hash; rsa-oaep-{3072,4096}-sha256 are plain
  RSAES-OAEP-SHA256 of the key material.
* Azure, "Bring your own key specification": a JSON Key Transfer Blob (schema_version 1.0.0,
  header kid / alg "dir" / enc "CKM_RSA_AES_KEY_WRAP", ciphertext base64url, generator) whose
  ciphertext is CKM_RSA_AES_KEY_WRAP with RSA-OAEP-SHA1 and an AES-256 key.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

_HASHES = {"SHA_1": hashes.SHA1, "SHA_256": hashes.SHA256, "sha1": hashes.SHA1, "sha256": hashes.SHA256}


def _oaep(hash_name: str) -> padding.OAEP:
    algorithm = _HASHES[hash_name]
    return padding.OAEP(mgf=padding.MGF1(algorithm()), algorithm=algorithm(), label=None)


def rsaes_oaep_unwrap(private: rsa.RSAPrivateKey, hash_name: str, blob: bytes) -> bytes:
    return private.decrypt(blob, _oaep(hash_name))


def rsa_aes_unwrap(private: rsa.RSAPrivateKey, hash_name: str, blob: bytes) -> bytes:
    size = private.key_size // 8
    assert len(blob) > size, "an RSA-AES blob is the RSA block followed by the AES-KWP ciphertext"
    aes_key = private.decrypt(blob[:size], _oaep(hash_name))
    assert len(aes_key) == 32, "the providers' RSA-AES key wrap uses an AES-256 key"
    return aes_key_unwrap_with_padding(aes_key, blob[size:])


def aws_unwrap(private: rsa.RSAPrivateKey, algorithm: str, blob: bytes) -> bytes:
    """What AWS KMS recovers from EncryptedKeyMaterial made with ``algorithm``."""
    if algorithm.startswith("RSAES_OAEP_"):
        return rsaes_oaep_unwrap(private, algorithm.removeprefix("RSAES_OAEP_"), blob)
    assert algorithm.startswith("RSA_AES_KEY_WRAP_"), algorithm
    return rsa_aes_unwrap(private, algorithm.removeprefix("RSA_AES_KEY_WRAP_"), blob)


def gcp_unwrap(private: rsa.RSAPrivateKey, method: str, blob: bytes) -> bytes:
    """What Cloud KMS recovers from a wrapped key made with import method ``method``."""
    parts = method.split("-")  # rsa-oaep-3072-sha256[-aes-256]
    assert parts[:2] == ["rsa", "oaep"] and int(parts[2]) == private.key_size, method
    if parts[4:] == ["aes", "256"]:
        return rsa_aes_unwrap(private, parts[3], blob)
    assert len(parts) == 4 and parts[3] == "sha256", method
    return rsaes_oaep_unwrap(private, "sha256", blob)


def azure_unwrap(private: rsa.RSAPrivateKey, byok_file: bytes) -> tuple[bytes, dict[str, Any]]:
    """What Key Vault recovers from a .byok file, and the file's JSON."""
    blob = json.loads(byok_file)
    assert set(blob) == {"schema_version", "header", "ciphertext", "generator"}, blob
    assert blob["schema_version"] == "1.0.0"
    assert set(blob["header"]) == {"kid", "alg", "enc"}
    assert (blob["header"]["alg"], blob["header"]["enc"]) == ("dir", "CKM_RSA_AES_KEY_WRAP")
    assert isinstance(blob["generator"], str) and blob["generator"]
    text = blob["ciphertext"]
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), "base64url"
    ciphertext = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return rsa_aes_unwrap(private, "sha1", ciphertext), blob
