"""The pack's README lists every policy, with its default level and whether it is a stack policy."""

from __future__ import annotations

import re

from pulumi_policy import StackValidationPolicy
from wwhd_policies import ALL_POLICIES

from .conftest import PACK_DIR

CELL = r"((?:[^|\\]|\\.)+)"  # a table cell: anything but an unescaped pipe
ROW = re.compile(rf"^\| `(?P<name>[a-z0-9-]+)` \| (?P<level>[^|]+) \| {CELL} \| (?P<reads>{CELL}) \|")


def _rows() -> dict[str, re.Match[str]]:
    text = (PACK_DIR / "README.md").read_text()
    return {m["name"]: m for m in (ROW.match(line) for line in text.splitlines()) if m}


def test_every_policy_has_a_row_with_its_level_kind_and_reads() -> None:
    rows = _rows()
    for policy in ALL_POLICIES:
        row = rows.get(policy.name)
        assert row, f"{policy.name} is missing from the README's policy tables"
        level = policy.enforcement_level.value if policy.enforcement_level else ""
        assert row["level"].startswith(level), (policy.name, row["level"])
        assert ("*stack*" in row["level"]) is isinstance(policy, StackValidationPolicy), policy.name
        assert row["reads"].strip(), policy.name
    assert set(rows) == {p.name for p in ALL_POLICIES}
