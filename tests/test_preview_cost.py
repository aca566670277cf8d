"""The preview's cost advice (``--cost-advice``, and unasked above a ceiling) and the cost of a change
(``--cost-baseline FILE``).

The real runs preview the project's stacks in a subprocess, as CI runs them, and check each figure
against an independent computation: a lever's saving is the difference between two previews of the
program configured without and with the lever; the cost of a change is the difference between the
two documents' own totals and items. Errors (a bad file, no cost model) run in-process and stop
before the program runs."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.preview import cli
from tools.preview.analyzer import PolicyConfig
from tools.preview.cost import sorted_advice, with_recorded_bill
from tools.preview.render import REPORT_WIDTH, Style, render

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "policies"
FIXTURES = ROOT / "tests" / "fixtures"
TINY_PROGRAM = FIXTURES / "preview_program"
TINY_PACK = FIXTURES / "preview_pack"
API_SERVICE = "urn:pulumi:dev::wwhd::wwhd:index:WwhdService$aws:ecs/service:Service::wwhd-api"


def run_preview(
    stack: str, *extra: str, cwd: Path = ROOT, config: Path | None = None
) -> tuple[int, str, str]:
    """``python -m tools.preview`` on a stack with the project's pack, in a fresh process."""
    config = config or PACK / "config" / f"{stack}.json"
    cmd = [sys.executable, "-m", "tools.preview", "--stack", stack, "--cwd", str(cwd),
           "--policy-pack", str(PACK), "--policy-pack-config", str(config), *extra]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout, result.stderr


def preview_json(stack: str, *extra: str, cwd: Path = ROOT, config: Path | None = None) -> dict[str, Any]:
    code, out, err = run_preview(stack, "--json", *extra, cwd=cwd, config=config)
    assert code == 0, err[-3000:] or out[-3000:]
    return json.loads(out)


