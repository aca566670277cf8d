"""The README's generated sections are current; its configuration table documents every key of
the model with its type, default per environment and meaning; its example is a real run of the
dev preview; its benchmark figures are those of the committed results file (nothing is timed here)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from pydantic import BaseModel

import stack_config
from tools import BENCH_RESULTS, readme
from tools.readme import Row, check, config_rows, render

ROOT = Path(__file__).resolve().parent.parent


def row(key: str) -> Row:
    return next(r for r in config_rows() if r.key == key)


def test_the_readme_is_what_the_generators_write() -> None:
    diff = check()
    assert not diff, f"README.md is stale; run `python -m tools.readme`:\n{diff}"


def test_check_exits_1_with_a_diff_on_a_stale_readme_and_a_run_rewrites_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    current = (ROOT / "README.md").read_text()
    stale = tmp_path / "README.md"
    stale.write_text(current.replace("| `wwhd:network.cidr` | string |", "| `wwhd:network.cidr` | text |"))
    monkeypatch.setattr(readme, "README", stale)
    assert readme.main(["--check"]) == 1
    diff = capsys.readouterr().out
    assert "-| `wwhd:network.cidr` | text |" in diff and "+| `wwhd:network.cidr` | string |" in diff
    assert readme.main([]) == 0 and stale.read_text() == current
    assert readme.main(["--check"]) == 0 and capsys.readouterr().out == ""


def test_a_section_without_a_generator_is_refused() -> None:
    with pytest.raises(ValueError, match="without a generator: costs"):
        render("<!-- generated:costs -->\nold\n<!-- /generated:costs -->\n")


def test_render_replaces_only_between_the_markers() -> None:
    text = "before\n<!-- generated:config -->\nSTALE BODY\n<!-- /generated:config -->\nafter\n"
    out = render(text)
    assert out.startswith("before\n<!-- generated:config -->\n| key | type |")
    assert out.endswith("|\n<!-- /generated:config -->\nafter\n") and "STALE BODY" not in out
    assert render(out) == out


def _models() -> list[type[BaseModel]]:
    """Every model stack_config.py defines, found by looking, not by walking the table's way."""
    return [
        obj
        for _, obj in inspect.getmembers(stack_config, inspect.isclass)
        if issubclass(obj, BaseModel) and obj.__module__ == "stack_config" and obj is not stack_config._Model
    ]


def test_the_table_lists_every_field_of_every_model() -> None:
    documented = {r.source for r in config_rows()}
    missing = [
        f"{model.__name__}.{name}"
        for model in _models()
        for name in model.model_fields
        if (model, name) not in documented
    ]
    assert len(_models()) >= 10 and not missing, f"fields missing from the README table: {missing}"
    secrets = {r.key for r in config_rows() if r.source is None}
    assert secrets == {f"wwhd:{key}" for key in stack_config.SECRET_KEYS}


def test_every_row_has_a_type_and_a_meaning() -> None:
    rows = config_rows()
    assert len({r.key for r in rows}) == len(rows)
    assert all(r.kind and r.meaning.endswith((".", "?", "!")) for r in rows), [
        r.key for r in rows if not r.meaning
    ]


def test_a_field_without_a_docstring_stops_the_generator() -> None:
    class Undocumented(stack_config._Model):
        given: int = 1

    with pytest.raises(ValueError, match=r"Undocumented.given \(wwhd:x.given\) has no docstring"):
        list(readme._rows(Undocumented, "wwhd:x", {"dev": {}, "staging": {}, "prod": {}}))


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("wwhd:service.healthCheckGraceSeconds", "integer 0-2147483647"),
        ("wwhd:service.desiredCount", "integer from 0"),
        ("wwhd:network.flowLogs", "`true`/`false`"),
        ("wwhd:network.natGateways", "one of `single`/`one-per-az`/`instance`"),
        ("wwhd:network.existingVpc.publicSubnetIds", "list of strings (at least 2)"),
        ("wwhd:monitoring.thresholds.error4xxRatePercent", "number above 0, up to 100"),
        ("wwhd:monitoring.thresholds.dbFreeStoragePercent", "number above 0, below 100"),
        ("wwhd:monitoring.alarmEmails", "list of e-mail addresses"),
        ("wwhd:services[].paths", "list of strings (at most 5)"),
        ("wwhd:services", "list of mappings (keys below)"),
        ("wwhd:tags", "mapping of strings to strings"),
        ("wwhd:openaiApiKey", "secret string"),
    ],
)
def test_types_in_words_come_from_the_models_metadata(key: str, kind: str) -> None:
    assert row(key).kind == kind


@pytest.mark.parametrize(
    ("key", "defaults"),
    [
        ("aws:region", ("required",) * 3),
        ("wwhd:images.apiTag", ("required",) * 3),
        ("wwhd:service.cpu", ("`512`", "`1024`", "`1024`")),
        ("wwhd:loadBalancer.idleTimeout", ("`60`", "`300`", "`600`")),
        ("wwhd:database.instanceClass", ("`db.t4g.micro`", "`db.t4g.micro`", "`db.t4g.small`")),
        ("wwhd:images.qdrant", ("`qdrant/qdrant:v1.16.2`",) * 3),
        ("wwhd:qdrant.amiId", ("unset",) * 3),
        ("wwhd:service.allowOrigins", ('`["https://wwhd.amplifyapp.com"]`',) * 3),
        ("wwhd:service.deployment", ("(keys below)",) * 3),
        ("wwhd:services[].port", ("unset",) * 3),
        ("wwhd:services[].name", ("required",) * 3),
    ],
)
def test_defaults_are_what_a_stack_file_without_the_key_gets(key: str, defaults: tuple[str, ...]) -> None:
    assert row(key).defaults == defaults


