"""How ``kmip replay`` compares a server's response with a test case's expected one.

Exact, item by item, in order: tags, types, values, and the number and order of items. The
exceptions are values a conforming server chooses itself, which are compared by presence and
type only (docs/conformance.md gives the reasons):

* ``$NOW±s`` in an expected response: any date-time (the server's clock, not the vector's);
* the Time Stamp of a response header; its Server Correlation Value, optional and the
  server's own, may be present or not on either side;
* a Result Message (free text: the reason is in Result Reason, which is compared exactly);
* key material the server generated (Key Material, or the Key of a transparent key, that no
  request of the file supplied), and a Digest Value that is not the digest of supplied bytes;
* the value of a Random Number Generator attribute (the server's own generator), unless a
  request of the file supplied that value;
* the Data of an RNG Retrieve response, "the random number generator output" (KMIP 1.4
  §4.35, 2.1 §6.1.49): its length exactly (the Data Length asked for), its bytes not;
* in a Query response, the lists the server reports about itself (Operation, Object Type,
  Vendor Identification, Server Information, Application Namespace, ...): every kind of item
  the vector shows must be there, with the vector's type, in any number;
* in a Get Attribute List response, the order of the attributes listed (the Attribute Names
  of 1.x, the Attribute References of 2.x): the same items, each as many times, in any order.
* what is random by definition, compared by length: RNG Retrieve output; in an Encrypt
  response the IV the server chose (none given, one returned) and the ciphertext and tag that
  follow from it; the output of Encrypt or Decrypt under a key the server generated (Create);
  RSA ciphertext (randomised padding); PSS signatures (random salt);
* in a PKCS#11 C_GetInfo answer, the bytes of CK_INFO that name the server's own library.

Placeholders other than ``$NOW`` are bound from the first response that has them (see
:mod:`.replay`).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import re
from typing import Any

from .protocol.placeholders import Placeholder
from .protocol.spec import Tag, tag_name
from .protocol.spec.enums import ObjectType, Operation, PaddingMethod, PKCS11Function
from .protocol.textual import meaning_tag, value_to_text
from .protocol.ttlv import Item, ItemType

__all__ = ["Comparison", "Difference", "describe"]

_STRUCTURE = ItemType.STRUCTURE
_DATES = (ItemType.DATE_TIME, ItemType.DATE_TIME_EXTENDED)

#: Leaves a server chooses, wherever they appear.
_ANY_PLACE = frozenset({int(Tag.RESULT_MESSAGE)})
#: Children of a Response Header the server chooses.
_HEADER_CHOSEN = frozenset({int(Tag.TIME_STAMP)})
_SERVER_CORRELATION_VALUE = int(Tag.SERVER_CORRELATION_VALUE)
#: Key bytes: exact when the client supplied them, else the server generated them.
_KEY_BYTES = frozenset({int(Tag.KEY_MATERIAL), int(Tag.KEY)})
#: What a Query response reports about the server: present, typed, any number, any order.
_QUERY_LISTS = frozenset(
    int(t)
    for t in (
        Tag.OPERATION,
        Tag.OBJECT_TYPE,
        Tag.VENDOR_IDENTIFICATION,
        Tag.SERVER_INFORMATION,
        Tag.APPLICATION_NAMESPACE,
        Tag.EXTENSION_INFORMATION,
        Tag.ATTESTATION_TYPE,
        Tag.RNG_PARAMETERS,
        Tag.PROFILE_INFORMATION,
        Tag.VALIDATION_INFORMATION,
        Tag.CAPABILITY_INFORMATION,
        Tag.CLIENT_REGISTRATION_METHOD,
        Tag.DEFAULTS_INFORMATION,
        Tag.PROTECTION_STORAGE_MASKS,
    )
)
_RANDOM_NUMBER_GENERATOR = int(Tag.RANDOM_NUMBER_GENERATOR)
_ATTRIBUTE_VALUE = int(Tag.ATTRIBUTE_VALUE)
_ATTRIBUTE_NAME = int(Tag.ATTRIBUTE_NAME)
_RESPONSE_HEADER = int(Tag.RESPONSE_HEADER)
_BATCH_ITEM = int(Tag.BATCH_ITEM)
_OPERATION = int(Tag.OPERATION)
_RESPONSE_PAYLOAD = int(Tag.RESPONSE_PAYLOAD)
_DIGEST_VALUE = int(Tag.DIGEST_VALUE)
_UNIQUE_IDENTIFIER = "UNIQUE_IDENTIFIER_"
_QUERY = int(Operation.QUERY)
_GET_ATTRIBUTE_LIST = int(Operation.GET_ATTRIBUTE_LIST)
_RNG_RETRIEVE = int(Operation.RNG_RETRIEVE)
_ENCRYPT = int(Operation.ENCRYPT)
_DECRYPT = int(Operation.DECRYPT)
_CREATE = int(Operation.CREATE)
_REGISTER = int(Operation.REGISTER)
_IV_COUNTER_NONCE = int(Tag.IV_COUNTER_NONCE)
_OBJECT_TYPE = int(Tag.OBJECT_TYPE)
_REQUEST_PAYLOAD = int(Tag.REQUEST_PAYLOAD)
_UNIQUE_IDENTIFIER_TAG = int(Tag.UNIQUE_IDENTIFIER)
_PUBLIC_KEY = int(ObjectType.PUBLIC_KEY)
_SIGN = int(Operation.SIGN)
_PADDING_METHOD = int(Tag.PADDING_METHOD)
_PSS = int(PaddingMethod.PSS)
_SIGNATURE_ONLY = frozenset({int(Tag.SIGNATURE_DATA)})
_PKCS_11 = int(Operation.PKCS_11)
_PKCS_11_FUNCTION = int(Tag.PKCS_11_FUNCTION)
_PKCS_11_OUTPUT = int(Tag.PKCS_11_OUTPUT_PARAMETERS)
_C_GET_INFO = int(PKCS11Function.C_GETINFO)
#: C_GetInfo's CK_INFO as KMIP carries it (PKCS11-M-1): cryptokiVersion (2 bytes),
#: manufacturerID (32), flags (8), libraryDescription (32), libraryVersion (2). The parts that
#: name the library are its own; the version of the interface and the flags are compared.
_CK_INFO_LENGTH = 76
_CK_INFO_COMPARED = (slice(0, 2), slice(34, 42))
#: What an Encrypt response holds that follows from an IV the server chose (Random IV, no IV
#: in the request): the IV itself, the ciphertext and the authentication tag.
_FROM_SERVER_IV = frozenset({_IV_COUNTER_NONCE, int(Tag.DATA), int(Tag.AUTHENTICATED_ENCRYPTION_TAG)})
_DATA_ONLY = frozenset({int(Tag.DATA)})
_NUMBERED = re.compile(r"_\d+$")  # $DATA_0: the Data of a response
_DATA = int(Tag.DATA)
#: What a Get Attribute List response lists: names (1.x) or references (2.x), in no set order.
_LISTED = frozenset({int(Tag.ATTRIBUTE_NAME), int(Tag.ATTRIBUTE_REFERENCE)})
_DIGESTS = ("sha1", "sha224", "sha256", "sha384", "sha512", "md5")


@dataclasses.dataclass(frozen=True)
class Difference:
    """The first place a response differs from the expected one."""

    step: int
    path: str
    expected: str
    got: str

    def __str__(self) -> str:
        where = f"step {self.step}" + (f", {self.path}" if self.path else "")
        return f"{where}: expected {self.expected}, got {self.got}"


class _Mismatch(Exception):
    def __init__(self, path: str, expected: str, got: str) -> None:
        super().__init__(path)
        self.path, self.expected, self.got = path, expected, got


def describe(item: Item, siblings: tuple[Item, ...] = ()) -> str:
    """A short readable form: ``Enumeration Success``, ``Structure KeyBlock (4 items)``."""
    typ = ItemType(item.type)
    if typ == _STRUCTURE:
        return f"{tag_name(item.tag)} ({len(item.value)} items)"
    try:
        text = value_to_text(meaning_tag(item.tag, siblings), typ, item.value)
    except Exception:  # noqa: BLE001 - a value the text form cannot show is still worth showing
        text = repr(item.value)
    if len(text) > 80:
        text = text[:77] + "..."
    return (
        f"{typ.name.title().replace('_', '')} {text!r}"
        if typ == ItemType.TEXT_STRING
        else f"{typ.name.title().replace('_', '')} {text}"
    )


class Comparison:
    """The state of one file's run: placeholder bindings and what requests supplied."""

    def __init__(self, now: int) -> None:
        self.now = now
        self.bindings: dict[str, Any] = {}
        self._supplied: set[bytes] = set()
        self._supplied_structures: set[Any] = set()
        self._current_operation: Any = None  # the Operation of the batch item being compared
        self._request_items: list[Item] = []  # the batch items of the last request
        self._batch_index = -1
        # Of the batch item being compared: the leaves compared by length (see _by_length).
        self._length_only: frozenset[int] = frozenset()
        self._library_info = False  # the batch item is a PKCS#11 C_GetInfo response
        self._generated_keys: set[Any] = set()  # made by the server (Create): random material
        self._public_keys: set[Any] = set()  # registered Public Keys: RSA encryption is randomised
        self._pss_keys: set[Any] = set()  # registered with PSS padding: the signatures are randomised
        self._latest: dict[int, Any] = {}  # the last value a response gave for each tag

    # ---- requests

    def concrete_request(self, request: Item) -> Item:
        """``request`` with its placeholders replaced; raises KeyError naming an unbound one."""
        concrete = self._concrete(request)
        self._request_items = [item for item in concrete.value if item.tag == _BATCH_ITEM]
        return concrete

    def _concrete(self, item: Item) -> Item:
        if item.type == _STRUCTURE:
            if item.tag in (_RANDOM_NUMBER_GENERATOR, _ATTRIBUTE_VALUE):
                self._supplied_structures.add(_shape(item))
            children = tuple(self._concrete(child) for child in item.value)
            return item if children == item.value else Item(item.tag, item.type, children)
        value = item.value
        if isinstance(value, bytes) and len(value) >= 8:
            self._supplied.add(value)
        if not isinstance(value, Placeholder):
            return item
        if value.name == "NOW" and item.type in _DATES:
            seconds = self.now + value.offset
            return Item(
                item.tag, item.type, seconds * 1_000_000 if item.type == ItemType.DATE_TIME_EXTENDED else seconds
            )
        if value.name not in self.bindings:
            self._bind_from_latest(value.name)
        bound = self.bindings[value.name]
        if value.offset and isinstance(bound, int):
            bound += value.offset
        return Item(item.tag, item.type, bound)

    def _bind_from_latest(self, name: str) -> None:
        """A placeholder no expected response showed, named after a tag (``$MAC_DATA``,
        ``$DATA_0``, ``$IV_COUNTER_NONCE``): the value of that tag in the latest response.
        The CS-AC-M-6 and CS-BC-M-13 files send back so the MAC and the ciphertext and IV an
        earlier response gave. KeyError when there is none."""
        tag = getattr(Tag, _NUMBERED.sub("", name), None)
        if tag is None or int(tag) not in self._latest:
            raise KeyError(f"${name} is used by a request before any response gave it a value")
        self.bindings[name] = self._latest[int(tag)]

    def bound_identifiers(self) -> list[str]:
        """The Unique Identifiers the run bound, in binding order (what the file created)."""
        return [v for k, v in self.bindings.items() if k.startswith(_UNIQUE_IDENTIFIER) and isinstance(v, str)]

    # ---- responses

    def compare(self, step: int, expected: Item, actual: Item) -> Difference | None:
        self._batch_index = -1
        try:
            self._item(expected, actual, tag_name(expected.tag), (), (), context=())
        except _Mismatch as mismatch:
            return Difference(step, mismatch.path, mismatch.expected, mismatch.got)
        return None

    def _item(
        self,
        exp: Item,
        act: Item,
        path: str,
        exp_siblings: tuple[Item, ...],
        act_siblings: tuple[Item, ...],
        context: tuple[int, ...],
    ) -> None:
        if exp.tag != act.tag:
            raise _Mismatch(path, tag_name(exp.tag), tag_name(act.tag))
        if exp.type != act.type:
            raise _Mismatch(path, ItemType(exp.type).name, ItemType(act.type).name)
        if exp.type == _STRUCTURE:
            if self._chosen(exp, context):
                return
            if _is_generator(exp, exp_siblings) and _shape(exp) not in self._supplied_structures:
                return  # describes the server's own random number generator
            self._children(exp, act, path, context + (exp.tag,))
            return
        value = exp.value
        if isinstance(value, Placeholder):
            self._placeholder(value, exp, act, path)
            return
        if self._chosen(exp, context):
            return
        if isinstance(act.value, bytes):
            self._latest[exp.tag] = act.value
        if exp.tag == _PKCS_11_OUTPUT and self._current_operation == _PKCS_11 and self._library_info:
            _compare_library_info(value, act.value, path)
            return
        if exp.tag in self._length_only and isinstance(value, bytes) and isinstance(act.value, bytes):
            if len(act.value) != len(value):
                raise _Mismatch(path, f"{len(value)} bytes (chosen at random by the server)", f"{len(act.value)} bytes")
            return  # chosen by the server, or following from what it chose
        if exp.tag in _KEY_BYTES and isinstance(value, bytes) and value not in self._supplied:
            return  # generated by the server: present, and a byte string, is all that can be asked
        if exp.tag == _DIGEST_VALUE and isinstance(value, bytes) and not self._digest_of_supplied(value):
            return  # the digest of generated key material
        if exp.tag == _DATA and self._current_operation == _RNG_RETRIEVE and isinstance(act.value, bytes):
            if len(act.value) != len(value):
                raise _Mismatch(path, f"{len(value)} random bytes", f"{len(act.value)} bytes")
            return  # the server's generator's output: random by definition
        if value != act.value:
            raise _Mismatch(path, describe(exp, exp_siblings), describe(act, act_siblings))

    def _chosen(self, exp: Item, context: tuple[int, ...]) -> bool:
        if exp.tag in _ANY_PLACE:
            return True
        return bool(context) and context[-1] == _RESPONSE_HEADER and exp.tag in _HEADER_CHOSEN

    def _placeholder(self, value: Placeholder, exp: Item, act: Item, path: str) -> None:
        if value.name == "NOW":
            if exp.type not in _DATES:
                raise _Mismatch(path, f"$NOW as a {ItemType(exp.type).name}", describe(act))
            return
        concrete = act.value
        if value.offset and isinstance(concrete, int):
            concrete -= value.offset
        bound = self.bindings.setdefault(value.name, concrete)
        if bound != concrete:
            raise _Mismatch(path, f"{value} (bound to {bound!r})", describe(act))

    def _children(self, exp: Item, act: Item, path: str, context: tuple[int, ...]) -> None:
        expected, actual = exp.value, act.value
        if exp.tag == _RESPONSE_HEADER:
            # Optional and the server's own: the 2.1 BL-M files show one in every response and
            # the other 2.1 files never do, for requests alike (docs/conformance.md).
            expected = tuple(c for c in expected if c.tag != _SERVER_CORRELATION_VALUE)
            actual = tuple(c for c in actual if c.tag != _SERVER_CORRELATION_VALUE)
        if exp.tag == _RESPONSE_PAYLOAD and self._current_operation == _QUERY:
            expected, actual = self._query_lists(expected, actual, path)
        if exp.tag == _RESPONSE_PAYLOAD and self._current_operation == _GET_ATTRIBUTE_LIST:
            actual = _in_expected_order(expected, actual, path)
        if exp.tag == _BATCH_ITEM:
            self._current_operation = next((c.value for c in expected if c.tag == _OPERATION), None)
            self._batch_index += 1
            request = self._request_items[self._batch_index] if self._batch_index < len(self._request_items) else None
            self._length_only = self._by_length(request, act)
            self._library_info = _payload_value(exp, _PKCS_11_FUNCTION) == _C_GET_INFO
        for index in range(max(len(expected), len(actual))):
            if index >= len(expected):
                extra = actual[index]
                raise _Mismatch(f"{path}/{tag_name(extra.tag)}", "nothing more", describe(extra, actual))
            if index >= len(actual):
                missing = expected[index]
                raise _Mismatch(f"{path}/{tag_name(missing.tag)}", describe(missing, expected), "nothing")
            child = expected[index]
            same = sum(1 for c in expected[:index] if c.tag == child.tag)
            child_path = f"{path}/{tag_name(child.tag)}" + (f"[{same}]" if same else "")
            self._item(child, actual[index], child_path, expected, actual, context)

    def _by_length(self, request: Item | None, response: Item) -> frozenset[int]:
        """The leaves of this batch item's response that are random by definition, so compared
        by length: what follows from an IV the server chose (an Encrypt that gave no IV and
        got one back: Random IV), the Data of an Encrypt or Decrypt under a key the server
        generated (the vectors show the output under the generating server's key), and RSA
        ciphertext (OAEP and PKCS#1 v1.5 padding are randomised), and RSA-PSS signatures (the
        salt is random). Records which keys the server generated, which are public keys and
        which sign with PSS on the way."""
        operation = self._current_operation
        uid = _payload_value(response, _UNIQUE_IDENTIFIER_TAG)
        if request is None:
            return frozenset()
        if operation == _CREATE:
            self._generated_keys.add(uid)
        elif operation == _REGISTER and _payload_value(request, _OBJECT_TYPE) == _PUBLIC_KEY:
            self._public_keys.add(uid)
        if operation == _REGISTER and _has_value(request, _PADDING_METHOD, _PSS):
            self._pss_keys.add(uid)
        if operation == _SIGN and (uid in self._pss_keys or _has_value(request, _PADDING_METHOD, _PSS)):
            return _SIGNATURE_ONLY
        if operation not in (_ENCRYPT, _DECRYPT):
            return frozenset()
        chosen: set[int] = set()
        if (
            operation == _ENCRYPT
            and not _has_tag(request, _IV_COUNTER_NONCE)
            and _payload_value(response, _IV_COUNTER_NONCE) is not None
        ):
            chosen |= _FROM_SERVER_IV
        if uid in self._generated_keys or (operation == _ENCRYPT and uid in self._public_keys):
            chosen |= _DATA_ONLY
        return frozenset(chosen)

    def _query_lists(
        self, expected: tuple[Item, ...], actual: tuple[Item, ...], path: str
    ) -> tuple[tuple[Item, ...], tuple[Item, ...]]:
        """Check the Query lists by presence and type; return what is left to compare exactly."""
        for kind in dict.fromkeys(c.tag for c in expected if c.tag in _QUERY_LISTS):
            wanted = next(c for c in expected if c.tag == kind)
            if not any(c.tag == kind and c.type == wanted.type for c in actual):
                raise _Mismatch(f"{path}/{tag_name(kind)}", f"at least one {tag_name(kind)}", "none")
        reported = {c.tag for c in expected}
        for c in actual:
            if c.tag in _QUERY_LISTS and c.tag not in reported:
                raise _Mismatch(f"{path}/{tag_name(c.tag)}", "nothing of this kind (not asked for)", describe(c))
        return (
            tuple(c for c in expected if c.tag not in _QUERY_LISTS),
            tuple(c for c in actual if c.tag not in _QUERY_LISTS),
        )

    def _digest_of_supplied(self, digest: bytes) -> bool:
        for supplied in self._supplied:
            for name in _DIGESTS:
                if hashlib.new(name, supplied).digest() == digest:
                    return True
        return False