def program_copy(tmp: Path, stack: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    """The program in ``tmp`` with ``edit`` applied to its stack file's config."""
    for path in [*ROOT.glob("*.py"), *ROOT.glob("Pulumi*.yaml")]:
        shutil.copy(path, tmp / path.name)
    shutil.copytree(ROOT / "components", tmp / "components", ignore=shutil.ignore_patterns("__pycache__"))
    stack_file = tmp / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(stack_file.read_text(encoding="utf-8"))
    edit(doc["config"])
    stack_file.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return tmp


def x86_tasks(config: dict[str, Any]) -> None:
    assert config["wwhd:service"]["cpuArchitecture"] == "arm64", "dev's tasks are Graviton"
    config["wwhd:service"]["cpuArchitecture"] = "x86_64"


def single_az_database(config: dict[str, Any]) -> None:
    assert config["wwhd:database"]["multiAz"] is True, "prod's database is Multi-AZ"
    config["wwhd:database"]["multiAz"] = False


@pytest.fixture(scope="module")
def dev_x86(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dev with x86 tasks: the stack before the Graviton lever is applied."""
    return program_copy(tmp_path_factory.mktemp("dev-x86"), "dev", x86_tasks)


@pytest.fixture(scope="module")
def dev_doc() -> dict[str, Any]:
    return preview_json("dev")


@pytest.fixture(scope="module")
def dev_x86_file(dev_x86: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The --json output of the x86 dev preview, with its advice: an earlier estimate on file."""
    path = tmp_path_factory.mktemp("baseline") / "dev-x86.json"
    code, out, err = run_preview("dev", "--json", "--cost-advice", cwd=dev_x86)
    assert code == 0, err[-3000:]
    path.write_text(out, encoding="utf-8")
    return path


def lever(doc: dict[str, Any], lever_id: str) -> dict[str, Any]:
    found = [lv for lv in doc["cost"]["advice"] if lv["id"] == lever_id]
    assert len(found) == 1, [lv["id"] for lv in doc["cost"]["advice"]]
    return found[0]


# --- advice on real stacks ---------------------------------------------------------------------


def test_the_graviton_saving_is_what_arm64_tasks_save_in_the_preview(dev_x86_file, dev_doc):
    x86 = json.loads(dev_x86_file.read_text(encoding="utf-8"))
    graviton = lever(x86, "graviton")
    # Applying the lever through the program's own configuration saves exactly what it announced.
    assert graviton["baselineSavingMonthly"] == pytest.approx(
        x86["cost"]["baselineMonthly"] - dev_doc["cost"]["baselineMonthly"], abs=0.011
    )
    assert graviton["peakSavingMonthly"] == pytest.approx(
        x86["cost"]["peakMonthly"] - dev_doc["cost"]["peakMonthly"], abs=0.011
    )
    assert graviton["baselineSavingMonthly"] > 0
    assert [r["name"] for r in graviton["resources"]] == ["wwhd-api"]
    assert "arm64" in graviton["tradeOff"]
    # On the arm64 stack the lever is gone: it is computed from the stack, not listed from a catalogue.
    assert "advice" not in dev_doc["cost"], "under its ceiling and not asked: no advice"
    code, out, err = run_preview("dev", "--json", "--cost-advice")
    assert code == 0, err
    assert "graviton" not in {lv["id"] for lv in json.loads(out)["cost"]["advice"]}


def test_the_single_az_saving_is_what_a_single_az_prod_database_saves(tmp_path):
    prod = preview_json("prod", "--cost-advice")
    single = preview_json("prod", cwd=program_copy(tmp_path, "prod", single_az_database))
    saving = lever(prod, "rds-single-az")
    assert saving["baselineSavingMonthly"] == pytest.approx(
        prod["cost"]["baselineMonthly"] - single["cost"]["baselineMonthly"], abs=0.011
    )
    assert "failover" in saving["tradeOff"]
    levers = prod["cost"]["advice"]
    assert levers == sorted_advice(levers), "sorted by saving, then title"
    assert len({lv["title"] for lv in levers}) == len(levers)
    for lv in levers:
        assert set(lv) >= {
            "id",
            "title",
            "baselineSavingMonthly",
            "peakSavingMonthly",
            "tradeOff",
            "resources",
        }
        assert lv["baselineSavingMonthly"] > 0 or lv["peakSavingMonthly"] > 0


def test_the_text_report_lists_the_levers_after_the_cost_summary_in_100_columns(dev_x86, dev_x86_file):
    graviton = lever(json.loads(dev_x86_file.read_text(encoding="utf-8")), "graviton")
    code, out, err = run_preview("dev", "--cost-advice", cwd=dev_x86)
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= REPORT_WIDTH
    tail = out[out.index("Estimated monthly cost") :]
    assert "levers, each priced alone (not additive)" in tail and "above the ceiling" not in tail
    row = next(line for line in tail.splitlines() if "Graviton (arm64) Fargate tasks" in line)
    assert row.split()[:2] == [
        f"{graviton['baselineSavingMonthly']:,.2f}",
        f"{graviton['peakSavingMonthly']:,.2f}",
    ]
    assert "trade-off: every image must be built for arm64" in tail


def test_a_stack_over_its_ceiling_gets_the_levers_without_asking(tmp_path):
    config = json.loads((PACK / "config" / "dev.json").read_text(encoding="utf-8"))
    config["cost-ceiling"] |= {"maxMonthlyUsd": 40, "maxPeakMonthlyUsd": 40}
    (tmp_path / "dev.json").write_text(json.dumps(config), encoding="utf-8")
    code, out, _ = run_preview("dev", config=tmp_path / "dev.json")
    assert code == 1  # cost-ceiling is mandatory
    assert "above the ceiling: levers, each priced alone (not additive)" in out
    code, out, _ = run_preview("dev", "--json", config=tmp_path / "dev.json")
    advice = json.loads(out)["cost"]["advice"]
    assert advice and advice == sorted_advice(advice)


# --- the cost of a change ----------------------------------------------------------------------


def test_the_change_against_an_earlier_preview_names_the_resource_and_the_totals(dev_x86_file, dev_doc):
    before = json.loads(dev_x86_file.read_text(encoding="utf-8"))
    after = preview_json("dev", "--cost-baseline", str(dev_x86_file))
    change = after["cost"]["change"]
    for key in ("baseline", "peak"):
        assert change[f"{key}Before"] == before["cost"][f"{key}Monthly"]
        assert change[f"{key}After"] == after["cost"][f"{key}Monthly"] == dev_doc["cost"][f"{key}Monthly"]
        assert change[f"{key}Delta"] == pytest.approx(
            after["cost"][f"{key}Monthly"] - before["cost"][f"{key}Monthly"], abs=0.011
        )
    assert change["baselineDelta"] < 0
    assert [(c["urn"], c["status"]) for c in change["changes"]] == [(API_SERVICE, "changed")]

    def api(doc: dict[str, Any]) -> float:
        return next(i["baselineMonthly"] for i in doc["cost"]["items"] if i["urn"] == API_SERVICE)

    assert change["changes"][0]["baselineDelta"] == pytest.approx(api(after) - api(before), abs=0.011)
    assert "arm64" in change["changes"][0]["detailAfter"] and "x86" in change["changes"][0]["detailBefore"]

    code, out, err = run_preview("dev", "--cost-baseline", str(dev_x86_file))
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= REPORT_WIDTH
    section = out[out.index("Cost of the change") :]
    assert f"-> {after['cost']['baselineMonthly']:,.2f} ({change['baselineDelta']:+,.2f})" in section
    assert "wwhd-api (Service) changed" in section


def test_the_increase_policy_judges_the_change_against_the_baseline_file(dev_x86, tmp_path):
    """The file's totals become cost-increase-ceiling's recorded bill; its limit stays the config's."""
    cheaper = tmp_path / "dev-arm64.json"
    code, out, err = run_preview("dev", "--json")
    assert code == 0, err
    cheaper.write_text(out, encoding="utf-8")
    recorded = json.loads(out)["cost"]["baselineMonthly"]
    config = json.loads((PACK / "config" / "dev.json").read_text(encoding="utf-8"))
    for limit, violated in ((0.5, True), (5.0, False)):
        config["cost-increase-ceiling"] = {"enforcementLevel": "mandatory", "maxIncreaseUsd": limit}
        (tmp_path / "dev.json").write_text(json.dumps(config), encoding="utf-8")
        code, out, err = run_preview(
            "dev", "--json", "--cost-baseline", str(cheaper), cwd=dev_x86, config=tmp_path / "dev.json"
        )
        doc = json.loads(out)
        found = [v["message"] for v in doc["violations"] if v["policyName"] == "cost-increase-ceiling"]
        # x86 tasks cost more at baseline and at peak: one finding each, or none under the limit.
        assert (code, len(found)) == ((1, 2) if violated else (0, 0)), err
        assert doc["cost"]["change"]["baselineDelta"] > 0.5 and doc["cost"]["change"]["peakDelta"] > 0.5
        if violated:
            assert any(f"above the recorded ${recorded:,.2f}" in m for m in found), found


def test_the_recorded_bill_joins_the_config_with_cost_ceilings_pricing():
    config = {
        "cost-ceiling": PolicyConfig(
            "mandatory", {"maxMonthlyUsd": 200, "region": "eu-west-1", "usage": {"a": 1}}
        ),
        "cost-increase-ceiling": PolicyConfig("advisory", {"maxIncreaseUsd": 10, "baselineMonthlyUsd": 1}),
    }
    merged = with_recorded_bill(config, {"baselineMonthly": 187.64, "peakMonthly": 343.34})
    assert merged["cost-increase-ceiling"] == PolicyConfig(
        "advisory",
        {
            "region": "eu-west-1",
            "usage": {"a": 1},
            "maxIncreaseUsd": 10,
            "baselineMonthlyUsd": 187.64,
            "baselinePeakMonthlyUsd": 343.34,
        },
    )
    assert merged["cost-ceiling"] is config["cost-ceiling"]
    assert (
        with_recorded_bill({}, {"baselineMonthly": 1, "peakMonthly": 2})["cost-increase-ceiling"].level
        is None
    )


# --- errors: one line, exit 2, before the program runs -----------------------------------------


def in_process(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _dev_cost(**cost: Any) -> dict[str, Any]:
    base = {
        "baselineMonthly": 10.0,
        "peakMonthly": 10.0,
        "items": [{"urn": "u", "baselineMonthly": 1, "peakMonthly": 1}],
    }
    return {"project": "wwhd", "stack": "dev", "cost": base | cost}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "No such file"),
        ("{not json", "not valid JSON"),
        (json.dumps({"project": "wwhd", "stack": "dev"}), "not a --json document of the preview with a cost"),
        (json.dumps(["a"]), "not a --json document"),
        (
            json.dumps(_dev_cost() | {"stack": "prod"}),
            "previews stack 'prod' of project 'wwhd', not stack 'dev'",
        ),
        (json.dumps(_dev_cost(peakMonthly="10")), "cost.peakMonthly is not a number"),
        (json.dumps(_dev_cost(items={})), "cost.items is not a list"),
        (json.dumps(_dev_cost(items=[{"urn": "u", "baselineMonthly": 1}])), "cost.items[0] (u) has no"),
        (json.dumps(_dev_cost(items=[{"name": "x"}, 3])), "cost.items[0] has no urn (and 1 more)"),
    ],
    ids=[
        "missing",
        "not-json",
        "no-cost",
        "not-an-object",
        "other-stack",
        "bad-total",
        "items-not-list",
        "item-without-amounts",
        "items-without-urn",
    ],
)
def test_a_wrong_baseline_file_is_one_clear_error_and_exit_2(tmp_path, content, says):
    path = tmp_path / "before.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = in_process("--stack", "dev", "--policy-pack", str(PACK), "--cost-baseline", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: cost baseline {path}: ") and says in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("option", [["--cost-advice"], ["--cost-baseline", "before.json"]])
