"""Automatic key rotation (KMIP 2.1 Rotate attributes): the rules in :mod:`.lineage`, the
scheduler each worker runs in :mod:`.scheduler`, the operator's view in :mod:`.status`."""
