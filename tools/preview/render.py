"""Human output, drawn like ``pulumi preview``: the resource tree, outputs, counts, policy
violations and undecided checks by level, stand-in values and the cost summary. At most
``REPORT_WIDTH`` columns unless asked for full width; ANSI colour only when asked (a terminal)."""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

PLAN = "create"
REPORT_WIDTH = 100
_MARK_W = 5  # " +   " before each tree row
_MIN_NAME_W = 12

_TYPE_TOKEN = re.compile(r"^(?P<pkg>[^:]+):(?P<module>[^:]*)/(?P<file>[^:/]+):(?P<name>[^:]+)$")


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


def short_type(token: str) -> str:
    """``pkg:module/file:Name`` as ``pkg:module:Name`` when the file is the type's own
    (``aws:ec2/securityGroup:SecurityGroup`` -> ``aws:ec2:SecurityGroup``), as ``pulumi preview``
    shortens types (pulumi/pulumi, pkg/backend/display, simplifyTypeName)."""
    found = _TYPE_TOKEN.match(token)
    if not found or found["file"] != found["name"][:1].lower() + found["name"][1:]:
        return token
    return f"{found['pkg']}:{found['module']}:{found['name']}"


def _fit(text: str, width: int | None) -> str:
    """``text`` cut to ``width`` columns with a trailing ellipsis (no limit when None)."""
    if width is None or len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


def _wrap(text: str, indent: str, width: int | None) -> list[str]:
    """Each line of ``text`` under ``indent``, wrapped to ``width`` (kept whole when None)."""
    lines: list[str] = []
    for line in text.splitlines() or [""]:
        if width is None:
            lines.append(indent + line)
            continue
        sub = line[: len(line) - len(line.lstrip())]
        wrapped = textwrap.wrap(
            line.strip(), width=width, initial_indent=indent + sub, subsequent_indent=indent + sub + "  "
        )
        lines += wrapped or [indent]
    return lines


def tree_rows(resources: Sequence[Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any]]]:
    """(prefix, resource) in display order: depth first, children in the order the program
    constructed them, prefixes drawn with ├─ / └─ / │ as pulumi does."""
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


def _child_lead(prefix: str) -> str:
    """The tree prefix under a row, for lines about its (unseen) children."""
    if prefix.endswith("├─ "):
        return prefix[:-3] + "│  "
    if prefix.endswith("└─ "):
        return prefix[:-3] + "   "
    return prefix


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _unseen_children(r: Mapping[str, Any]) -> str:
    """What the engine would show under a remote component and the preview cannot."""
    plan = r.get("children")
    if not isinstance(plan, Mapping):
        return "remote component: its children are not visible offline"
    subnets = plan.get("subnets") or {}
    kinds = ", ".join(f"{n} {kind}" for kind, n in subnets.items())
    total = sum(subnets.values())
    parts = [
        f"{_plural(plan['availabilityZones'], 'AZ')}",
        f"{_plural(total, 'subnet')}" + (f" ({kinds})" if kinds else ""),
        f"{_plural(plan['natGateways'], 'NAT gateway')} ({plan['natGatewayStrategy']})",
        _plural(plan["elasticIps"], "elastic IP"),
        _plural(plan["routeTables"], "route table"),
        "1 internet gateway",
    ]
    if plan.get("vpcEndpoints"):
        parts.append(_plural(plan["vpcEndpoints"], "VPC endpoint"))
    return "remote component, children not visible offline; from its inputs it creates: " + ", ".join(parts)


def _tree(doc: Mapping[str, Any], s: Style, width: int | None) -> list[str]:
    rows = tree_rows(doc["resources"])
    kind = (lambda t: t) if width is None else short_type
    type_w = max([len("Type")] + [len(p) + len(kind(r["type"])) for p, r in rows])
    name_w = max([len("Name")] + [len(r["name"]) for _, r in rows])
    if width is not None:
        spare = width - (_MARK_W + type_w + 2 + 2 + len(PLAN))
        name_w = max(min(name_w, spare), _MIN_NAME_W)
        type_w = min(type_w, width - (_MARK_W + name_w + 2 + 2 + len(PLAN)))
    out = [s.bold(f"{' ' * _MARK_W}{'Type':<{type_w}}  {'Name':<{name_w}}  Plan")]
    for prefix, r in rows:
        typ = _fit(prefix + kind(r["type"]), type_w)
        out.append(f" {s.green('+')}   {typ:<{type_w}}  {_fit(r['name'], name_w):<{name_w}}  {PLAN}")
        if r.get("remote"):
            lead = " " * _MARK_W + _child_lead(prefix) + "   "
            out += [s.dim(line) for line in _wrap(_unseen_children(r), lead, width)]
    return out