def test_cost_options_without_a_pack_cost_model_exit_2(tmp_path, option):
    (tmp_path / "before.json").write_text(
        json.dumps({"project": "tiny", "stack": "test", "cost": _dev_cost()["cost"]})
    )
    option = [str(tmp_path / o) if o.endswith(".json") else o for o in option]
    code, _, err = in_process("--stack", "test", "--cwd", str(TINY_PROGRAM), *option)
    assert code == 2
    assert f"error: {option[0]} needs a policy pack that ships a cost model, and no --policy-pack does" in err


@pytest.mark.parametrize(
    ("option", "function"), [(["--cost-advice"], "advise"), (["--cost-baseline"], "compare")]
)
def test_a_cost_model_without_the_function_an_option_needs_exits_2_naming_it(tmp_path, option, function):
    """The tiny pack's model only estimates; unasked advice is simply left out."""
    if option == ["--cost-baseline"]:
        code, out, err = in_process(
            "--stack", "test", "--cwd", str(TINY_PROGRAM), "--json", "--policy-pack", str(TINY_PACK)
        )
        assert code == 1 and "advice" not in json.loads(out)["cost"], err
        (tmp_path / "before.json").write_text(out)
        option = [*option, str(tmp_path / "before.json")]
    code, _, err = in_process(
        "--stack", "test", "--cwd", str(TINY_PROGRAM), "--policy-pack", str(TINY_PACK), *option
    )
    assert code == 2
    assert f"{option[0]} needs {function}() in the cost model, and tiny_policies.cost_model has none" in err


