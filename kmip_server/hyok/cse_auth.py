"""Who a CSE request is from and what it may do: the authentication and authorization tokens
checked as Google's CSE reference ("Authentication tokens", "Authorization tokens") says.

* The authentication token is the identity provider's: issuer, signature and audience against
  ``authentication_issuers`` and ``authentication_audiences``. Its ``email`` (``google_email``
  when the IdP's email is not the Workspace one) names the user.
* The authorization token is Google's: issuer and signature against ``authorization_issuers``,
  audience ``authorization_audience`` (``cse-authorization``), ``kacls_url`` this service's own
  (a token minted for another key service is refused), the ``role`` the operation needs
  (wrap: writer; unwrap: reader or writer; rewrap: migrator), a ``resource_name``, and an
  ``email`` that is the authentication token's (case aside).
* A KACLS token (privilegedunwrap from a key service migrating away from this one): issuer and
  signature against ``kacls_issuers`` (each one's ``certs``, as a file), audience
  ``kacls-migration``, ``kacls_url`` ours and the request's ``resource_name``.
* Perimeters: when ``[cse.perimeters]`` is configured, the perimeter named by the operation's
  perimeter_id ("" for none) must exist and admit the user (email domain, required claims of
  the authentication token).

A token that does not verify is 401 (UNAUTHENTICATED); a verified one that does not allow the
operation is 403 (PERMISSION_DENIED).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

from .cse_settings import CseSettings
from .jwt_tokens import KeySets, TokenError, unverified_issuer, verify

__all__ = [
    "KACLS_AUDIENCE",
    "CseError",
    "Caller",
    "authorization",
    "caller",
    "check_perimeter",
    "kacls_caller",
    "user_email",
]

KACLS_AUDIENCE = "kacls-migration"
WRAP_ROLES = frozenset({"writer"})
UNWRAP_ROLES = frozenset({"reader", "writer"})
REWRAP_ROLES = frozenset({"migrator"})
_MAX_RESOURCE = 512  # bytes: Drive's resource names are at most 128, Gmail's 512


class CseError(Exception):
    """A request refused with an HTTP status and Google's structured error body."""

    def __init__(self, status: int, message: str, details: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


@dataclasses.dataclass(frozen=True)
class Caller:
    """A verified caller: the identity the access policy sees, and what its tokens said."""

    identity: str
    email: str
    authentication: dict[str, Any]


def _verified(token: object, keys: KeySets, audiences: Collection[str], what: str, skew: float) -> dict[str, Any]:
    try:
        return verify(token, keys, audiences, leeway=skew)
    except TokenError as exc:
        raise CseError(401, f"the {what} token is not accepted: {exc}", "UNAUTHENTICATED") from None


def user_email(claims: dict[str, Any], what: str) -> str:
    email = claims.get("google_email") or claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise CseError(403, f"the {what} token names no user (email)", "PERMISSION_DENIED")
    return email.strip().lower()


def caller(settings: CseSettings, token: object, prefix: str) -> Caller:
    """The user an IdP authentication token names, acting as ``prefix`` + their email."""
    claims = _verified(
        token, settings.authentication, settings.authentication_audiences, "authentication", settings.clock_skew
    )
    email = user_email(claims, "authentication")
    return Caller(prefix + email, email, claims)


def authorization(settings: CseSettings, token: object, roles: frozenset[str], user: Caller | None) -> dict[str, Any]:
    """The claims of Google's authorization token for an operation that needs one of
    ``roles``, for ``user`` (None: the token alone names the user, as in rewrap)."""
    claims = _verified(
        token, settings.authorization, (settings.authorization_audience,), "authorization", settings.clock_skew
    )
    url = claims.get("kacls_url")
    if not isinstance(url, str) or url.rstrip("/") != settings.kacls_url:
        raise CseError(
            403, "the authorization token was issued for another key service (kacls_url)", "PERMISSION_DENIED"
        )
    role = claims.get("role")
    if role not in roles:
        wanted = " or ".join(sorted(roles))
        raise CseError(
            403, f"the authorization token's role {role!r} does not allow this (needs {wanted})", "PERMISSION_DENIED"
        )
    resource = claims.get("resource_name")
    if not isinstance(resource, str) or not resource or len(resource.encode()) > _MAX_RESOURCE:
        raise CseError(403, "the authorization token names no resource_name", "PERMISSION_DENIED")
    perimeter = claims.get("perimeter_id", "")
    if not isinstance(perimeter, str) or len(perimeter.encode()) > _MAX_RESOURCE:
        raise CseError(403, "the authorization token's perimeter_id is not a short string", "PERMISSION_DENIED")
    email = user_email(claims, "authorization")
    if user is not None and email != user.email:
        raise CseError(403, "the authentication and authorization tokens name different users", "PERMISSION_DENIED")
    if claims.get("delegated_to") is not None:
        raise CseError(403, "delegated authorization tokens are not supported here", "PERMISSION_DENIED")
    return claims


def check_perimeter(settings: CseSettings, perimeter_id: str, user: Caller) -> None:
    """Refuse (403) a user the perimeter named ``perimeter_id`` does not admit."""
    if settings.perimeters is None:
        return
    perimeter = settings.perimeters.get(perimeter_id)
    if perimeter is None:
        raise CseError(403, f"no perimeter {perimeter_id!r} is configured on this key service", "PERMISSION_DENIED")
    refusal = perimeter.refusal(user.email, user.authentication)
    if refusal is not None:
        raise CseError(403, refusal, "PERMISSION_DENIED")


def kacls_caller(settings: CseSettings, token: object, resource_name: str) -> Caller | None:
    """The other key service a KACLS token of privilegedunwrap is from, or None when the token
    is not one (its issuer is not a configured KACLS: then it is an IdP token)."""
    issuer = unverified_issuer(token) if settings.kacls else None
    if issuer is None or issuer not in settings.kacls:
        return None
    claims = _verified(token, settings.kacls, (KACLS_AUDIENCE,), "KACLS authentication", settings.clock_skew)
    url = claims.get("kacls_url")
    if not isinstance(url, str) or url.rstrip("/") != settings.kacls_url:
        raise CseError(403, "the KACLS token was issued for another key service (kacls_url)", "PERMISSION_DENIED")
    if claims.get("resource_name") != resource_name:
        raise CseError(403, "the KACLS token names another resource_name", "PERMISSION_DENIED")
    return Caller(f"cse-kacls:{issuer}", "", claims)
