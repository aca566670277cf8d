"""Every stack the repository ships, previewed as CI previews it (issues 19 and 22): each
Pulumi.<stack>.yaml has its policy configuration, passes it, fits its cost ceiling, and decides
every check both as an update of an existing stack and as a stack that does not exist yet, with
the same verdicts in both modes."""

from __future__ import annotations

import io
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tools.preview import cli

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "policies"
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))


@cache
def preview(stack: str, new_stack: bool) -> tuple[int, dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    args = ["--stack", stack, "--cwd", str(ROOT), "--json", "--policy-pack", str(PACK)]
    args += ["--policy-pack-config", str(PACK / "config" / f"{stack}.json")]
    code = cli.main(args + (["--new-stack"] if new_stack else []), stdout=out, stderr=err)
    return code, (json.loads(out.getvalue()) if out.getvalue() else {}), err.getvalue()


def verdicts(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(v["policyName"], v["enforcementLevel"], v["urn"]) for v in doc["violations"]}


def test_the_repository_ships_the_stacks_the_readme_names() -> None:
    assert STACKS == ["dev", "prod", "staging"]
    readme = (ROOT / "README.md").read_text()
    for stack in STACKS:
        assert (PACK / "config" / f"{stack}.json").is_file(), f"no policy configuration for {stack}"
        assert f"`Pulumi.{stack}.yaml`" in readme or f"Pulumi.{stack}.yaml" in readme


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("new_stack", [False, True], ids=["update", "new-stack"])
def test_each_stack_passes_its_policy_configuration(stack: str, new_stack: bool) -> None:
    code, doc, err = preview(stack, new_stack)
    mandatory = [(v["policyName"], v["message"]) for v in doc.get("violations", [])
                 if v["enforcementLevel"] == "mandatory"]  # fmt: skip
    assert code == 0, mandatory or doc.get("undecided") or err
    assert doc["mode"] == ("new-stack" if new_stack else "update")
    # Every resource priced, and the baseline within the stack's own ceiling.
    cost = doc["cost"]
    assert cost["unpriced"] == [] and 0 < cost["baselineMonthly"] <= cost["ceiling"]["baselineMonthly"]


@pytest.mark.parametrize("stack", STACKS)
def test_a_new_stack_decides_every_check_with_the_verdicts_of_an_update(stack: str) -> None:
    _, update, _ = preview(stack, False)
    _, new, _ = preview(stack, True)
    assert new["undecided"] == {"total": 0, "byPolicy": {}, "checks": []}
    assert update["undecided"]["total"] == 0
    assert verdicts(new) == verdicts(update)


def test_staging_sits_between_dev_and_prod() -> None:
    """Issue 20's budgets: dev at most 55 USD a month, prod at most 200, staging in between."""
    baseline = {stack: preview(stack, False)[1]["cost"]["baselineMonthly"] for stack in STACKS}
    assert baseline["dev"] <= 55 < baseline["staging"] < 200 and baseline["prod"] <= 200


def test_the_readme_quotes_each_stacks_estimate_and_ceiling() -> None:
    """The Stacks table's estimate row is what the preview computes today, not a figure from an
    earlier design (the README promised 85 and 410 USD while the stacks cost otherwise)."""
    readme = (ROOT / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith("| estimate a month (ceiling) |")]
    cells = [cell.strip() for cell in row.strip("|").split("|")][1:]
    header = next(line for line in readme.splitlines() if line.startswith("| | dev |"))
    columns = [cell.strip() for cell in header.strip("|").split("|")][1:]
    for stack, cell in zip(columns, cells, strict=True):
        cost = preview(stack, False)[1]["cost"]
        assert cell.startswith(
            f"{cost['baselineMonthly']:,.2f} USD ({cost['ceiling']['baselineMonthly']:g})"
        ), (
            stack,
            cell,
        )
        if cost["peakMonthly"] != cost["baselineMonthly"]:
            assert f"{cost['peakMonthly']:,.2f} at peak ({cost['ceiling']['peakMonthly']:g})" in cell
