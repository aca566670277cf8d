"""The cost of a change: two estimates (``CostEstimate.to_dict()`` documents, e.g. a previous
preview's ``--json`` output and the current one) compared per resource and in total.

Items are matched by URN and name (one resource can have several items, e.g. an EBS volume and
its snapshots). Pure: no prices are read, only the two documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def cost_block(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """The estimate inside a preview's JSON (its "cost" key), or the document itself."""
    inner = doc.get("cost")
    return inner if isinstance(inner, Mapping) and "items" not in doc else doc


def _amount(item: Mapping[str, Any] | None, key: str) -> float:
    return float((item or {}).get(key) or 0.0)


def compare(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Per-resource and total monthly differences, baseline and peak, from `before` to `after`.

    Returns ``{currency, region, baselineBefore, baselineAfter, baselineDelta, peakBefore,
    peakAfter, peakDelta, changes, unpricedAdded, unpricedRemoved, notes}``; each change has
    ``urn, name, type, status`` (added | removed | changed), the before/after/delta amounts and
    both details, biggest change first. Resources whose amounts did not move are left out."""
    old, new = cost_block(before), cost_block(after)

    def by_key(doc: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
        return {(str(i.get("urn", "")), str(i.get("name", ""))): i for i in doc.get("items") or []}

    old_items, new_items = by_key(old), by_key(new)
    changes = []
    for key in sorted(set(old_items) | set(new_items)):
        a, b = old_items.get(key), new_items.get(key)
        status = "added" if a is None else "removed" if b is None else "changed"
        row: dict[str, Any] = {
            "urn": key[0],
            "name": key[1],
            "type": (b or a or {}).get("type"),
            "status": status,
        }
        for label in ("baseline", "peak"):
            was, now = _amount(a, f"{label}Monthly"), _amount(b, f"{label}Monthly")
            row[f"{label}Before"], row[f"{label}After"], row[f"{label}Delta"] = was, now, round(now - was, 2)
        if status == "changed" and not row["baselineDelta"] and not row["peakDelta"]:
            continue
        row["detailBefore"] = (a or {}).get("detail")
        row["detailAfter"] = (b or {}).get("detail")
        changes.append(row)
    changes.sort(key=lambda c: (-abs(c["baselineDelta"]), -abs(c["peakDelta"]), c["name"]))

    old_unpriced = {str(u.get("urn")): u for u in old.get("unpriced") or []}
    new_unpriced = {str(u.get("urn")): u for u in new.get("unpriced") or []}
    notes = []
    for key in ("currency", "region"):
        if old.get(key) != new.get(key):
            notes.append(f"{key} differs: {old.get(key)} before, {new.get(key)} now")
    if new_unpriced:
        notes.append(f"{len(new_unpriced)} resource(s) are unpriced now: the totals leave them out")
    totals: dict[str, Any] = {}
    for label in ("baseline", "peak"):
        was, now = _amount(old, f"{label}Monthly"), _amount(new, f"{label}Monthly")
        totals.update({f"{label}Before": was, f"{label}After": now, f"{label}Delta": round(now - was, 2)})
    return {
        "currency": new.get("currency") or old.get("currency"),
        "region": new.get("region") or old.get("region"),
        **totals,
        "changes": changes,
        "unpricedAdded": [dict(u) for k, u in new_unpriced.items() if k not in old_unpriced],
        "unpricedRemoved": [dict(u) for k, u in old_unpriced.items() if k not in new_unpriced],
        "notes": notes,
    }