# --- rendering ---------------------------------------------------------------------------------


def _doc(**cost: Any) -> dict[str, Any]:
    base = {"currency": "USD", "region": "us-west-2", "baselineMonthly": 120.0, "peakMonthly": 300.0,
            "items": [], "unpriced": [], "ceiling": {"baselineMonthly": 100, "peakMonthly": 400}}  # fmt: skip
    return {"project": "p", "stack": "s", "resources": [], "outputs": {}, "policyPacks": [],
            "violations": [], "cost": base | cost}  # fmt: skip


LEVERS = [
    {"id": "b", "title": "Bravo " + "long words " * 12, "baselineSavingMonthly": 30.0, "peakSavingMonthly": 80.5,
     "tradeOff": "the trade-off of bravo, " * 8, "resources": []},
    {"id": "a", "title": "Alpha", "baselineSavingMonthly": 30.0, "peakSavingMonthly": 80.5, "tradeOff": "",
     "resources": []},
    {"id": "c", "title": "Charlie", "baselineSavingMonthly": 1234.5, "peakSavingMonthly": 0.0,
     "tradeOff": "short", "resources": []},
]  # fmt: skip


def test_levers_are_ordered_by_saving_then_title():
    assert [lv["id"] for lv in sorted_advice(LEVERS)] == ["c", "a", "b"]
    assert sorted_advice(list(reversed(LEVERS))) == sorted_advice(LEVERS)


def test_the_advice_section_wraps_to_the_width_and_wide_keeps_lines_whole():
    doc = _doc(advice=sorted_advice(LEVERS))
    text = render(doc, Style(False))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= REPORT_WIDTH
    section = lines[next(i for i, line in enumerate(lines) if "levers" in line) :]
    assert section[0].startswith("    above the ceiling: levers")  # 120 > 100
    assert section[1].split()[:3] == ["1,234.50", "0.00", "Charlie"]
    assert section[2].strip() == "trade-off: short"
    amount_rows = [line for line in section[1:] if line[:14].strip()]
    assert [line.split()[2] for line in amount_rows] == ["Charlie", "Alpha", "Bravo"]
    assert any("trade-off: not stated" in line for line in section)
    wide = render(doc, Style(False), width=None)
    assert any(("Bravo " + "long words " * 12).strip() in line for line in wide.splitlines())
    assert "no lever applies" in render(_doc(advice=[], baselineMonthly=50.0), Style(False))
    assert "levers" not in render(_doc(), Style(False))


