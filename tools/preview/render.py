"""Human output, drawn like ``pulumi preview``: the resource tree, outputs, counts, policy
violations by level and the cost summary. ANSI colour only when asked (a terminal)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

PLAN = "create"


class Style:
    """ANSI styling that collapses to plain text when disabled."""

    def __init__(self, color: bool):
        self.color = color

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def yellow(self, text: str) -> str:
        return self._wrap("33", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)


def tree_rows(resources: Sequence[Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any]]]:
    """(prefix, resource) in display order: depth first, children in registration order,
    prefixes drawn with ├─ / └─ / │ as pulumi does."""
    urns = {r["urn"] for r in resources}
    children: dict[str, list[Mapping[str, Any]]] = {}
    roots: list[Mapping[str, Any]] = []
    for r in resources:
        parent = r.get("parent") or ""
        if parent and parent in urns and parent != r["urn"]:
            children.setdefault(parent, []).append(r)
        else:
            roots.append(r)
    rows: list[tuple[str, Mapping[str, Any]]] = []

    def walk(node: Mapping[str, Any], lead: str, branch: str) -> None:
        rows.append((lead + branch, node))
        kids = children.get(node["urn"], [])
        if branch == "├─ ":
            lead += "│  "
        elif branch == "└─ ":
            lead += "   "
        for i, kid in enumerate(kids):
            walk(kid, lead, "└─ " if i == len(kids) - 1 else "├─ ")

    for root in roots:
        walk(root, "", "")
    return rows


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def render(doc: Mapping[str, Any], style: Style, top_costs: int = 8, pack_logs: Sequence[str] = ()) -> str:
    """The whole human report for one preview document (the --json document)."""
    s = style
    out: list[str] = [f"Previewing update ({doc['stack']}) of {doc['project']} (offline):", ""]
    rows = tree_rows(doc["resources"])
    type_w = max([len("Type")] + [len(p) + len(r["type"]) for p, r in rows])
    name_w = max([len("Name")] + [len(r["name"]) for _, r in rows])
    out.append(s.bold(f"     {'Type':<{type_w}}  {'Name':<{name_w}}  Plan"))
    for prefix, r in rows:
        line = f"{prefix}{r['type']:<{type_w - len(prefix)}}  {r['name']:<{name_w}}  {PLAN}"
        out.append(f" {s.green('+')}   {line}")

    outputs = doc.get("outputs") or {}
    if outputs:
        out += ["", s.bold("Outputs:")]
        width = max(len(k) for k in outputs)
        for key in sorted(outputs):
            out.append(f"    {key + ':':<{width + 1}} {_value_text(outputs[key])}")

    counts = Counter(r["type"] for r in doc["resources"])
    out += ["", s.bold("Resources by type:")]
    for typ, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        out.append(f"    {n:>4}  {typ}")
    total = len(doc["resources"])
    out += ["", s.bold("Resources:"), "    " + s.green(f"+ {total} to create")]

    packs = doc.get("policyPacks") or []
    violations = doc.get("violations") or []
    if packs:
        names = ", ".join(
            f"{p['name']}@v{p.get('version') or '?'} ({len(p['policies'])} policies)" for p in packs
        )
        out += ["", s.bold("Policies:") + f" {names}"]
        by_urn = {r["urn"]: r for r in doc["resources"]}
        if not violations:
            out.append(f"    {s.green('no violations')}")
        for level, paint, mark in (("mandatory", s.red, "✗"), ("advisory", s.yellow, "!")):
            found = [v for v in violations if v["enforcementLevel"] == level]
            if not found:
                continue
            out.append("    " + paint(s.bold(f"{level} ({len(found)})")))
            for v in sorted(found, key=lambda v: (v["policyName"], v["urn"])):
                res = by_urn.get(v["urn"])
                where = f"{res['type']}: {res['name']}" if res else (v["urn"] or "stack")
                sev = f" [{v['severity']}]" if v.get("severity") else ""
                out.append(f"        {paint(mark)} {s.bold(v['policyName'])}{sev}  ({where})")
                for text in v["message"].splitlines():
                    out.append(f"          {text}")
    if pack_logs:
        out += ["", s.bold("Diagnostics from the policy packs:")]
        out += [f"    {line}" for line in pack_logs]

    cost = doc.get("cost")
    if cost:
        cur = cost.get("currency", "USD")
        where = f", {cost['region']}" if cost.get("region") else ""
        out += [
            "",
            s.bold(f"Estimated monthly cost ({cur}{where}):"),
            f"    baseline {cur} {cost['baselineMonthly']:,.2f}    at autoscaling peak {cur} {cost['peakMonthly']:,.2f}",
        ]
        items = sorted(cost.get("items") or [], key=lambda i: -float(i.get("baselineMonthly") or 0))
        if items:
            out.append("    biggest items (baseline / peak):")
            for item in items[:top_costs]:
                kind = str(item.get("type", "")).rsplit(":", 1)[-1]
                detail = f": {item['detail']}" if item.get("detail") else ""
                out.append(
                    f"    {float(item.get('baselineMonthly') or 0):>10,.2f} {float(item.get('peakMonthly') or 0):>10,.2f}"
                    f"  {item.get('name', '?')} ({kind}){detail}"
                )
            if len(items) > top_costs:
                out.append(f"    ... and {len(items) - top_costs} smaller items")
        unpriced = cost.get("unpriced") or []
        if unpriced:
            shown = ", ".join(f"{u.get('name', '?')} ({u.get('reason', '')})" for u in unpriced[:6])
            more = f", and {len(unpriced) - 6} more" if len(unpriced) > 6 else ""
            out.append(s.yellow(f"    not priced ({len(unpriced)}): {shown}{more}"))

    mandatory = sum(1 for v in violations if v["enforcementLevel"] == "mandatory")
    out.append("")
    if mandatory:
        out.append(s.red(s.bold(f"Preview failed: {mandatory} mandatory policy violation(s).")))
    elif packs:
        out.append(s.green(s.bold("Preview passed: no mandatory policy violation.")))
    return "\n".join(out) + "\n"
