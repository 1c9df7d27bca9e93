"""The comparison rules of ``kmip replay``: each rule, and that everything else is exact."""

from __future__ import annotations

import hashlib

import pytest

from kmip_client.protocol.placeholders import Placeholder
from kmip_client.protocol.spec import Tag
from kmip_client.protocol.ttlv import Item, ItemType
from kmip_client.replay import load_steps, replay_steps
from kmip_client.replay_compare import Comparison

S, E, INT, T, B, D = (
    ItemType.STRUCTURE,
    ItemType.ENUMERATION,
    ItemType.INTEGER,
    ItemType.TEXT_STRING,
    ItemType.BYTE_STRING,
    ItemType.DATE_TIME,
)
NOW = 1_800_000_000


def st(tag: Tag, *children: Item) -> Item:
    return Item(int(tag), S, tuple(children))


def leaf(tag: Tag, typ: ItemType, value: object) -> Item:
    return Item(int(tag), typ, value)


def response(*payload: Item, operation: int = 0x0A, header_extra: tuple[Item, ...] = ()) -> Item:
    """A one-item Response Message (Get by default) with ``payload``."""
    version = st(
        Tag.PROTOCOL_VERSION, leaf(Tag.PROTOCOL_VERSION_MAJOR, INT, 1), leaf(Tag.PROTOCOL_VERSION_MINOR, INT, 4)
    )
    header = st(
        Tag.RESPONSE_HEADER,
        version,
        leaf(Tag.TIME_STAMP, D, NOW),
        *header_extra,
        leaf(Tag.BATCH_COUNT, INT, 1),
    )
    item = st(
        Tag.BATCH_ITEM,
        leaf(Tag.OPERATION, E, operation),
        leaf(Tag.RESULT_STATUS, E, 0),
        st(Tag.RESPONSE_PAYLOAD, *payload),
    )
    return st(Tag.RESPONSE_MESSAGE, header, item)


def key(material: bytes) -> Item:
    block = st(
        Tag.KEY_BLOCK,
        leaf(Tag.KEY_FORMAT_TYPE, E, 1),
        st(Tag.KEY_VALUE, leaf(Tag.KEY_MATERIAL, B, material)),
    )
    return st(Tag.SYMMETRIC_KEY, block)


def uid(value: object) -> Item:
    return leaf(Tag.UNIQUE_IDENTIFIER, T, value)


def test_identical_responses_match_and_any_value_change_is_reported_with_its_path() -> None:
    expected = response(uid("k1"), leaf(Tag.OBJECT_TYPE, E, 2))
    assert Comparison(NOW).compare(1, expected, expected) is None
    changed = response(uid("k1"), leaf(Tag.OBJECT_TYPE, E, 7))
    difference = Comparison(NOW).compare(3, expected, changed)
    assert difference is not None
    assert str(difference) == (
        "step 3, ResponseMessage/BatchItem/ResponsePayload/ObjectType: "
        "expected Enumeration SymmetricKey, got Enumeration SecretData"
    )


def test_counts_and_order_are_exact() -> None:
    expected = response(uid("a"), uid("b"))
    assert "nothing more" in str(Comparison(NOW).compare(1, expected, response(uid("a"), uid("b"), uid("c"))))
    assert "got nothing" in str(Comparison(NOW).compare(1, expected, response(uid("a"))))
    assert "expected TextString 'a'" in str(Comparison(NOW).compare(1, expected, response(uid("b"), uid("a"))))


def test_types_are_exact() -> None:
    expected = response(leaf(Tag.CRYPTOGRAPHIC_LENGTH, INT, 256))
    actual = response(leaf(Tag.CRYPTOGRAPHIC_LENGTH, ItemType.LONG_INTEGER, 256))
    assert "expected INTEGER, got LONG_INTEGER" in str(Comparison(NOW).compare(1, expected, actual))


