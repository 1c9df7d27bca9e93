"""The engine in process — the attributes the server sets, what each KMIP version sees of them
and in what order: real SoftHSM2 custody, real stores, the dispatcher fed encoded bytes.
"""

from __future__ import annotations

from kmip_server.custody import RandomGenerator


def test_the_token_generator_is_described():
    """SoftHSM2 on OpenSSL draws from OpenSSL's default generator, a CTR-DRBG on AES-256."""
    from kmip_server.custody.pkcs11 import _token_generator
    from kmip_server.custody.softhsm import find_softhsm_module

    module = find_softhsm_module()
    assert module is not None
    assert _token_generator(module) == RandomGenerator(kind="drbg", drbg="ctr", cipher="aes", bits=256)
    assert _token_generator(module.with_name("libCryptoki2_64.so")).kind == "unspecified"
