"""The assembling ``__init__`` of the model classes behaves as the dataclass's own."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator

import pytest

from kmip_client.operations import ManagedObject
from kmip_client.protocol import model  # noqa: F401  (registers every payload class)
from kmip_client.protocol.model.base import Struct
from kmip_client.protocol.model.messages import ProtocolVersion
from kmip_client.protocol.model.objects import KeyBlock
from kmip_client.protocol.spec.enums import KeyFormatType, ObjectType


def _model_classes() -> Iterator[type]:
    seen: set[type] = set()
    pending = [Struct]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub not in seen and not sub.__name__.endswith("Assembly"):
                seen.add(sub)
                pending.append(sub)
    yield from sorted(seen, key=lambda c: c.__qualname__)


CLASSES = [cls for cls in _model_classes() if "ORIGINAL" in getattr(cls.__init__, "__globals__", {})]


def test_most_model_classes_assemble() -> None:
    assert len(CLASSES) > 150


def test_signatures_defaults_and_frozenness_are_the_dataclasses() -> None:
    for cls in CLASSES:
        original = cls.__init__.__globals__["ORIGINAL"]
        assert inspect.signature(cls.__init__) == inspect.signature(original), cls
        built = cls()
        reference = object.__new__(cls)
        original(reference)
        assert type(built) is cls
        for field in dataclasses.fields(cls):
            assert getattr(built, field.name) == getattr(reference, field.name), (cls, field.name)
        with pytest.raises(dataclasses.FrozenInstanceError):
            built.extras = ()


def test_positional_and_keyword_arguments_land_in_their_fields() -> None:
    version = ProtocolVersion(2, minor=1)
    assert (version.major, version.minor, version.extras) == (2, 1, ())
    block = KeyBlock(KeyFormatType.RAW, extras=((0, None),))  # type: ignore[arg-type]
    assert block.key_format_type is KeyFormatType.RAW and block.extras == ((0, None),)
    assert block == dataclasses.replace(block)
    with pytest.raises(TypeError):
        ProtocolVersion(1, 2, 3)  # type: ignore[call-arg]  # extras is keyword-only
    with pytest.raises(TypeError):
        ProtocolVersion(bogus=1)  # type: ignore[call-arg]


def test_a_subclass_instance_stays_an_instance_of_the_subclass() -> None:
    class Tagged(ProtocolVersion):
        __slots__ = ()

    tagged = Tagged(1, 4)
    assert type(tagged) is Tagged and tagged.as_tuple() == (1, 4)


def test_managed_object_requires_its_three_fields() -> None:
    with pytest.raises(TypeError):
        ManagedObject("uid", ObjectType.SYMMETRIC_KEY)  # type: ignore[call-arg]
    got = ManagedObject("uid", ObjectType.SYMMETRIC_KEY, b"\x01" * 16, length=128)
    assert (got.unique_identifier, got.value, got.length, got.algorithm) == ("uid", b"\x01" * 16, 128, None)
    assert "value" not in repr(got)
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.value = b""  # type: ignore[misc]