def test_a_placeholder_binds_on_first_sight_then_must_repeat_and_feeds_requests() -> None:
    comparison = Comparison(NOW)
    expected = response(uid(Placeholder("UNIQUE_IDENTIFIER_0")))
    assert comparison.compare(1, expected, response(uid("server-chose-this"))) is None
    assert comparison.compare(2, expected, response(uid("server-chose-this"))) is None
    difference = comparison.compare(3, expected, response(uid("another")))
    assert difference is not None and "bound to 'server-chose-this'" in difference.expected
    request = st(Tag.REQUEST_MESSAGE, uid(Placeholder("UNIQUE_IDENTIFIER_0")))
    assert comparison.concrete_request(request).value[0].value == "server-chose-this"
    assert comparison.bound_identifiers() == ["server-chose-this"]


def test_an_unbound_placeholder_in_a_request_is_an_error_not_a_guess() -> None:
    with pytest.raises(KeyError, match="UNIQUE_IDENTIFIER_3"):
        Comparison(NOW).concrete_request(st(Tag.REQUEST_MESSAGE, uid(Placeholder("UNIQUE_IDENTIFIER_3"))))


def test_now_in_a_request_is_the_run_time_and_in_a_response_any_date() -> None:
    comparison = Comparison(NOW)
    request = st(Tag.REQUEST_MESSAGE, leaf(Tag.ACTIVATION_DATE, D, Placeholder("NOW", -3600)))
    assert comparison.concrete_request(request).value[0].value == NOW - 3600
    expected = response(leaf(Tag.INITIAL_DATE, D, Placeholder("NOW")))
    assert comparison.compare(1, expected, response(leaf(Tag.INITIAL_DATE, D, 12345))) is None
    wrong_type = response(leaf(Tag.INITIAL_DATE, ItemType.LONG_INTEGER, 12345))
    assert comparison.compare(1, expected, wrong_type) is not None
    # A concrete date (one the client set, say) is compared exactly.
    exact = response(leaf(Tag.ACTIVATION_DATE, D, NOW - 3600))
    assert comparison.compare(1, exact, response(leaf(Tag.ACTIVATION_DATE, D, NOW - 3599))) is not None


def test_generated_key_material_is_compared_by_presence_supplied_material_exactly() -> None:
    comparison = Comparison(NOW)
    vector_key = bytes(range(32))
    assert comparison.compare(1, response(key(vector_key)), response(key(b"\x01" * 32))) is None
    assert comparison.compare(1, response(key(vector_key)), response(key(b""))) is None  # still a byte string
    # Once a request has carried those bytes (a Register), the server must give them back.
    comparison.concrete_request(st(Tag.REQUEST_MESSAGE, key(vector_key)))
    assert comparison.compare(2, response(key(vector_key)), response(key(b"\x01" * 32))) is not None
    assert comparison.compare(2, response(key(vector_key)), response(key(vector_key))) is None


def test_a_digest_of_supplied_bytes_is_exact_of_generated_bytes_by_presence() -> None:
    comparison = Comparison(NOW)
    supplied = b"registered key bytes"
    digest = st(Tag.DIGEST, leaf(Tag.DIGEST_VALUE, B, hashlib.sha256(supplied).digest()))
    other = st(Tag.DIGEST, leaf(Tag.DIGEST_VALUE, B, b"\x00" * 32))
    assert comparison.compare(1, response(digest), response(other)) is None
    comparison.concrete_request(st(Tag.REQUEST_MESSAGE, leaf(Tag.KEY_MATERIAL, B, supplied)))
    assert comparison.compare(2, response(digest), response(other)) is not None


def test_rng_retrieve_output_is_compared_by_length() -> None:
    """RNG Retrieve's Data is random by definition: the length asked for, any bytes; Data of
    another operation (Hash) stays exact."""
    rng_retrieve, hash_operation = 0x25, 0x27
    vector = response(leaf(Tag.DATA, B, bytes(range(32))), operation=rng_retrieve)
    assert Comparison(NOW).compare(1, vector, response(leaf(Tag.DATA, B, b"\x07" * 32), operation=rng_retrieve)) is None
    assert Comparison(NOW).compare(1, vector, response(leaf(Tag.DATA, B, b"\x07" * 31), operation=rng_retrieve))
    digest = response(leaf(Tag.DATA, B, bytes(range(32))), operation=hash_operation)
    assert Comparison(NOW).compare(1, digest, response(leaf(Tag.DATA, B, b"\x07" * 32), operation=hash_operation))


