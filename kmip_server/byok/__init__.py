"""Bring your own key: keys of this server exported, wrapped, in the import formats of AWS KMS,
Azure Key Vault / Managed HSM and Google Cloud KMS (``strongroom byok export``).

:mod:`.methods` names the providers' wrapping methods and what each takes; :mod:`.export` runs
the export as KMIP requests through the engine (policy, approval, audit); :mod:`.packaging`
makes the file each provider imports; :mod:`.cli` is the command. The wrapping itself, OAEP
and RSA-AES key wrap, is the engine's (kmip_server/operations/wrapping.py).
"""
