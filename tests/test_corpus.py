"""The corpus run (``python -m tools.corpus``): it previews the public programs listed in
tests/fixtures/corpus and tabulates exit codes, findings and their verdicts. Exercised here on
programs of our own laid out as a checkout."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import yaml

from tools import corpus

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
LOOKUPS = FIXTURES / "preview_lookups"


def test_the_corpus_lists_20_programs_with_their_stack_files_and_the_verdicts_name_them():
    listed = corpus.load_corpus()
    dirs = {e.dir for e in listed.examples}
    assert len(dirs) >= 20
    assert not dirs & set(listed.excluded)
    verdicts = corpus.load_verdicts()
    assert {v.example for v in verdicts.values()} <= dirs
    assert all(v.why.strip() for v in verdicts.values())
    # A false finding is a known issue of the pack or the preview, and says whose.
    assert all(
        v.why.startswith(("Pack bug", "Preview bug")) for v in verdicts.values() if v.verdict == "false"
    )


def test_a_malformed_list_or_verdict_is_refused(tmp_path):
    bad_list = tmp_path / "examples.yaml"
    bad_list.write_text("source: s\ncommit: c\nstack: s\nexamples:\n  - dir: a\n    config: {}\n")
    with pytest.raises(ValueError, match=r"examples\[0\] needs .* aws:region"):
        corpus.load_corpus(bad_list)
    bad_verdicts = tmp_path / "verdicts.csv"
    bad_verdicts.write_text(f"{HEADER}a,violation,p,r,maybe,unsure\n")
    with pytest.raises(ValueError, match=r"verdicts.csv:2: .* verdict 'maybe'"):
        corpus.load_verdicts(bad_verdicts)


HEADER = "example,finding,policy,resource,verdict,why\n"
TINY_PACK = FIXTURES / "preview_pack"
UNDECIDED_PACK = FIXTURES / "preview_undecided_pack"


def checkout_of(tmp_path: Path, programs: dict[str, Path]) -> Path:
    """Programs of our own laid out as a checkout, without their stack files."""
    checkout = tmp_path / "checkout"
    for target, source in programs.items():
        shutil.copytree(source, checkout / target, ignore=shutil.ignore_patterns("Pulumi.*.yaml"))
    return checkout


def run_corpus(
    tmp_path: Path, checkout: Path, examples: list[dict], verdicts: str, *extra: str
) -> tuple[int, str]:
    listing = tmp_path / "examples.yaml"
    listing.write_text(
        yaml.safe_dump(
            {
                "source": "example/programs",
                "commit": "0123456789abcdef",
                "stack": "corpus",
                "examples": examples,
            }
        )
    )
    verdict_file = tmp_path / "verdicts.csv"
    verdict_file.write_text(HEADER + verdicts)
    out = io.StringIO()
    code = corpus.main(
        [str(checkout), "--examples", str(listing), "--verdicts", str(verdict_file), *extra], out=out
    )
    return code, out.getvalue()


def rows_of(text: str) -> dict[str, list[str]]:
    return {
        cells[0]: cells
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| example")
        for cells in [[c.strip() for c in line.strip("|").split(" | ")]]
    }


def test_the_corpus_run_tabulates_each_program_and_leaves_the_checkout_untouched(tmp_path):
    checkout = checkout_of(
        tmp_path, {"nested/web": FIXTURES / "preview_program", "stuck": FIXTURES / "preview_stuck"}
    )
    before = sorted(p.relative_to(checkout) for p in checkout.rglob("*"))
    web = {"aws:region": "eu-west-1", "tiny:openPort": 22, "tiny:apiKey": {"secure": "not-decryptable"}}
    code, text = run_corpus(
        tmp_path,
        checkout,
        [{"dir": "nested/web", "config": web}, {"dir": "stuck", "config": {"aws:region": "us-west-2"}}],
        "nested/web,violation,no-world-ingress,web-sg,real,port 22 open to the internet\n",
        # One limit for both: long enough for a real program on a loaded machine, which the stuck
        # one then waits out.
        "--policy-pack", str(TINY_PACK), "--timeout", "30",
    )  # fmt: skip
    assert code == 1  # one program does not preview
    rows = rows_of(text)
    _, exit_code, seconds, resources, violations, undecided, _, error = rows["nested/web"]
    assert (exit_code, resources, violations, undecided, error) == (
        "1",
        "6",  # the stack, a component, a group, a bucket, a secret and its version
        "no-world-ingress x1 (1 real)",
        "-",
        "",
    )
    assert float(seconds) > 0
    assert rows["stuck"][1] == "2"
    assert "did not finish within 30 s; 1 resource(s) still wait" in rows["stuck"][-1]
    assert "aws:s3/bucket:Bucket 'stuck'" in rows["stuck"][-1]
    assert "2 programs: 1 preview (exit 0: 0, exit 1: 1), 1 do not" in text
    assert "mandatory violation findings: 1 (1 real, 0 false, 0 unreviewed)" in text
    assert sorted(p.relative_to(checkout) for p in checkout.rglob("*")) == before


@pytest.mark.parametrize("mode", ["update", "new-stack"])
def test_undecided_mandatory_checks_are_findings_to_review_and_an_unreviewed_one_fails(tmp_path, mode):
    checkout = checkout_of(tmp_path, {"lookups": LOOKUPS})
    config = {"aws:region": "us-east-2", "lookups:networkStack": "org/net/dev"}
    extra = ["--policy-pack", str(UNDECIDED_PACK)] + (["--new-stack"] if mode == "new-stack" else [])
    code, text = run_corpus(tmp_path, checkout, [{"dir": "lookups", "config": config}], "", *extra)
    _, exit_code, _, _, violations, undecided, _, _ = rows_of(text)["lookups"]
    if mode == "update":
        # The images are pinned by digest on an existing stack: nothing mandatory to review.
        assert (code, exit_code, violations, undecided) == (0, "0", "-", "-")
    else:
        assert (code, exit_code, violations) == (1, "1", "-")
        assert undecided == "containers-pinned x1 (1 unreviewed)"
        assert "mandatory undecided findings: 1 (0 real, 0 false, 1 unreviewed)" in text