def test_server_chosen_header_and_message_fields() -> None:
    expected = response(uid("k"))
    later = response(uid("k"))
    assert Comparison(NOW).compare(1, expected, later) is None  # time stamps differ freely
    correlated = response(uid("k"), header_extra=(leaf(Tag.SERVER_CORRELATION_VALUE, T, "abc"),))
    assert Comparison(NOW).compare(1, expected, correlated) is None
    assert Comparison(NOW).compare(1, correlated, expected) is None
    message = response(leaf(Tag.RESULT_MESSAGE, T, "the vector's words"))
    assert Comparison(NOW).compare(1, message, response(leaf(Tag.RESULT_MESSAGE, T, "ours"))) is None


def test_query_lists_need_each_kind_shown_in_any_number_and_nothing_unasked() -> None:
    query = 0x18
    expected = response(
        leaf(Tag.OPERATION, E, 1),
        leaf(Tag.OPERATION, E, 2),
        leaf(Tag.OBJECT_TYPE, E, 2),
        leaf(Tag.VENDOR_IDENTIFICATION, T, "vector vendor"),
        operation=query,
    )
    ours = response(
        leaf(Tag.OPERATION, E, 3),
        leaf(Tag.OBJECT_TYPE, E, 2),
        leaf(Tag.OBJECT_TYPE, E, 7),
        leaf(Tag.VENDOR_IDENTIFICATION, T, "us"),
        operation=query,
    )
    assert Comparison(NOW).compare(1, expected, ours) is None
    no_objects = response(leaf(Tag.OPERATION, E, 3), leaf(Tag.VENDOR_IDENTIFICATION, T, "us"), operation=query)
    assert "at least one ObjectType" in str(Comparison(NOW).compare(1, expected, no_objects))
    unasked = response(*ours.value[1].value[2].value, st(Tag.SERVER_INFORMATION), operation=query)
    assert "not asked for" in str(Comparison(NOW).compare(1, expected, unasked))
    # Outside a Query response the same tags are compared exactly.
    assert Comparison(NOW).compare(1, response(leaf(Tag.OBJECT_TYPE, E, 2)), response(leaf(Tag.OBJECT_TYPE, E, 7)))


_CASE = b"""<KMIP>
<RequestMessage><RequestHeader><ProtocolVersion><ProtocolVersionMajor type="Integer" value="1"/>
<ProtocolVersionMinor type="Integer" value="4"/></ProtocolVersion><BatchCount type="Integer" value="1"/>
</RequestHeader><BatchItem><Operation type="Enumeration" value="Get"/><RequestPayload>
<UniqueIdentifier type="TextString" value="fixed"/></RequestPayload></BatchItem></RequestMessage>
<ResponseMessage><ResponseHeader><ProtocolVersion><ProtocolVersionMajor type="Integer" value="1"/>
<ProtocolVersionMinor type="Integer" value="4"/></ProtocolVersion><TimeStamp type="DateTime" value="$NOW"/>
<BatchCount type="Integer" value="1"/></ResponseHeader><BatchItem><Operation type="Enumeration" value="Get"/>
<ResultStatus type="Enumeration" value="Success"/><ResponsePayload>
<UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_0"/></ResponsePayload></BatchItem></ResponseMessage>
</KMIP>"""