def test_cells_escape_pipes_and_one_default_stands_for_three_equal_ones() -> None:
    table = readme.config_table()
    assert "| `wwhd:service.memory` | integer | `2048` |" in table
    assert "| `wwhd:service.cpu` | integer | `512` / `1024` / `1024` |" in table
    assert readme._cell("a | b") == "a \\| b"


def test_the_example_is_the_dev_preview_of_a_real_run_each_paragraph_cut() -> None:
    text = readme.example_report()
    assert text.startswith("```\nPreviewing update (dev) of wwhd (offline):\n") and text.endswith("```\n")
    paragraphs = text.strip("`\n").split("\n\n")
    assert all(len(p.split("\n")) <= readme.EXAMPLE_LINES + 1 for p in paragraphs)
    assert any(p.endswith("\n ...") for p in paragraphs)  # the resource tree is longer than that
    assert paragraphs[-1] == "Preview passed: no mandatory policy violation."


ANCHOR = {"runs": 10, "wall": 2.41, "min": 2.2, "max": 3.05, "synth": 1.12, "lint": 1.2, "ratio": 0.4,
          "ratioMin": 0.35, "ratioMax": 0.52, "ratioTarget": 0.45, "issueSeconds": 2.2, "resources": 139,
          "nag": {"error": 28, "warning": 0}, "cfnLint": {"error": 0, "warning": 10, "informational": 0},
          "versions": {"node": "20.20.2", "aws-cdk-lib": "2.276.0", "cdk-nag": "2.38.2", "cfn-lint": "1.58.0"}}  # fmt: skip


def _results(tmp_path: Path, anchor: dict) -> Path:
    results = tmp_path / "bench.json"
    results.write_text(
        json.dumps(
            {
                "date": "2030-01-02",
                "python": "3.11.7",
                "cpu": "Some CPU @ 2.50GHz",
                "cores": 2,
                "loadAverage": 0.4,
                "preview": {"stack": "prod", "runs": 10, "target": 1.0, "wall": 0.93, "min": 0.9, "max": 1.2,
                            "program": 0.61, "policies": 0.08, "cost": 0.04, "total": 0.8},
                "anchor": anchor,
                "pack": {"seconds": {"500": 0.45, "5000": 4.9}, "ratio": 10.89, "repeats": 3,
                         "target": 10.0, "ratioTarget": 12.0},
            }
        )
    )  # fmt: skip
    return results


def test_the_bench_table_renders_the_results_file(tmp_path: Path) -> None:
    table = readme.bench_table(_results(tmp_path, ANCHOR))
    assert table.startswith(
        "Measured on 2030-01-02 with Python 3.11.7 on 2 cores of Some CPU @ 2.50GHz, load average 0.4"
    )
    assert (
        "| Offline preview of prod, start to finish, a fresh process each run (median of 10) | <= 1 s |"
        in table
    )
    assert (
        "0.93 s: program 0.61 s, policies 0.08 s, cost 0.04 s (in-process total 0.80 s; spread 0.90-1.20 s)"
        in table
    )
    assert "| The same, 5,000 resources | < 10 s | 4.90 s |" in table
    assert "| 5,000 / 500 | < 12 (linear: 10) | 10.9 |" in table


def test_the_bench_table_puts_the_preview_against_the_cdk_anchor(tmp_path: Path) -> None:
    table = readme.bench_table(_results(tmp_path, ANCHOR))
    anchor = next(line for line in table.splitlines() if line.startswith("| CDK anchor"))
    assert "139 CloudFormation resources" in anchor and "cdk-nag 2.38.2, cfn-lint 1.58.0" in anchor
    assert anchor.endswith(
        "| about 2.2 s where the 1 s target was set | 2.41 s: synth + cdk-nag 1.12 s, cfn-lint 1.20 s "
        "(spread 2.20-3.05 s); found cdk-nag 28 errors and 0 warnings, cfn-lint 0 errors and 10 warnings |"
    )
    assert "| <= 0.45 (1 s / 2.2 s) | 0.40 (spread 0.35-0.52) |" in table
    # the preview's row comes first, the pack's after the ratio
    assert table.index("| Offline preview") < table.index("| CDK anchor") < table.index("| Preview / anchor")
    assert table.index("| Preview / anchor") < table.index("| Policy pack alone")


def test_a_skipped_anchor_is_one_row_that_says_why(tmp_path: Path) -> None:
    table = readme.bench_table(_results(tmp_path, {"skipped": "node is not installed"}))
    assert "| CDK anchor (`bench/cdk-anchor`) |  | not measured: node is not installed |" in table
    assert "Preview / anchor" not in table


def test_the_committed_results_file_names_no_machine() -> None:
    doc = json.loads(BENCH_RESULTS.read_text())
    assert set(doc) == {"date", "python", "cpu", "cores", "loadAverage", "preview", "anchor", "pack"}
    assert "/" not in json.dumps(doc)  # no paths
