"""W.W.H.D. CrossGuard policies, grouped by concern. ALL_POLICIES is what the pack enforces.

The policy modules load on the first use of ALL_POLICIES, not with the package: the offline
preview imports the cost model (wwhd_policies.cost_model) in a process of its own, which needs
neither the policies nor the SDK they load (pulumi_policy, with pulumi and grpc).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pulumi_policy import Policy

PACK_NAME = "wwhd-policies"

ALL_POLICIES: list[Policy]  # built by __getattr__ on first use

__all__ = ["ALL_POLICIES", "PACK_NAME"]


def __getattr__(name: str) -> list[Policy]:
    """ALL_POLICIES on first use (PEP 562); from then on a module attribute like any other."""
    if name != "ALL_POLICIES":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import (
        compute,
        cost,
        data_safety,
        encryption,
        network,
        observability,
        reliability,
        rotation,
        security,
    )

    policies: list[Policy] = [
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
    globals()["ALL_POLICIES"] = policies
    return policies
