"""Cost: the stack's estimated monthly bill stays under the per-stack ceilings, and a change does
not raise it by more than a per-stack limit."""

from __future__ import annotations

import os
from operator import attrgetter
from typing import Any

from pulumi_policy import Severity

from ._policy import ADVISORY, MANDATORY, Config, Findings, setting, stack_policy
from ._util import LITERAL, Stack, as_float, as_list, stack_config
from .cost_model import CostEstimate, advise, estimate


def stack_region(default: str = "us-west-2") -> str:
    """aws:region from the stack configuration the engine passes in PULUMI_CONFIG."""
    region = stack_config("aws:region")
    return region if isinstance(region, str) and region else default


def during_preview() -> bool:
    """The engine sets PULUMI_DRY_RUN for a preview; `pulumi up` runs stack policies again after
    the update with every value known."""
    return os.environ.get("PULUMI_DRY_RUN", "").lower() == "true"


def _estimate(stack: Stack, cfg: dict[str, Any]) -> tuple[CostEstimate, str]:
    region = str(cfg.get("region") or stack_region())
    usage = cfg.get("usage") if isinstance(cfg.get("usage"), dict) else {}
    return estimate(stack.resources, usage=usage, region=region), region


def _itemize(est: CostEstimate, peak: bool) -> str:
    lines = []
    for item in est.top_items(5, peak=peak):
        amount = item.peak_monthly if peak else item.baseline_monthly
        lines.append(f"  ${amount:,.2f}  {item.name} ({item.type.rsplit(':', 1)[-1]}): {item.detail}")
    return "\n".join(lines)


def _label(entry: dict[str, str]) -> str:
    return f"{entry['type'].rsplit(':', 1)[-1]} '{entry['name']}'"


# What makes a resource without a price priceable.
_PRICE_REMEDY = "add its price to prices.json (build_prices.py for instance classes)"


def _cannot_price(entry: dict[str, str], consequence: str, out: Findings) -> None:
    """An estimate that leaves `entry` out, reported as undecided on its resource: a value the price
    needs is not known yet (kind "unknown", naming the property), or the model has no price for it."""
    if entry.get("kind") == "unknown":
        when = " during preview" if during_preview() else ""
        reason = f"{_label(entry)} cannot be priced{when}: {entry['reason']}"
        prop, remedy = entry.get("property", "value"), LITERAL
    else:
        # Nothing in the resource is unknown: its type (or a class, an option of it) has no price.
        reason = f"{_label(entry)} has no price in the cost model ({entry['reason']})"
        prop, remedy = "type", _PRICE_REMEDY
    out.cannot_decide(reason + consequence, prop=prop, remedy=remedy, urn=entry["urn"])


_PRICING_SCHEMA: dict[str, dict[str, Any]] = {
    "region": setting("Price region; default: aws:region of the stack, else us-west-2.", kind="string"),
    "usage": setting(
        "Usage assumptions overriding cost_model.DEFAULT_USAGE (natGbPerMonth, albLcu, "
        "efsGbStored, logIngestGbPerGroup, ...).",
        kind="object",
    ),
}


