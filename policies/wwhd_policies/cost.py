"""Cost: the stack's estimated monthly bill stays under the per-stack ceilings."""

from __future__ import annotations

import json
import os
from typing import Any

from pulumi_policy import Severity

from ._util import MANDATORY, Findings, Stack, as_float, stack_policy
from .cost_model import CostEstimate, estimate


def stack_region(default: str = "us-west-2") -> str:
    """aws:region from the stack configuration the engine passes in PULUMI_CONFIG."""
    try:
        cfg = json.loads(os.environ.get("PULUMI_CONFIG") or "{}")
    except ValueError:
        return default
    region = cfg.get("aws:region") if isinstance(cfg, dict) else None
    return region if isinstance(region, str) and region else default


def _itemize(est: CostEstimate, peak: bool) -> str:
    lines = []
    for item in est.top_items(5, peak=peak):
        amount = item.peak_monthly if peak else item.baseline_monthly
        lines.append(f"  ${amount:,.2f}  {item.name} ({item.type.rsplit(':', 1)[-1]}): {item.detail}")
    return "\n".join(lines)


def _check_cost(stack: Stack, cfg: dict[str, Any], out: Findings) -> None:
    region = str(cfg.get("region") or stack_region())
    usage = cfg.get("usage") if isinstance(cfg.get("usage"), dict) else {}
    est = estimate(stack.resources, usage=usage, region=region)
    for label, total, ceiling, peak in (
        ("baseline", est.baseline_monthly, as_float(cfg.get("maxMonthlyUsd")), False),
        ("peak", est.peak_monthly, as_float(cfg.get("maxPeakMonthlyUsd")), True),
    ):
        if ceiling is not None and total > ceiling:
            out.violation(
                f"Estimated {label} bill ${total:,.2f}/month ({region}) exceeds the ceiling "
                f"${ceiling:,.2f}. Biggest costs:\n{_itemize(est, peak)}"
                + (f"\n  (+ {len(est.unpriced)} unpriced resources)" if est.unpriced else "")
            )
    if est.unpriced:
        names = ", ".join(f"{u['name']} ({u['reason']})" for u in est.unpriced[:8])
        out.cannot_decide(
            f"{len(est.unpriced)} resource(s) could not be priced, so the estimate "
            f"(baseline ${est.baseline_monthly:,.2f}, peak ${est.peak_monthly:,.2f}) is a lower bound: {names}"
        )


cost_ceiling = stack_policy(
    name="cost-ceiling",
    description="The estimated monthly bill, at baseline and at autoscaling peak, stays under the stack's ceilings.",
    check=_check_cost,
    level=MANDATORY,
    severity=Severity.MEDIUM,
    remediation="Cut what dominates the itemized list (NAT gateways: one shared NAT or VPC endpoints; "
    "Fargate: smaller/ARM64/Spot tasks, lower autoscaling maximum; RDS: Single-AZ or a smaller class), "
    "or raise the ceiling in the stack's policy config with the owner's agreement.",
    schema={
        "maxMonthlyUsd": {
            "type": "number",
            "description": "Ceiling for the baseline monthly estimate (USD).",
        },
        "maxPeakMonthlyUsd": {"type": "number", "description": "Ceiling at autoscaling maximums (USD)."},
        "region": {
            "type": "string",
            "description": "Price region; default: aws:region of the stack, else us-west-2.",
        },
        "usage": {
            "type": "object",
            "description": "Usage assumptions overriding cost_model.DEFAULT_USAGE (natGbPerMonth, albLcu, "
            "efsGbStored, logIngestGbPerGroup, ...).",
        },
    },
)

POLICIES = [cost_ceiling]