def test_the_change_section_signs_each_delta_and_says_what_was_removed():
    change = {
        "baselineBefore": 100.0, "baselineAfter": 112.3, "baselineDelta": 12.3,
        "peakBefore": 200.0, "peakAfter": 150.0, "peakDelta": -50.0,
        "changes": [
            {"urn": "u1", "name": "api", "type": "aws:ecs/service:Service", "status": "changed",
             "baselineDelta": 20.0, "peakDelta": -40.0, "detailBefore": "2 tasks", "detailAfter": "3 tasks"},
            {"urn": "u2", "name": "db", "type": "aws:rds/instance:Instance", "status": "removed",
             "baselineDelta": -7.7, "peakDelta": -10.0, "detailBefore": "db.t4g.small", "detailAfter": None},
        ],
        "unpricedAdded": [{"name": "queue"}], "unpricedRemoved": [], "notes": ["region differs"],
    }  # fmt: skip
    lines = render(_doc(change=change), Style(False)).splitlines()
    start = lines.index("Cost of the change against the baseline estimate (USD per month):")
    section = lines[start : start + 9]
    assert section[1].split() == ["baseline:", "100.00", "->", "112.30", "(+12.30)"]
    assert section[2].split() == ["autoscaling", "peak:", "200.00", "->", "150.00", "(-50.00)"]
    assert section[4].split()[:4] == ["+20.00", "-40.00", "api", "(Service)"]
    assert section[4].endswith("changed: 3 tasks (was: 2 tasks)")
    assert section[5].split() == ["-7.70", "-10.00", "db", "(Instance)", "removed:", "db.t4g.small"]
    assert section[6].strip() == "now unpriced: queue" and section[7].strip() == "note: region differs"
    unchanged = dict(change, changes=[], unpricedAdded=[], notes=[])
    assert "no resource changed its cost" in render(_doc(change=unchanged), Style(False))


def test_the_pull_request_comment_tables_each_changed_resource_with_cells_escaped(tmp_path):
    from tools.preview.comment import MARKER, main

    change = {
        "baselineBefore": 10.0, "baselineAfter": 25.0, "baselineDelta": 15.0,
        "peakBefore": 10.0, "peakAfter": 25.0, "peakDelta": 15.0,
        "changes": [{"name": "db", "type": "aws:rds/instance:Instance", "status": "added", "baselineDelta": 15.0,
                     "peakDelta": 15.0, "detailAfter": "db.t4g.small | Multi-AZ"}],
        "unpricedAdded": [{"name": "queue"}], "notes": [],
    }  # fmt: skip
    (tmp_path / "prod.json").write_text(json.dumps({"stack": "prod", "cost": {"change": change}}))
    (tmp_path / "dev.json").write_text("")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([str(tmp_path / "prod.json"), str(tmp_path / "dev.json")]) == 0
    text = out.getvalue()
    assert text.startswith(MARKER)
    lines = text.splitlines()
    assert lines.index("| dev | preview failed (see the job log) | | | |") < lines.index(
        "| prod | $10.00 → $25.00 | **+$15.00** | $10.00 → $25.00 | **+$15.00** |"
    )
    assert "<details><summary>prod: 1 resource(s) change cost</summary>" in lines
    assert "| db | Instance | added | +$15.00 | +$15.00 | db.t4g.small \\| Multi-AZ |" in lines
    assert "- now unpriced: queue" in lines


def test_the_ceiling_is_read_once_the_pack_is_configured_even_when_the_program_finishes_first(
    tmp_path, monkeypatch
):
    """The estimate is asked for before AnalyzeStack, with the ceilings of the cost-ceiling
    policy as the pack got them. On a loaded machine the pack may still be starting when the
    program is done (here its connection is held back 2 s): the preview must wait for the pack's
    configuration, not read none."""
    from tools.preview.analyzer import PolicyPack

    connect = PolicyPack.connect

    def slow_connect(self: PolicyPack, *args: Any, **kwargs: Any) -> None:
        time.sleep(2)
        connect(self, *args, **kwargs)

    monkeypatch.setattr(PolicyPack, "connect", slow_connect)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"cost-ceiling": {"maxMonthlyUsd": 1234, "maxPeakMonthlyUsd": 2345}}))
    code, out, err = in_process("--stack", "test", "--cwd", str(TINY_PROGRAM), "--json",
                                "--policy-pack", str(PACK), "--policy-pack-config", str(config))  # fmt: skip
    assert code in (0, 1), err
    assert json.loads(out)["cost"]["ceiling"] == {"baselineMonthly": 1234, "peakMonthly": 2345}