@stack_policy(
    "cost-ceiling",
    MANDATORY,
    Severity.MEDIUM,
    schema={
        "maxMonthlyUsd": setting("Ceiling for the baseline monthly estimate (USD).", kind="number"),
        "maxPeakMonthlyUsd": setting("Ceiling at autoscaling maximums (USD).", kind="number"),
        "acceptedUnpricedTypes": setting(
            "Resource types whose cost the owner accepts without a price in the model.", [], items="string"
        ),
        **_PRICING_SCHEMA,
    },
)
def cost_ceiling(stack: Stack, cfg: Config, out: Findings) -> None:
    """The estimated monthly bill, at baseline and at autoscaling peak, stays under the stack's ceilings; a
    resource that costs money and cannot be priced is a violation.

    Remediation: Cut what dominates the itemized list, starting with the levers the message lists (each priced
    from this stack), or raise the ceiling in the stack's policy config with the owner's agreement. For an
    unpriced resource: add its price to prices.json (build_prices.py for instance classes) or, knowing what it
    costs, list its type in acceptedUnpricedTypes.
    """
    ceilings = {
        "baseline": as_float(cfg.get("maxMonthlyUsd")),
        "peak": as_float(cfg.get("maxPeakMonthlyUsd")),
    }
    if all(c is None for c in ceilings.values()):
        return
    est, region = _estimate(stack, cfg)
    levers = None
    for label, total in (("baseline", est.baseline_monthly), ("peak", est.peak_monthly)):
        ceiling = ceilings[label]
        if ceiling is None or total <= ceiling:
            continue
        if levers is None:
            levers = advise(stack.resources, usage=cfg.get("usage") or None, region=region, base=est)
        peak = label == "peak"
        saving = attrgetter("peak_saving_monthly" if peak else "baseline_saving_monthly")
        top = sorted(levers, key=saving, reverse=True)[:3]
        out.violation(
            f"Estimated {label} bill ${total:,.2f}/month ({region}) exceeds the ceiling "
            f"${ceiling:,.2f}. Biggest costs:\n{_itemize(est, peak)}"
            + (f"\n  (+ {len(est.unpriced)} unpriced resources)" if est.unpriced else "")
            + "".join(f"\n  lever: {lv.title}, saves ${saving(lv):,.2f} ({lv.trade_off})" for lv in top)
        )
    # Fail closed: what costs money and cannot be priced leaves the ceiling unverified.
    accepted = {str(t) for t in as_list(cfg.get("acceptedUnpricedTypes"))}
    for entry in est.unpriced:
        if entry.get("kind") == "unknown":
            _cannot_price(entry, "", out)
        elif entry["type"] not in accepted:
            out.violation(
                f"{_label(entry)} can cost money but the cost model cannot price it ({entry['reason']}), "
                "so the ceiling is not verified. Add its price to prices.json, or list "
                f"{entry['type']} in acceptedUnpricedTypes.",
                entry["urn"],
            )


@stack_policy(
    "cost-increase-ceiling",
    ADVISORY,
    Severity.LOW,
    schema={
        "baselineMonthlyUsd": setting(
            "The recorded baseline monthly bill (USD), written by CI or the preview.", kind="number"
        ),
        "baselinePeakMonthlyUsd": setting("The recorded peak monthly bill (USD).", kind="number"),
        "maxIncreaseUsd": setting("The largest allowed monthly increase (USD).", kind="number"),
        **_PRICING_SCHEMA,
    },
)
def cost_increase_ceiling(stack: Stack, cfg: Config, out: Findings) -> None:
    """A change does not raise the estimated monthly bill by more than the stack's limit over the recorded
    bill (applies only when a recorded bill is configured).

    Remediation: Review the cost of the change (the preview's --cost-baseline shows it per resource); if it is
    intended, record the new bill as the baseline or raise maxIncreaseUsd with the owner's agreement.
    """
    limit = as_float(cfg.get("maxIncreaseUsd"))
    recorded = {
        "baseline": as_float(cfg.get("baselineMonthlyUsd")),
        "peak": as_float(cfg.get("baselinePeakMonthlyUsd")),
    }
    # The engine gives a pack no previous state: without a recorded bill there is nothing to compare.
    if limit is None or all(v is None for v in recorded.values()):
        return
    est, region = _estimate(stack, cfg)
    for label, total in (("baseline", est.baseline_monthly), ("peak", est.peak_monthly)):
        before = recorded[label]
        if before is not None and total - before > limit:
            out.violation(
                f"Estimated {label} bill ${total:,.2f}/month ({region}) is ${total - before:,.2f} above the "
                f"recorded ${before:,.2f}, more than the allowed increase of ${limit:,.2f}. "
                f"Biggest costs:\n{_itemize(est, label == 'peak')}"
            )
    for entry in est.unpriced:
        _cannot_price(entry, ", so the increase may be larger", out)


POLICIES = [cost_ceiling, cost_increase_ceiling]
