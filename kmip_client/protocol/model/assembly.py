"""Filling frozen, slotted dataclass instances quickly.

A frozen dataclass refuses attribute assignment, so its ``__init__`` sets each field through
``object.__setattr__``: a call through a slot wrapper that packs its arguments in a tuple, about
five times the cost of an ordinary slot store. Decoding a message fills some forty fields,
which made that the largest single cost of the client's Get after the interpreter itself.

:func:`assembly_class` gives a class's *assembly twin*: a subclass with exactly its layout
(no slots of its own) that keeps the ordinary ``__setattr__``. A new object is made as the
twin, its fields are stored (the interpreter's fast slot store), and it then becomes an
instance of the frozen class by ``__class__`` assignment, which Python allows between classes
of one layout. :func:`assembling_init` gives the model classes an ``__init__`` that does the
same. Nothing outside these functions ever sees a twin instance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["assembly_class", "assembling_init"]

_TWINS: dict[type, type] = {}


def assembly_class(cls: type) -> type:
    """The assembly twin of the frozen, slotted dataclass ``cls`` (made once)."""
    twin = _TWINS.get(cls)
    if twin is None:
        namespace = {
            "__slots__": (),
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
            "__module__": cls.__module__,
            "__qualname__": f"{cls.__qualname__}.<assembly>",
        }
        twin = _TWINS[cls] = type(f"{cls.__name__}Assembly", (cls,), namespace)
    return twin


def assembling_init(cls: type) -> Callable[..., None]:
    """An ``__init__`` for the frozen, slotted dataclass ``cls`` that does what the dataclass's
    own does (same parameters, defaults and keyword-only fields) but stores the fields on
    the assembly twin. A subclass's instance is left to the dataclass's own ``__init__``,
    as is a class with ``__post_init__``, default factories or fields outside ``__init__``."""
    original: Callable[..., None] = cls.__init__  # type: ignore[misc]
    fields = dataclasses.fields(cls)
    if hasattr(cls, "__post_init__") or any(not f.init or f.default_factory is not dataclasses.MISSING for f in fields):
        return original
    # Upper-case names only: the parameters are the field names ("type", "object" ...).
    scope: dict[str, Any] = {
        "ASSEMBLY": assembly_class(cls),
        "CLS": cls,
        "ORIGINAL": original,
        "TYPE_OF": type,
        "SET_ATTRIBUTE": object.__setattr__,
    }
    params: list[str] = []
    keyword_only: list[str] = []
    for f in fields:
        param = f.name
        if f.default is not dataclasses.MISSING:
            scope[f"DEFAULT_{f.name}"] = f.default
            param = f"{f.name}=DEFAULT_{f.name}"
        (keyword_only if f.kw_only else params).append(param)
    signature = ", ".join(["self", *params, *(["*", *keyword_only] if keyword_only else [])])
    names = [f.name for f in fields]
    source = (
        f"def __init__({signature}):\n"
        "    if TYPE_OF(self) is not CLS:\n"
        f"        return ORIGINAL(self, {', '.join(f'{n}={n}' for n in names)})\n"
        "    SET_ATTRIBUTE(self, '__class__', ASSEMBLY)\n"
        + "".join(f"    self.{n} = {n}\n" for n in names)
        + "    self.__class__ = CLS\n"
    )
    exec(compile(source, f"<assembling __init__ of {cls.__qualname__}>", "exec"), scope)  # noqa: S102
    init: Callable[..., None] = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = original.__doc__
    init.__annotations__ = original.__annotations__
    return init