def _outputs(doc: Mapping[str, Any], width: int | None) -> list[str]:
    outputs = doc.get("outputs") or {}
    if not outputs:
        return []
    lines = ["", "Outputs:"]
    key_w = max(len(k) for k in outputs) + 1
    for key, out in outputs.items():
        value = out["value"]
        text = value if isinstance(value, str) else json.dumps(value)
        mark = {"mock-supplied": "  (mock)"}.get(out["status"], "")
        room = None if width is None else width - 4 - key_w - 1 - len(mark)
        lines.append(f"    {key + ':':<{key_w}} {_fit(text, room)}{mark}")
    unknown = sum(1 for o in outputs.values() if o["status"] == "unknown")
    mocked = sum(1 for o in outputs.values() if o["status"] == "mock-supplied")
    notes = []
    if mocked:
        notes.append(f"(mock): {mocked} made up offline (ids, ARNs, DNS names, suffixed names)")
    if unknown:
        notes.append(f"output<string>: {unknown} known only after deployment")
    lines += _wrap("; ".join(notes), "    ", width) if notes else []
    return lines


def _counts(doc: Mapping[str, Any], by_type: bool, width: int | None) -> list[str]:
    resources = doc["resources"]
    lines = ["", "Resources:", f"    + {len(resources)} to create"]
    kind = (lambda t: t) if width is None else short_type
    if by_type:
        counts = Counter(kind(r["type"]) for r in resources)
        lines.append("    by type:")
        lines += [f"    {n:>4}  {t}" for t, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        return lines
    by_urn = {r["urn"]: r for r in resources}
    children: dict[str, list[Mapping[str, Any]]] = {}
    for r in resources:
        children.setdefault(r.get("parent") or "", []).append(r)
    stacks = [r for r in resources if r["type"] == "pulumi:pulumi:Stack"]
    top = (
        children.get(stacks[0]["urn"], [])
        if stacks
        else [r for r in resources if r.get("parent") not in by_urn]
    )

    def below(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        found, frontier = [], [node["urn"]]
        while frontier:
            for kid in children.get(frontier.pop(), []):
                found.append(kid)
                frontier.append(kid["urn"])
        return found

    groups: list[tuple[str, list[Mapping[str, Any]]]] = []
    loose = stacks + [r for r in top if r.get("custom") or r.get("remote")]
    if loose:
        groups.append(("stack level", loose))
    for r in top:
        if not (r.get("custom") or r.get("remote")):
            groups.append((f"{r['type'].rsplit(':', 1)[-1]} {r['name']}", [r, *below(r)]))
    lines.append("    by top-level component, itself included (--by-type: one line per type):")
    for label, members in groups:
        counts = Counter(_kind(m["type"]) for m in members)
        listing = ", ".join(f"{n} {t}" for t, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(_fit(f"    {len(members):>4}  {label}: {listing}", width))
    return lines


def _kind(token: str) -> str:
    """The type's own name (``SecurityGroup``); providers keep their package (``providers:aws``)."""
    return token.split(":", 1)[1] if token.startswith("pulumi:providers:") else token.rsplit(":", 1)[-1]


def _where(v: Mapping[str, Any], by_urn: Mapping[str, Mapping[str, Any]], width: int | None) -> str:
    res = by_urn.get(v["urn"])
    if not res:
        return v["urn"] or "stack"
    kind = res["type"] if width is None else res["type"].rsplit(":", 1)[-1]
    return f"{kind}: {res['name']}"


def _policies(doc: Mapping[str, Any], s: Style, width: int | None) -> list[str]:
    packs = doc.get("policyPacks") or []
    if not packs:
        return []
    violations = doc.get("violations") or []
    undecided = (doc.get("undecided") or {}).get("checks") or []
    names = ", ".join(
        f"{p['name']}@v{p.get('version') or '?'} ({len(p['policies'])} policies)" for p in packs
    )
    out = ["", s.bold("Policies:") + f" {names}"]
    by_urn = {r["urn"]: r for r in doc["resources"]}
    if not violations:
        out.append(f"    {s.green('no violations')}")
    for level, paint, mark in (("mandatory", s.red, "✗"), ("advisory", s.yellow, "!")):
        found = [v for v in violations if v["enforcementLevel"] == level]
        if not found:
            continue
        out.append("    " + paint(s.bold(f"{level} ({len(found)})")))
        for v in sorted(found, key=lambda v: (v["policyName"], v["urn"])):
            sev = f" [{v['severity']}]" if v.get("severity") else ""
            head = f"        {mark} {v['policyName']}{sev}  ({_where(v, by_urn, width)})"
            out.append(paint(_fit(head, width)))
            out += _wrap(v["message"], " " * 10, width)
    if undecided:
        levels = Counter(u["enforcementLevel"] for u in undecided)
        split = ", ".join(f"{n} {level}" for level, n in sorted(levels.items()))
        out.append("    " + s.yellow(s.bold(f"undecided ({len(undecided)}: {split})")))
        out += _wrap(
            "checks that could not decide because a value is unknown until deployment; "
            "a mandatory one fails the preview",
            " " * 8,
            width,
        )
        for u in sorted(undecided, key=lambda u: (u["policyName"], u["urn"])):
            unknown = u["property"] if u["property"] != "?" else "not named"
            head = f"        ? {u['policyName']} [{u['enforcementLevel']}]  ({_where(u, by_urn, width)}; unknown: {unknown})"
            out.append(s.yellow(_fit(head, width)))
            out += _wrap(u["reason"], " " * 10, width)
    return out


def _stand_ins(doc: Mapping[str, Any], width: int | None) -> list[str]:
    found = doc.get("standIns") or []
    if not found:
        return []
    out = ["", "Stand-in values (made up offline; on AWS they come from the account):"]
    token_w = max(len(f["invoke"]) for f in found)
    for f in found:
        line = f"    {f['invoke']:<{token_w}}  x{f['calls']:<3} {f['example']}"
        out.append(_fit(line, width))
    return out


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _ceiling_line(label: str, total: float, ceiling: float | None) -> str:
    if ceiling is None:
        return f"    {label} USD {_money(total)}"
    used = total / ceiling * 100 if ceiling else 0.0
    room = ceiling - total
    verdict = f"{_money(room)} headroom" if room >= 0 else f"over by {_money(-room)}"
    return f"    {label} USD {_money(total)} of {_money(ceiling)} ceiling: {verdict} ({used:.0f}% used)"


def _cost(doc: Mapping[str, Any], s: Style, width: int | None, top: int) -> list[str]:
    cost = doc.get("cost")
    if not cost:
        return []
    cur = cost.get("currency", "USD")
    where = f", {cost['region']}" if cost.get("region") else ""
    out = ["", s.bold(f"Estimated monthly cost ({cur}{where}):")]
    ceiling = cost.get("ceiling") or {}
    base, peak = float(cost["baselineMonthly"]), float(cost["peakMonthly"])
    base_cap, peak_cap = ceiling.get("baselineMonthly"), ceiling.get("peakMonthly")
    if base == peak and base_cap == peak_cap:
        out.append(_ceiling_line("baseline = autoscaling peak:", base, base_cap))
    else:
        out.append(_ceiling_line("baseline:          ", base, base_cap))
        out.append(_ceiling_line("autoscaling peak:  ", peak, peak_cap))
    items = sorted(cost.get("items") or [], key=lambda i: -float(i.get("baselineMonthly") or 0))
    if items:
        out.append("    biggest items (baseline / peak):")
        for item in items[:top]:
            kind = str(item.get("type", "")).rsplit(":", 1)[-1]
            detail = f": {item['detail']}" if item.get("detail") else ""
            out += _amount_rows(
                float(item.get("baselineMonthly") or 0),
                float(item.get("peakMonthly") or 0),
                f"{item.get('name', '?')} ({kind}){detail}",
                width,
            )
        if len(items) > top:
            out.append(f"    ... and {len(items) - top} smaller items")
    unpriced = cost.get("unpriced") or []
    if unpriced:
        shown = ", ".join(f"{u.get('name', '?')} ({u.get('reason', '')})" for u in unpriced[:6])
        more = f", and {len(unpriced) - 6} more" if len(unpriced) > 6 else ""
        out += [
            s.yellow(line) for line in _wrap(f"not priced ({len(unpriced)}): {shown}{more}", "    ", width)
        ]
    return out + _advice(cost, width) + _change(cost, s, width)


def _amount_rows(base: float, peak: float, text: str, width: int | None, sign: str = "") -> list[str]:
    """Two right-aligned amounts, then ``text`` wrapped under itself: the layout of the cost items."""
    amounts = f"    {base:>{sign}10,.2f} {peak:>{sign}10,.2f}  "
    lines = _wrap(text, " " * len(amounts), width)
    return [amounts + lines[0].lstrip(), *lines[1:]]


def over_ceiling(cost: Mapping[str, Any]) -> bool:
    """A total above its ceiling (the preview then lists the levers without being asked)."""
    ceiling = cost.get("ceiling") or {}
    return any(
        isinstance(ceiling.get(key), (int, float)) and float(cost[key]) > ceiling[key]
        for key in ("baselineMonthly", "peakMonthly")
    )


def _advice(cost: Mapping[str, Any], width: int | None) -> list[str]:
    levers = cost.get("advice")
    if levers is None:
        return []
    why = "above the ceiling: " if over_ceiling(cost) else ""
    if not levers:
        return [f"    {why}no lever applies to this stack"]
    out = _wrap(
        f"{why}levers, each priced alone (not additive), saving per month baseline / peak:",
        "    ",
        width,
    )
    for lever in levers:
        out += _amount_rows(
            float(lever.get("baselineSavingMonthly") or 0),
            float(lever.get("peakSavingMonthly") or 0),
            f"{lever.get('title', '?')}\n  trade-off: {lever.get('tradeOff') or 'not stated'}",
            width,
        )
    return out


def _change(cost: Mapping[str, Any], s: Style, width: int | None) -> list[str]:
    change = cost.get("change")
    if not change:
        return []
    out = ["", s.bold("Cost of the change against the baseline estimate (USD per month):")]
    for label, key in (("baseline:          ", "baseline"), ("autoscaling peak:  ", "peak")):
        before, after, delta = (float(change[f"{key}{k}"]) for k in ("Before", "After", "Delta"))
        out.append(f"    {label} {_money(before)} -> {_money(after)} ({delta:+,.2f})")
    rows = change.get("changes") or []
    if not rows:
        out.append("    no resource changed its cost")
    else:
        out.append("    by resource (change baseline / peak):")
    for row in rows:
        kind = str(row.get("type") or "").rsplit(":", 1)[-1]
        status = row.get("status")
        detail = row.get("detailBefore") if status == "removed" else row.get("detailAfter")
        was = (
            f" (was: {row['detailBefore']})"
            if status == "changed" and row.get("detailBefore") != detail
            else ""
        )
        text = f"{row.get('name', '?')} ({kind}) {status}" + (f": {detail}" if detail else "") + was
        out += _amount_rows(float(row["baselineDelta"]), float(row["peakDelta"]), text, width, sign="+")
    for key, label in (("unpricedAdded", "now unpriced"), ("unpricedRemoved", "no longer unpriced")):
        names = ", ".join(str(u.get("name", "?")) for u in change.get(key) or [])
        if names:
            out += [s.yellow(line) for line in _wrap(f"{label}: {names}", "    ", width)]
    for note in change.get("notes") or []:
        out += _wrap(f"note: {note}", "    ", width)
    return out


def failed(doc: Mapping[str, Any]) -> bool:
    """A mandatory violation, or a mandatory check that could not decide, fails the preview."""
    return any(v["enforcementLevel"] == "mandatory" for v in doc.get("violations") or []) or any(
        u["enforcementLevel"] == "mandatory" for u in (doc.get("undecided") or {}).get("checks") or []
    )


def render(
    doc: Mapping[str, Any],
    style: Style,
    width: int | None = REPORT_WIDTH,
    by_type: bool = False,
    top_costs: int = 8,
    pack_logs: Sequence[str] = (),
) -> str:
    """The whole human report for one preview document (the --json document), at most
    ``width`` columns (None: no limit, full type names)."""
    s = style
    new_stack = doc.get("mode") == "new-stack"
    title = f"Previewing update ({doc['stack']}) of {doc['project']} (offline"
    title += ", brand-new stack: outputs unknown until created):" if new_stack else "):"
    out: list[str] = [_fit(title, width), ""]
    out += _tree(doc, s, width)
    out += _outputs(doc, width)
    out += _counts(doc, by_type, width)
    out += _policies(doc, s, width)
    logs = [f"{m['level']}: {m['message']}" for m in doc.get("programLog") or []]
    for title_, lines in (
        ("Diagnostics from the program:", logs),
        ("Diagnostics from the policy packs:", pack_logs),
    ):
        if lines:
            out += ["", s.bold(title_)]
            for line in lines:
                out += _wrap(line, "    ", width)
    out += _stand_ins(doc, width)
    out += _cost(doc, s, width, top_costs)

    violations = doc.get("violations") or []
    undecided = (doc.get("undecided") or {}).get("checks") or []
    mandatory = sum(1 for v in violations if v["enforcementLevel"] == "mandatory")
    blocked = sum(1 for u in undecided if u["enforcementLevel"] == "mandatory")
    out.append("")
    if failed(doc):
        reasons = []
        if mandatory:
            reasons.append(f"{mandatory} mandatory policy violation(s)")
        if blocked:
            reasons.append(f"{blocked} mandatory check(s) undecided")
        out.append(s.red(s.bold(f"Preview failed: {', '.join(reasons)}.")))
    elif doc.get("policyPacks"):
        out.append(s.green(s.bold("Preview passed: no mandatory policy violation.")))
    return "\n".join(out) + "\n"