def test_a_file_runs_step_by_step_and_stops_at_the_first_difference(tmp_path) -> None:
    from kmip_client.protocol.ttlv import decode, encode

    steps = load_steps(_CASE)
    assert len(steps) == 1 and steps[0].number == 1
    sent = []

    def exchange(data: bytes) -> bytes:
        sent.append(decode(data))
        answer = steps[0].expected
        header, item = answer.value
        header = Item(
            header.tag, S, tuple(leaf(Tag.TIME_STAMP, D, NOW) if c.tag == Tag.TIME_STAMP else c for c in header.value)
        )
        payload = st(Tag.RESPONSE_PAYLOAD, uid("the-key"))
        item = Item(item.tag, S, (*item.value[:2], payload))
        return encode(Item(answer.tag, S, (header, item)))

    result = replay_steps(tmp_path / "case.xml", steps, exchange)
    assert result.passed and result.created == ["the-key"]
    assert sent[0].value[1].value[1].value[0].value == "fixed"
    assert result.line() == f"PASS {tmp_path / 'case.xml'}"

    def failing(data: bytes) -> bytes:
        raise ConnectionResetError("reset by peer")

    broken = replay_steps(tmp_path / "case.xml", steps, failing)
    assert not broken.passed and broken.line().startswith(f"FAIL {tmp_path / 'case.xml'}: step 1")
    assert "ConnectionResetError" in broken.line()


def test_a_file_must_alternate_requests_and_responses() -> None:
    with pytest.raises(Exception, match="without a RequestMessage"):
        load_steps(b"<KMIP>" + _CASE.split(b"</RequestMessage>")[1].replace(b"</KMIP>", b"") + b"</KMIP>")


def test_a_continuation_runs_as_the_file_it_continues() -> None:
    from pathlib import Path

    from kmip_client.replay import case_name, predecessor

    third = Path("v1.4/mandatory/TL-M-3-14.xml")
    assert case_name(third) == "TL-M-3"
    assert predecessor(third) == Path("v1.4/mandatory/TL-M-2-14.xml")
    assert predecessor(Path("v2.1/mandatory/TL-M-2-21.xml")) == Path("v2.1/mandatory/TL-M-2-21.xml")
    assert predecessor(Path("SKLC-M-1-14.xml")) == Path("SKLC-M-1-14.xml")
    # The Self-Encrypting Drive's SASED-M-3 destroys what SASED-M-2 registered, in every version.
    assert predecessor(Path("v1.3/mandatory/SASED-M-3-13.xml")) == Path("v1.3/mandatory/SASED-M-2-13.xml")
    assert predecessor(Path("v2.1/mandatory/SASED-M-3-21.xml")) == Path("v2.1/mandatory/SASED-M-2-21.xml")


def test_a_continuation_runs_right_after_the_file_it_continues() -> None:
    from pathlib import Path

    from kmip_client.replay import conversation_order

    tl2, tl3, sased2, sased3, sklc = map(
        Path, ("TL-M-2-14.xml", "TL-M-3-14.xml", "SASED-M-2-14.xml", "SASED-M-3-14.xml", "SKLC-M-1-14.xml")
    )
    assert conversation_order([sased3, sklc, tl3, sased2, tl2]) == [sklc, sased2, sased3, tl2, tl3]
    assert conversation_order([tl3, sklc]) == [tl3, sklc]  # alone, a continuation keeps its place


def test_the_random_number_generator_is_the_servers_own_unless_a_request_set_it() -> None:
    def rng(algorithm: int) -> Item:
        return st(Tag.RANDOM_NUMBER_GENERATOR, leaf(Tag.RNG_ALGORITHM, E, algorithm))

    def rng_1x(algorithm: int) -> Item:
        value = Item(int(Tag.ATTRIBUTE_VALUE), S, (leaf(Tag.RNG_ALGORITHM, E, algorithm),))
        return st(Tag.ATTRIBUTE, leaf(Tag.ATTRIBUTE_NAME, T, "Random Number Generator"), value)

    vector, ours = 5, 3  # ANSI X9.31 in the vectors; a DRBG here
    for make in (rng, rng_1x):
        comparison = Comparison(NOW)
        assert comparison.compare(1, response(make(vector)), response(make(ours))) is None
        comparison.concrete_request(st(Tag.REQUEST_MESSAGE, make(vector)))  # a Register that sets it
        assert comparison.compare(2, response(make(vector)), response(make(ours))) is not None
    # Another attribute's structured value stays exact.
    other = st(Tag.ATTRIBUTE, leaf(Tag.ATTRIBUTE_NAME, T, "Name"), Item(int(Tag.ATTRIBUTE_VALUE), S, (uid("a"),)))
    changed = st(Tag.ATTRIBUTE, leaf(Tag.ATTRIBUTE_NAME, T, "Name"), Item(int(Tag.ATTRIBUTE_VALUE), S, (uid("b"),)))
    assert Comparison(NOW).compare(1, response(other), response(changed)) is not None


