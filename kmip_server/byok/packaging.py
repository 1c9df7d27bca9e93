"""The file each provider imports, made from the wrapped key bytes, and the provider-side command
that imports it.

* AWS KMS (``aws kms import-key-material --encrypted-key-material fileb://FILE``) and Google
  Cloud KMS (``gcloud kms keys versions import --wrapped-key-file FILE``) take the wrapped
  bytes as they are.
* Azure Key Vault and Managed HSM (``az keyvault key import --byok-file FILE``) take a Key
  Transfer Blob, a ``.byok`` JSON file (Azure's "Bring your own key specification"):
  ``schema_version`` "1.0.0"; ``header`` with the key-exchange key's ``kid`` (its full key
  identifier, version included), ``alg`` "dir" (the kid protects the ciphertext directly) and
  ``enc`` "CKM_RSA_AES_KEY_WRAP"; ``ciphertext``, the wrapped bytes in base64url without
  padding (JOSE's base64url, RFC 7515 §2); ``generator``, the tool and source that made it.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

from .. import __version__
from .methods import Method, MethodError

GENERATOR = f"Strongroom {__version__} (strongroom byok export); source: Strongroom KMIP server, PKCS#11 custody"


def check_kek_id(kid: str | None) -> str:
    """Azure's key-exchange key identifier, as ``az keyvault key show`` prints it (``kid``):
    https://VAULT.vault.azure.net/keys/NAME/VERSION (or a Managed HSM's managedhsm host)."""
    if not kid:
        raise MethodError("azure needs --kek-id: the key-exchange key's kid, https://VAULT/keys/NAME/VERSION")
    parts = urlsplit(kid)
    path = [part for part in parts.path.split("/") if part]
    if parts.scheme != "https" or not parts.netloc or len(path) != 3 or path[0] != "keys":
        raise MethodError(
            f"--kek-id {kid!r} is not a Key Vault key identifier with its version: https://VAULT/keys/NAME/VERSION"
        )
    return kid


def package(method: Method, wrapped: bytes, kek_id: str | None = None) -> bytes:
    """The bytes of the file ``method``'s provider imports."""
    if method.provider != "azure":
        return wrapped
    blob = {
        "schema_version": "1.0.0",
        "header": {"kid": check_kek_id(kek_id), "alg": "dir", "enc": "CKM_RSA_AES_KEY_WRAP"},
        "ciphertext": base64.urlsafe_b64encode(wrapped).rstrip(b"=").decode("ascii"),
        "generator": GENERATOR,
    }
    return (json.dumps(blob, indent=2) + "\n").encode("utf-8")


def import_command(method: Method, out: str) -> str:
    """The provider-side command that imports ``out`` (placeholders in capitals)."""
    if method.provider == "aws":
        return (
            f"aws kms import-key-material --key-id KEY_ID --encrypted-key-material fileb://{out} "
            "--import-token fileb://ImportToken.bin --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE"
        )
    if method.provider == "azure":
        return f"az keyvault key import --vault-name VAULT --name KEY_NAME --byok-file {out}"
    return (
        "gcloud kms keys versions import --location LOCATION --keyring KEY_RING --key KEY_NAME "
        f"--import-job IMPORT_JOB --algorithm ALGORITHM --wrapped-key-file {out}"
    )