def _in_expected_order(expected: tuple[Item, ...], actual: tuple[Item, ...], path: str) -> tuple[Item, ...]:
    """A Get Attribute List payload's names or references, ``actual`` ones put in the order of
    ``expected``, if the two hold the same items as many times each (KMIP sets no order for the
    list); else the first item one has more often than the other is the difference. Every other
    item keeps its place, to be compared exactly."""
    wanted = [c for c in expected if c.tag in _LISTED]
    given = [c for c in actual if c.tag in _LISTED]
    pending: dict[Any, collections.deque[Item]] = collections.defaultdict(collections.deque)
    for item in given:
        pending[_shape(item)].append(item)
    counts = collections.Counter(_shape(c) for c in wanted)
    for item in wanted:
        have, want = len(pending[_shape(item)]), counts[_shape(item)]
        if have < want:
            where = f"{path}/{tag_name(item.tag)}"
            what = describe(item, expected)
            if have == 0:
                raise _Mismatch(where, f"{what} (in any order)", "nothing")
            raise _Mismatch(where, f"{what} ({_times(want)}, in any order)", _times(have))
    for item in given:
        have, want = len(pending[_shape(item)]), counts[_shape(item)]
        if have > want:
            where = f"{path}/{tag_name(item.tag)}"
            what = describe(item, actual)
            if want == 0:
                raise _Mismatch(where, "nothing more", what)
            raise _Mismatch(where, f"{what} ({_times(want)}, in any order)", _times(have))
    ordered = iter([pending[_shape(c)].popleft() for c in wanted])
    return tuple(next(ordered) if c.tag in _LISTED else c for c in actual)