def _names(*names: str) -> tuple[Item, ...]:
    return tuple(leaf(Tag.ATTRIBUTE_NAME, T, n) for n in names)


def test_only_a_get_attribute_list_is_compared_without_order_the_same_names_each_as_often() -> None:
    from kmip_client.protocol.spec.enums import Operation

    listing = int(Operation.GET_ATTRIBUTE_LIST)
    expected = response(uid("k"), *_names("x-Barcode", "x-ID", "Name", "State"), operation=listing)

    def compared(*names: str, identifier: str = "k") -> str | None:
        actual = response(uid(identifier), *_names(*names), operation=listing)
        difference = Comparison(NOW).compare(2, expected, actual)
        return None if difference is None else str(difference)

    assert compared("x-ID", "x-Barcode", "State", "Name") is None  # KMIP sets no order for the list
    path = "step 2, ResponseMessage/BatchItem/ResponsePayload/AttributeName"
    assert compared("x-ID", "x-Barcode", "Name") == f"{path}: expected TextString 'State' (in any order), got nothing"
    assert compared("x-ID", "x-Barcode", "State", "Name", "Fresh") == (
        f"{path}: expected nothing more, got TextString 'Fresh'"
    )
    assert compared("x-ID", "x-Barcode", "State", "Name", "Name") == (
        f"{path}: expected TextString 'Name' (once, in any order), got twice"
    )
    assert compared("x-ID", "x-Barcode", "State", "x-Id") is not None  # a name is still exact
    # Names the vector lists twice are wanted twice.
    twice = response(uid("k"), *_names("Name", "State", "Name"), operation=listing)
    moved = response(uid("k"), *_names("Name", "Name", "State"), operation=listing)
    assert Comparison(NOW).compare(1, twice, moved) is None
    once = response(uid("k"), *_names("State", "Name"), operation=listing)
    assert "'Name' (twice, in any order), got once" in str(Comparison(NOW).compare(1, twice, once))
    # The rest of the payload is exact.
    assert "expected TextString 'k'" in str(compared("x-ID", "x-Barcode", "State", "Name", identifier="j"))

    # Everywhere else order counts: the attributes of a Get Attributes response, the same names
    # in another operation's payload, the identifiers a Locate returns.
    def attribute(name: str, value: str) -> Item:
        return st(Tag.ATTRIBUTE, leaf(Tag.ATTRIBUTE_NAME, T, name), leaf(Tag.ATTRIBUTE_VALUE, T, value))

    get_attributes = int(Operation.GET_ATTRIBUTES)
    in_order = response(uid("k"), attribute("x-ID", "1"), attribute("x-Barcode", "2"), operation=get_attributes)
    swapped = response(uid("k"), attribute("x-Barcode", "2"), attribute("x-ID", "1"), operation=get_attributes)
    difference = Comparison(NOW).compare(3, in_order, swapped)
    assert difference is not None and "expected TextString 'x-ID', got TextString 'x-Barcode'" in str(difference)
    names = response(uid("k"), *_names("x-Barcode", "x-ID"), operation=get_attributes)
    assert Comparison(NOW).compare(3, names, response(uid("k"), *_names("x-ID", "x-Barcode"), operation=get_attributes))
    located = response(uid("a"), uid("b"), operation=int(Operation.LOCATE))
    assert Comparison(NOW).compare(3, located, response(uid("b"), uid("a"), operation=int(Operation.LOCATE)))


