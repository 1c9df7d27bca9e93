"""The curve orders Create Key Pair draws private scalars below are the curves' real orders."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kmip_server.operations.key_pairs import _ORDERS, NIST_CURVES


@pytest.mark.parametrize("curve_id", sorted(_ORDERS))
def test_each_order_is_the_order_of_the_base_point(curve_id: int) -> None:
    n, curve = _ORDERS[curve_id], NIST_CURVES[curve_id]()
    base = ec.derive_private_key(1, curve).public_key().public_numbers()
    last = ec.derive_private_key(n - 1, curve).public_key().public_numbers()
    # (n-1)G = -G: the same x, the other y. Any other n gives another point.
    assert (last.x, last.y != base.y) == (base.x, True)
    with pytest.raises(ValueError):
        ec.derive_private_key(n, curve)  # nG is the point at infinity
    assert n.bit_length() == curve.key_size
