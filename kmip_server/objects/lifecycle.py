"""The KMIP key lifecycle state machine (KMIP 1.4 §3.22 / 2.1 §4.57).

Stored state plus the Activation and Deactivation Dates give the state a client sees: a
Pre-Active object whose Activation Date has passed is Active, an Active (or Pre-Active) one
whose Deactivation Date has passed is Deactivated. :func:`effective_state` applies those time
rules; operations then move objects along the transitions allowed here.
"""

from __future__ import annotations

from kmip_client.protocol.spec.enums import State

PRE_ACTIVE = int(State.PRE_ACTIVE)
ACTIVE = int(State.ACTIVE)
DEACTIVATED = int(State.DEACTIVATED)
COMPROMISED = int(State.COMPROMISED)
DESTROYED = int(State.DESTROYED)
DESTROYED_COMPROMISED = int(State.DESTROYED_COMPROMISED)

DESTROYED_STATES = frozenset({DESTROYED, DESTROYED_COMPROMISED})
#: Every state but the destroyed ones: what a search finds unless it asks for destroyed objects.
LIVE_STATES = tuple(int(s) for s in State if int(s) not in DESTROYED_STATES)


def effective_state(state: int, activation: int | None, deactivation: int | None, now: int) -> int:
    """The state at time ``now`` (POSIX seconds) given the stored state and dates."""
    if state == PRE_ACTIVE and activation is not None and activation <= now:
        state = ACTIVE
    if state in (PRE_ACTIVE, ACTIVE) and deactivation is not None and deactivation <= now:
        state = DEACTIVATED
    return state


def state_after_revoke(state: int, compromised: bool) -> int | None:
    """The state a Revoke leads to, or None if Revoke is not allowed from ``state``."""
    if compromised:
        if state in (PRE_ACTIVE, ACTIVE, DEACTIVATED, COMPROMISED):
            return COMPROMISED
        if state in DESTROYED_STATES:
            return DESTROYED_COMPROMISED
        return None
    if state == ACTIVE:
        return DEACTIVATED
    if state in (PRE_ACTIVE, DEACTIVATED):
        # Revoke "places the object into the Deactivated state" whatever it was, short of
        # compromise or destruction (KMIP 2.1 §6.1.47); a repeated Revoke just records the reason.
        return DEACTIVATED
    return None


def state_after_destroy(state: int) -> int | None:
    """The state a Destroy leads to, or None when the object must not be destroyed (Active)."""
    if state in (PRE_ACTIVE, DEACTIVATED):
        return DESTROYED
    if state == COMPROMISED:
        return DESTROYED_COMPROMISED
    return None


_STATE_NAMES = {
    PRE_ACTIVE: "Pre-Active",
    ACTIVE: "Active",
    DEACTIVATED: "Deactivated",
    COMPROMISED: "Compromised",
    DESTROYED: "Destroyed",
    DESTROYED_COMPROMISED: "Destroyed Compromised",
}


def state_name(state: int) -> str:
    """The spec's name of a state, for messages."""
    return _STATE_NAMES.get(state, f"state 0x{state:08X}")