def test_a_2x_get_attribute_list_is_its_attribute_references_in_any_order() -> None:
    from kmip_client.protocol.spec.enums import Operation

    def vendor(name: str) -> Item:
        return st(Tag.ATTRIBUTE_REFERENCE, leaf(Tag.VENDOR_IDENTIFICATION, T, "x"), leaf(Tag.ATTRIBUTE_NAME, T, name))

    def ref(tag: Tag) -> Item:
        return leaf(Tag.ATTRIBUTE_REFERENCE, E, int(tag))

    listing = int(Operation.GET_ATTRIBUTE_LIST)
    rng, mask = ref(Tag.RANDOM_NUMBER_GENERATOR), ref(Tag.PROTECTION_STORAGE_MASK)
    expected = response(uid("k"), vendor("Barcode"), vendor("ID"), rng, ref(Tag.STATE), mask, operation=listing)
    reordered = response(uid("k"), vendor("ID"), vendor("Barcode"), mask, rng, ref(Tag.STATE), operation=listing)
    assert Comparison(NOW).compare(2, expected, reordered) is None
    without = response(uid("k"), vendor("ID"), vendor("Barcode"), rng, ref(Tag.STATE), operation=listing)
    difference = Comparison(NOW).compare(2, expected, without)
    assert difference is not None and difference.expected.startswith("Enumeration ProtectionStorageMask")
    other_vendor = response(uid("k"), vendor("ID"), vendor("Code"), mask, rng, ref(Tag.STATE), operation=listing)
    difference = Comparison(NOW).compare(2, expected, other_vendor)
    assert difference is not None and difference.got == "nothing"  # the Barcode reference is missing


def request(*payload: Item, operation: int) -> Item:
    """A one-item Request Message with ``payload``."""
    item = st(Tag.BATCH_ITEM, leaf(Tag.OPERATION, E, operation), st(Tag.REQUEST_PAYLOAD, *payload))
    return st(Tag.REQUEST_MESSAGE, st(Tag.REQUEST_HEADER, leaf(Tag.BATCH_COUNT, INT, 1)), item)


ENCRYPT, DECRYPT, SIGN, CREATE, REGISTER = 0x1F, 0x20, 0x21, 0x01, 0x03


def _exchange(comparison: Comparison, sent: Item, expected: Item, got: Item):
    comparison.concrete_request(sent)
    return comparison.compare(1, expected, got)


def test_what_follows_from_an_iv_the_server_chose_is_compared_by_length() -> None:
    """Random IV and no IV in the request: the IV, the ciphertext and the tag the vector shows
    came from its server's random IV. An IV the request gave keeps them all exact."""
    data = leaf(Tag.DATA, B, bytes(range(32)))
    vector = response(uid("k"), data, leaf(Tag.IV_COUNTER_NONCE, B, bytes(16)), operation=ENCRYPT)
    ours = response(
        uid("k"), leaf(Tag.DATA, B, b"\x07" * 32), leaf(Tag.IV_COUNTER_NONCE, B, b"\x01" * 16), operation=ENCRYPT
    )
    no_iv = request(uid("k"), leaf(Tag.DATA, B, b"plaintext" * 3), operation=ENCRYPT)
    assert _exchange(Comparison(NOW), no_iv, vector, ours) is None
    shorter = response(
        uid("k"), leaf(Tag.DATA, B, b"\x07" * 31), leaf(Tag.IV_COUNTER_NONCE, B, b"\x01" * 16), operation=ENCRYPT
    )
    assert _exchange(Comparison(NOW), no_iv, vector, shorter) is not None
    given_iv = request(uid("k"), leaf(Tag.IV_COUNTER_NONCE, B, bytes(16)), operation=ENCRYPT)
    assert _exchange(Comparison(NOW), given_iv, vector, ours) is not None
    # No IV in the response (ECB): the ciphertext is exact.
    ecb = response(uid("k"), data, operation=ENCRYPT)
    assert _exchange(
        Comparison(NOW), no_iv, ecb, response(uid("k"), leaf(Tag.DATA, B, b"\x07" * 32), operation=ENCRYPT)
    )


