"""The cloud providers' key-import wrapping methods, by the providers' own names, and what each
asks of the wrapping key and of the key it carries.

Every method is one of two schemes, both under the provider's RSA public key:

* RSAES-OAEP of the key material itself (AWS RSAES_OAEP_SHA_1 and RSAES_OAEP_SHA_256, Google
  rsa-oaep-3072-sha256 and rsa-oaep-4096-sha256): what a KMIP Get with a Key Wrapping
  Specification has always done. One OAEP block holds at most the modulus length less twice
  the hash length less 2 bytes, which no RSA private key fits, so the providers refuse RSA
  private keys with it (the engine refuses any value too long).
* RSA-AES key wrap, PKCS#11 CKM_RSA_AES_KEY_WRAP (AWS RSA_AES_KEY_WRAP_SHA_*, Google
  rsa-oaep-*-aes-256, Azure's CKM_RSA_AES_KEY_WRAP): OAEP of a fresh AES-256 key, then the
  key material under it by AES Key Wrap with Padding (RFC 5649). The engine names it by the
  OAEP Padding Method with Block Cipher Mode AES Key Wrap Padding (operations/wrapping.py).

In both, OAEP's MGF1 uses the same hash as OAEP itself, and the label is empty: so AWS, Google
and Azure document it. The key material is the raw key bytes for a symmetric (AES, HMAC) key
and PKCS#8 DER (RFC 5208; the RSA key of RFC 8017, the EC key of RFC 5915) for a private key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric import rsa

from kmip_client.protocol.model.attributes import CryptographicParameters
from kmip_client.protocol.spec.enums import BlockCipherMode, HashingAlgorithm, PaddingMethod

PROVIDERS = ("aws", "azure", "gcp")
AWS_SIZES = frozenset({2048, 3072, 4096})  # the wrapping key specs RSA_2048, RSA_3072, RSA_4096
AZURE_SIZES = frozenset({2048, 3072, 4096})  # an RSA-HSM key-exchange key


class MethodError(Exception):
    """A method, wrapping key or key that the provider does not take; the message says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class Method:
    """One provider's wrapping method: ``rsa_aes`` for RSA-AES key wrap, else plain OAEP."""

    provider: str
    name: str  # the provider's spelling
    hashing: HashingAlgorithm
    rsa_aes: bool
    wrapping_sizes: frozenset[int]

    @property
    def parameters(self) -> CryptographicParameters:
        """The Cryptographic Parameters of the KMIP Get that makes this method's blob."""
        return CryptographicParameters(
            padding_method=PaddingMethod.OAEP,
            hashing_algorithm=self.hashing,
            mask_generator_hashing_algorithm=self.hashing,
            block_cipher_mode=BlockCipherMode.AESKEYWRAPPADDING if self.rsa_aes else None,
        )

    @property
    def takes_rsa_private_keys(self) -> bool:
        return self.rsa_aes

    def check_wrapping_key(self, public: object) -> int:
        """The wrapping key's size in bits, if this method takes it."""
        if not isinstance(public, rsa.RSAPublicKey):
            raise MethodError(f"{self.provider} {self.name} wraps under an RSA public key; this is not one")
        if public.key_size not in self.wrapping_sizes:
            sizes = " or ".join(str(size) for size in sorted(self.wrapping_sizes))
            raise MethodError(
                f"{self.provider} {self.name} needs an RSA wrapping key of {sizes} bits, not {public.key_size}"
            )
        return public.key_size


def _gcp(size: int, hashing: HashingAlgorithm, rsa_aes: bool) -> Method:
    digest = "sha1" if hashing == HashingAlgorithm.SHA_1 else "sha256"
    name = f"rsa-oaep-{size}-{digest}" + ("-aes-256" if rsa_aes else "")
    return Method("gcp", name, hashing, rsa_aes, frozenset({size}))


_SHA1, _SHA256 = HashingAlgorithm.SHA_1, HashingAlgorithm.SHA_256
METHODS: tuple[Method, ...] = (
    Method("aws", "RSAES_OAEP_SHA_1", _SHA1, False, AWS_SIZES),
    Method("aws", "RSAES_OAEP_SHA_256", _SHA256, False, AWS_SIZES),
    Method("aws", "RSA_AES_KEY_WRAP_SHA_1", _SHA1, True, AWS_SIZES),
    Method("aws", "RSA_AES_KEY_WRAP_SHA_256", _SHA256, True, AWS_SIZES),
    # Azure documents one mechanism: CKM_RSA_AES_KEY_WRAP with RSA-OAEP-SHA1.
    Method("azure", "CKM_RSA_AES_KEY_WRAP", _SHA1, True, AZURE_SIZES),
    _gcp(3072, _SHA1, True),
    _gcp(4096, _SHA1, True),
    _gcp(3072, _SHA256, True),
    _gcp(4096, _SHA256, True),
    _gcp(3072, _SHA256, False),
    _gcp(4096, _SHA256, False),
)
#: The method ``--algorithm`` defaults to, where a provider has only one.
DEFAULTS = {"azure": "CKM_RSA_AES_KEY_WRAP"}


def _folded(name: str) -> str:
    # "rsa-oaep-3072-sha256" and Google's API enum RSA_OAEP_3072_SHA256 are the same method.
    return name.strip().upper().replace("-", "_")


def names(provider: str) -> Iterable[str]:
    return (m.name for m in METHODS if m.provider == provider)


def method_for(provider: str, name: str | None) -> Method:
    """The ``provider``'s method called ``name`` (case and ``-``/``_`` do not matter)."""
    if provider not in PROVIDERS:
        raise MethodError(f"unknown provider {provider!r}: one of {', '.join(PROVIDERS)}")
    name = name or DEFAULTS.get(provider)
    if name is None:
        raise MethodError(f"--algorithm is needed for {provider}: one of {', '.join(names(provider))}")
    for method in METHODS:
        if method.provider == provider and _folded(method.name) == _folded(name):
            return method
    raise MethodError(f"{provider} has no wrapping method {name!r}: one of {', '.join(names(provider))}")
