"""W.W.H.D. CrossGuard policies, grouped by concern. ALL_POLICIES is what the pack enforces."""

from __future__ import annotations

from . import compute, cost, data_safety, encryption, network, observability, reliability, rotation, security

ALL_POLICIES = [
    *encryption.POLICIES,
    *network.POLICIES,
    *data_safety.POLICIES,
    *reliability.POLICIES,
    *security.POLICIES,
    *rotation.POLICIES,
    *observability.POLICIES,
    *compute.POLICIES,
    *cost.POLICIES,
]

PACK_NAME = "wwhd-policies"

__all__ = ["ALL_POLICIES", "PACK_NAME"]