def test_output_under_a_key_the_server_generated_is_compared_by_length() -> None:
    comparison = Comparison(NOW)
    assert (
        _exchange(
            comparison,
            request(operation=CREATE),
            response(uid("gen"), operation=CREATE),
            response(uid("gen"), operation=CREATE),
        )
        is None
    )
    sent = request(uid("gen"), leaf(Tag.DATA, B, bytes(16)), operation=ENCRYPT)
    vector = response(uid("gen"), leaf(Tag.DATA, B, bytes(range(16))), operation=ENCRYPT)
    assert (
        _exchange(comparison, sent, vector, response(uid("gen"), leaf(Tag.DATA, B, b"\x09" * 16), operation=ENCRYPT))
        is None
    )
    decrypted = response(uid("gen"), leaf(Tag.DATA, B, bytes(16)), operation=DECRYPT)
    assert (
        _exchange(comparison, sent, decrypted, response(uid("gen"), leaf(Tag.DATA, B, b"\x09" * 16), operation=DECRYPT))
        is None
    )
    # A key the file registered (its bytes known) gives exact output.
    registered = Comparison(NOW)
    _exchange(
        registered,
        request(operation=REGISTER),
        response(uid("reg"), operation=REGISTER),
        response(uid("reg"), operation=REGISTER),
    )
    vector = response(uid("reg"), leaf(Tag.DATA, B, bytes(range(16))), operation=ENCRYPT)
    assert _exchange(registered, sent, vector, response(uid("reg"), leaf(Tag.DATA, B, b"\x09" * 16), operation=ENCRYPT))


def test_rsa_ciphertext_and_pss_signatures_are_compared_by_length() -> None:
    comparison = Comparison(NOW)
    public = request(leaf(Tag.OBJECT_TYPE, E, 3), operation=REGISTER)  # Public Key
    assert (
        _exchange(
            comparison, public, response(uid("pub"), operation=REGISTER), response(uid("pub"), operation=REGISTER)
        )
        is None
    )
    sent = request(uid("pub"), leaf(Tag.DATA, B, b"m" * 20), operation=ENCRYPT)
    vector = response(uid("pub"), leaf(Tag.DATA, B, bytes(256)), operation=ENCRYPT)
    assert (
        _exchange(comparison, sent, vector, response(uid("pub"), leaf(Tag.DATA, B, b"\x05" * 256), operation=ENCRYPT))
        is None
    )
    assert _exchange(
        comparison, sent, vector, response(uid("pub"), leaf(Tag.DATA, B, b"\x05" * 255), operation=ENCRYPT)
    )
    pss = request(
        leaf(Tag.OBJECT_TYPE, E, 4),
        st(Tag.CRYPTOGRAPHIC_PARAMETERS, leaf(Tag.PADDING_METHOD, E, 0x0A)),
        operation=REGISTER,
    )
    assert (
        _exchange(comparison, pss, response(uid("pss"), operation=REGISTER), response(uid("pss"), operation=REGISTER))
        is None
    )
    signed = request(uid("pss"), leaf(Tag.DATA, B, b"m" * 20), operation=SIGN)
    vector = response(uid("pss"), leaf(Tag.SIGNATURE_DATA, B, bytes(256)), operation=SIGN)
    assert (
        _exchange(
            comparison, signed, vector, response(uid("pss"), leaf(Tag.SIGNATURE_DATA, B, b"\x05" * 256), operation=SIGN)
        )
        is None
    )
    # A PKCS#1 v1.5 signature is deterministic: exact.
    plain = Comparison(NOW)
    v15 = request(
        leaf(Tag.OBJECT_TYPE, E, 4),
        st(Tag.CRYPTOGRAPHIC_PARAMETERS, leaf(Tag.PADDING_METHOD, E, 0x08)),
        operation=REGISTER,
    )
    _exchange(plain, v15, response(uid("v15"), operation=REGISTER), response(uid("v15"), operation=REGISTER))
    vector = response(uid("v15"), leaf(Tag.SIGNATURE_DATA, B, bytes(256)), operation=SIGN)
    signed = request(uid("v15"), leaf(Tag.DATA, B, b"m" * 20), operation=SIGN)
    assert _exchange(
        plain, signed, vector, response(uid("v15"), leaf(Tag.SIGNATURE_DATA, B, b"\x05" * 256), operation=SIGN)
    )


