"""The pull-request comment on the cost of a change: ``python -m tools.preview.comment FILE...``
prints it as markdown.

Each FILE is the head's ``--json`` document of one stack, named ``<stack>.json``, previewed with
``--cost-baseline`` against the base branch's document when the base has the stack. A FILE that
is empty or missing stands for a preview that failed. The comment starts with MARKER, which the
workflow looks for to update its earlier comment instead of adding one per push.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MARKER = "<!-- wwhd-cost-change -->"


def _usd(x: float) -> str:
    return f"${x:,.2f}"


def _delta(x: float) -> str:
    return f"{'+' if x > 0 else '-' if x < 0 else '±'}${abs(x):,.2f}"


def _cell(text: Any) -> str:
    """A markdown table cell: pipes escaped, no line breaks."""
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def _stack_rows(stack: str, doc: Mapping[str, Any] | None) -> tuple[str, Mapping[str, Any] | None]:
    """The summary row of one stack, and its change when there is one."""
    if doc is None:
        return f"| {stack} | preview failed (see the job log) | | | |", None
    cost = doc.get("cost")
    if not isinstance(cost, Mapping):
        return f"| {stack} | no cost estimate (no pack cost model) | | | |", None
    change = cost.get("change")
    if not isinstance(change, Mapping):
        base, peak = _usd(cost["baselineMonthly"]), _usd(cost["peakMonthly"])
        return f"| {stack} | {base} | new on this branch | {peak} | new on this branch |", None
    cells = [
        f"{_usd(change[f'{key}Before'])} → {_usd(change[f'{key}After'])} | **{_delta(change[f'{key}Delta'])}**"
        for key in ("baseline", "peak")
    ]
    return f"| {stack} | {cells[0]} | {cells[1]} |", change


def _details(stack: str, change: Mapping[str, Any]) -> list[str]:
    rows = change.get("changes") or []
    extra = [
        f"{label}: {', '.join(_cell(u.get('name')) for u in change.get(key) or [])}"
        for key, label in (("unpricedAdded", "now unpriced"), ("unpricedRemoved", "no longer unpriced"))
        if change.get(key)
    ] + [_cell(note) for note in change.get("notes") or []]
    if not rows and not extra:
        return []
    out = ["", f"<details><summary>{stack}: {len(rows)} resource(s) change cost</summary>", ""]
    if rows:
        out += ["| Resource | Type | | Baseline | Peak | Now |", "|---|---|---|---:|---:|---|"]
        for row in rows:
            detail = row.get("detailBefore") if row.get("status") == "removed" else row.get("detailAfter")
            kind = str(row.get("type") or "").rsplit(":", 1)[-1]
            out.append(
                f"| {_cell(row.get('name'))} | {_cell(kind)} | {row.get('status')} | "
                f"{_delta(row['baselineDelta'])} | {_delta(row['peakDelta'])} | {_cell(detail)} |"
            )
    out += [""] + [f"- {line}" for line in extra] if extra else []
    return [*out, "", "</details>"]


def comment(docs: Mapping[str, Mapping[str, Any] | None]) -> str:
    """The markdown comment for these stacks' documents (None: the preview failed)."""
    lines = [
        MARKER,
        "### Monthly cost of this change",
        "",
        "Offline estimate of the policy pack's cost model, USD per month: base branch → this "
        "pull request, at baseline (desired task counts) and at autoscaling peak.",
        "",
        "| Stack | Baseline | Change | Autoscaling peak | Change |",
        "|---|---:|---:|---:|---:|",
    ]
    details: list[str] = []
    totals = {"baseline": 0.0, "peak": 0.0}
    for stack in sorted(docs):
        row, change = _stack_rows(stack, docs[stack])
        lines.append(row)
        if change is not None:
            totals = {k: totals[k] + float(change[f"{k}Delta"]) for k in totals}
            details += _details(stack, change)
    lines.append(f"| **all stacks** | | **{_delta(totals['baseline'])}** | | **{_delta(totals['peak'])}** |")
    return "\n".join(lines + details) + "\n"


def read(path: Path) -> Mapping[str, Any] | None:
    """A head document, or None when the preview left it missing or empty (it failed)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    return json.loads(text) if text.strip() else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.preview.comment",
        description="Print the pull-request comment on the cost of a change, as markdown.",
    )
    parser.add_argument(
        "files", nargs="+", type=Path, metavar="FILE", help="<stack>.json documents of the head"
    )
    args = parser.parse_args(argv)
    sys.stdout.write(comment({path.stem: read(path) for path in args.files}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
