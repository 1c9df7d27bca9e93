"""Access policy: who may use which object.

The default policy (``policies/default.toml``, and :data:`DEFAULT_POLICY`, which equals it)
is ownership: the creator owns an object; others get Permission Denied and do not see it in
Locate; administrators may do everything.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterable
from pathlib import Path


class PolicyError(ValueError):
    """A policy file that cannot be used."""


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    administrators: frozenset[str] = frozenset({"admin"})
    creator_owns: bool = True

    def is_admin(self, identity: str) -> bool:
        return identity in self.administrators

    def may_use(self, identity: str, owner: str) -> bool:
        """Whether ``identity`` may operate on an object owned by ``owner``."""
        return identity in self.administrators or (self.creator_owns and owner == identity)

    def owner_for_new_object(self, identity: str) -> str:
        return identity if self.creator_owns else ""

    def visible_owners(self, identity: str) -> tuple[str, ...] | None:
        """The owners whose objects Locate may return to ``identity`` (None: all)."""
        if identity in self.administrators:
            return None
        return (identity,) if self.creator_owns else ()

    def with_administrators(self, names: Iterable[str]) -> Policy:
        return dataclasses.replace(self, administrators=self.administrators | frozenset(names))


DEFAULT_POLICY = Policy()


def load_policy(path: Path) -> Policy:
    """Read a policy file in the format of ``policies/default.toml``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from None
    unknown = set(data) - {"ownership", "administrators"}
    if unknown:
        raise PolicyError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
    creator_owns = data.get("ownership", {}).get("creator_owns", True)
    admins = data.get("administrators", {}).get("identities", [])
    if not isinstance(creator_owns, bool):
        raise PolicyError(f"{path}: ownership.creator_owns must be true or false")
    if not isinstance(admins, list) or not all(isinstance(a, str) and a for a in admins):
        raise PolicyError(f"{path}: administrators.identities must be a list of names")
    return Policy(administrators=frozenset(admins), creator_owns=creator_owns)