def test_an_unshown_placeholder_named_after_a_tag_is_the_latest_responses_value() -> None:
    """CS-AC-M-6 sends `$MAC_DATA` back, CS-BC-M-13 `$DATA_0` and `$IV_COUNTER_NONCE`, though no
    expected response shows them: the values of those tags in the latest response."""
    comparison = Comparison(NOW)
    mac = response(uid("k"), leaf(Tag.MAC_DATA, B, b"\xaa" * 32), operation=0x23)
    assert _exchange(comparison, request(uid("k"), operation=0x23), mac, mac) is None
    verify = request(
        uid("k"),
        leaf(Tag.MAC_DATA, B, Placeholder("MAC_DATA")),
        leaf(Tag.DATA, B, Placeholder("DATA_0")),
        operation=0x24,
    )
    with pytest.raises(KeyError, match="DATA_0"):
        comparison.concrete_request(verify)  # no response gave a Data yet
    data = response(uid("k"), leaf(Tag.DATA, B, b"\xbb" * 16), operation=ENCRYPT)
    comparison.compare(2, data, data)
    concrete = comparison.concrete_request(verify)
    payload = concrete.value[1].value[1].value
    assert [c.value for c in payload[1:]] == [b"\xaa" * 32, b"\xbb" * 16]
    with pytest.raises(KeyError, match="NOT_A_TAG"):
        comparison.concrete_request(request(leaf(Tag.DATA, B, Placeholder("NOT_A_TAG")), operation=ENCRYPT))


def test_c_getinfo_names_the_servers_own_library() -> None:
    """PKCS11-M-1 shows its reference library's CK_INFO ("TEST Pty Ltd", version 1.0): the
    manufacturer, description and library version are compared by presence, the Cryptoki
    version, flags and length exactly."""
    pkcs11, get_info, initialize = 0x33, 3, 1

    def info(version: bytes, maker: bytes, flags: bytes, description: bytes, library: bytes) -> bytes:
        return version + maker.ljust(32) + flags + description.ljust(32) + library

    def answer(output: bytes, function: int = get_info) -> Item:
        return response(
            leaf(Tag.PKCS_11_FUNCTION, E, function), leaf(Tag.PKCS_11_OUTPUT_PARAMETERS, B, output), operation=pkcs11
        )

    vector = info(b"\x02\x28", b"TEST      Pty Ltd", bytes(8), b"TEST", b"\x01\x00")
    ours = info(b"\x02\x28", b"SoftHSM", bytes(8), b"Implementation of PKCS11", b"\x02\x06")
    assert Comparison(NOW).compare(1, answer(vector), answer(ours)) is None
    other_version = info(b"\x03\x00", b"SoftHSM", bytes(8), b"Implementation of PKCS11", b"\x02\x06")
    assert Comparison(NOW).compare(1, answer(vector), answer(other_version))
    flagged = info(b"\x02\x28", b"SoftHSM", b"\x01" + bytes(7), b"Implementation of PKCS11", b"\x02\x06")
    assert Comparison(NOW).compare(1, answer(vector), answer(flagged))
    assert Comparison(NOW).compare(1, answer(vector), answer(ours[:-1]))
    # Other functions' output stays exact.
    assert Comparison(NOW).compare(1, answer(vector, initialize), answer(ours, initialize))
