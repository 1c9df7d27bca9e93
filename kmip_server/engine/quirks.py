"""The requests of real KMIP clients that a strict reading of the specification refuses, and
what Strongroom does with each: one table, mirrored in docs/compatibility.md (a test keeps the
two equal) and each entry replayed by the test it names.

Strongroom is strict in what it sends and in everything that keeps data safe: lengths, types,
padding and authentication are never relaxed here. A quirk is tolerated only when a named
client needs it and doing so cannot change what an identity may see or do.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

__all__ = ["QUIRKS", "Quirk", "TOLERATED_FIELDS", "IGNORED_CREATE_ATTRIBUTES", "tolerated", "warn_once"]

log = logging.getLogger("strongroom.compatibility")


@dataclass(frozen=True)
class Quirk:
    """One tolerated client behaviour."""

    key: str
    clients: str  # who sends it
    request: str  # what they send that the specification does not allow
    server: str  # what Strongroom does with it
    test: str  # the test that replays the client's request: tests/<path>::<function>


QUIRKS: tuple[Quirk, ...] = (
    Quirk(
        key="locate-offset-items-before-1.3",
        clients="libkmip (Percona Server for MySQL and MongoDB, pg_tde) and its kmippp C++ wrapper",
        request="a KMIP 1.0 Locate carrying Offset Items (a KMIP 1.3 field) to page through results",
        server="pages as a 1.3 server would; the response stays 1.0 (no Located Items)",
        test="tests/interop/test_client_quirks.py::test_libkmip_pages_a_1_0_locate_with_offset_items",
    ),
    Quirk(
        key="create-storage-status-mask",
        clients="MySQL Enterprise keyring_okv",
        request='a Create whose Template-Attribute carries "Storage Status Mask" (a Locate field, not an attribute)',
        server="ignores it (the object is created as without it), one WARNING per client identity",
        test="tests/interop/test_client_quirks.py::test_keyring_okv_create_with_storage_status_mask",
    ),
    Quirk(
        key="header-credential",
        clients="VMware vCenter, NetApp ONTAP, PyKMIP (with a username and password configured)",
        request="a Username and Password Credential in the request header's Authentication",
        server="accepts the message; the identity is still the client certificate's (the credential is not checked)",
        test="tests/interop/test_client_quirks.py::test_header_credential_is_accepted",
    ),
    Quirk(
        key="locate-hides-destroyed-1.x",
        clients="PyKMIP's own test suite, Percona's keyring clients",
        request="a KMIP 1.x Locate, which per the 1.x text would also find destroyed objects",
        server="hides Destroyed and Destroyed Compromised objects unless the Locate filters on State (as 2.x does)",
        test="tests/interop/test_client_quirks.py::test_pykmip_locate_does_not_find_destroyed_keys",
    ),
    Quirk(
        key="attribute-index-in-1.x-responses",
        clients="PyKMIP's client (it reads the returned Attribute's index)",
        request="a KMIP 1.x Modify or Delete Attribute naming an Attribute Index, 0 included",
        server="the response's Attribute carries the index named (or the one used, when not 0)",
        test="tests/interop/test_client_quirks.py::test_pykmip_modify_and_delete_attribute_get_the_index_back",
    ),
    Quirk(
        key="wrapped-key-value-as-structure",
        clients="PyKMIP's client (register of a key with key_wrapping_data)",
        request="a Register whose wrapped Key Value is a Key Value structure holding the wrapped bytes as Key Material",
        server="unwraps those bytes as the Key Wrapping Data says (a wrapped Key Value is otherwise a Byte String)",
        test="tests/interop/test_client_quirks.py::test_pykmip_registers_a_wrapped_key_in_its_own_form",
    ),
    Quirk(
        key="rekey-template-attribute-2.0",
        clients="PyKMIP's client (ProxyKmipClient.rekey)",
        request="a KMIP 2.0 Re-key carrying a 1.x Template-Attribute (empty, or the dates it was given)",
        server="reads its attributes as the 2.x Attributes would be read",
        test="tests/interop/test_client_quirks.py::test_pykmip_rekey_in_2_0_sends_a_template_attribute",
    ),
)

#: Payload fields (``Class.field``, as :func:`version_conflicts` names them) accepted in KMIP
#: versions that do not define them, and the quirk that allows each.
TOLERATED_FIELDS: dict[str, str] = {
    "LocateRequest.offset_items": "locate-offset-items-before-1.3",
    "ReKeyRequest.template_attribute": "rekey-template-attribute-2.0",
}


def tolerated(path: str) -> bool:
    """Whether a field a client's version does not define is accepted: a tolerated field, or
    a field inside one (a tolerated Template-Attribute's Attributes)."""
    return any(path == field or path.startswith(field + ".") for field in TOLERATED_FIELDS)


#: Names that are not attributes but that clients put in a Create's attributes; ignored.
IGNORED_CREATE_ATTRIBUTES: dict[str, str] = {"Storage Status Mask": "create-storage-status-mask"}

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def warn_once(key: str, identity: str, message: str) -> None:
    """A WARNING the first time ``identity`` shows quirk ``key`` in this process; later ones
    are silent (a busy client would otherwise write one per request)."""
    with _warned_lock:
        if (key, identity) in _warned:
            return
        if len(_warned) < 10_000:  # bounded: identities are certificates, but a CA may issue many
            _warned.add((key, identity))
    log.warning("client %r: %s (tolerated quirk %s, see docs/compatibility.md)", identity, message, key)