def _times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def _payload_value(batch_item: Item, tag: int) -> Any:
    """The value of child ``tag`` of a batch item's payload (None without one)."""
    for child in batch_item.value:
        if child.tag in (_REQUEST_PAYLOAD, _RESPONSE_PAYLOAD):
            return next((c.value for c in child.value if c.tag == tag), None)
    return None


def _compare_library_info(expected: Any, actual: Any, path: str) -> None:
    """A C_GetInfo CK_INFO: its length, Cryptoki version and flags exact; the manufacturer,
    description and version of the library are the server's own (what it reports about
    itself, like Query's Vendor Identification): PKCS11-M-1 shows its reference library's."""
    if not isinstance(expected, bytes) or not isinstance(actual, bytes) or len(expected) != _CK_INFO_LENGTH:
        raise _Mismatch(path, f"a CK_INFO of {_CK_INFO_LENGTH} bytes", repr(actual)[:80])
    if len(actual) != len(expected):
        raise _Mismatch(path, f"a CK_INFO of {len(expected)} bytes", f"{len(actual)} bytes")
    for part in _CK_INFO_COMPARED:
        if expected[part] != actual[part]:
            raise _Mismatch(path, f"bytes {part.start}-{part.stop} {expected[part].hex()}", actual[part].hex())


def _has_tag(item: Item, tag: int) -> bool:
    if item.tag == tag:
        return True
    return item.type == _STRUCTURE and any(_has_tag(child, tag) for child in item.value)


def _has_value(item: Item, tag: int, value: Any) -> bool:
    if item.type == _STRUCTURE:
        return any(_has_value(child, tag, value) for child in item.value)
    return item.tag == tag and item.value == value


def _is_generator(item: Item, siblings: tuple[Item, ...]) -> bool:
    """A Random Number Generator value: the 2.x structure, or a 1.x Attribute Value so named."""
    if item.tag == _RANDOM_NUMBER_GENERATOR:
        return True
    return item.tag == _ATTRIBUTE_VALUE and any(
        s.tag == _ATTRIBUTE_NAME and s.value == "Random Number Generator" for s in siblings
    )


def _shape(item: Item) -> Any:
    """A hashable copy of an item tree (placeholders and all), to recognise supplied values."""
    if item.type == _STRUCTURE:
        return (item.tag, tuple(_shape(c) for c in item.value))
    return (item.tag, item.type, str(item.value) if isinstance(item.value, Placeholder) else item.value)
