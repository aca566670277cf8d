"""The documentation matches the code: its links resolve, and every stack output a runbook
reads with `pulumi stack output NAME` is one the program (or the bootstrap) exports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.bootstrap.conftest import bootstrap_run
from tests.conftest import ROOT, RunStack

DOCS = [ROOT / "README.md", ROOT / "policies" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))

# [text](target): relative targets only; anchors are not checked.
_LINK = re.compile(r"\]\((?!https?://|mailto:|#)([^)\s#]+)(?:#[^)]*)?\)")
# `pulumi [-C DIR] stack output [flags] NAME`; a NAME-less call (all outputs) reads nothing named.
# Outputs are camelCase; the flags before the name are the ones the docs use.
_OUTPUT = re.compile(
    r"pulumi (?:-C (?P<dir>\S+) )?stack output (?:(?:-s|--stack) \S+ |--json |--show-secrets )*"
    r"(?P<name>[a-z]+[A-Z][A-Za-z]*)\b"
)


def _references(files: list[Path]) -> list[tuple[str, str, str]]:
    """(file, project directory or '', output name) for every named output read."""
    found = []
    for path in files:
        for match in _OUTPUT.finditer(path.read_text()):
            project = match["dir"] or ("bootstrap" if path.name == "bootstrap.md" else "")
            found.append((path.relative_to(ROOT).as_posix(), project, match["name"]))
    return found


def test_the_reference_pattern_reads_names_and_skips_flags() -> None:
    text = "a $(pulumi stack output -s prod --json) b $(pulumi -C bootstrap stack output deployRoleArn -s x/prod)"
    names = [(m["dir"], m["name"]) for m in _OUTPUT.finditer(text)]
    assert names == [("bootstrap", "deployRoleArn")]
    assert _OUTPUT.search("pulumi stack output --stack prod clusterName")["name"] == "clusterName"  # type: ignore[index]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(doc: Path) -> None:
    missing = [t for t in _LINK.findall(doc.read_text()) if not (doc.parent / t).exists()]
    assert not missing, f"{doc.name} links to missing files: {missing}"


def _cells(row: str) -> int:
    """Cells of a Markdown table row: an unescaped | splits cells even inside `code`."""
    return len(re.split(r"(?<!\\)\|", row.strip().strip("|")))


def test_cell_counting_respects_escaped_pipes() -> None:
    assert _cells("| `a` | `curl x \\|\\| exit 1` |") == 2
    assert _cells("| `a` | `curl x || exit 1` |") == 4


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_table_rows_have_as_many_cells_as_their_header(doc: Path) -> None:
    broken, header = [], None
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        if not line.startswith("|"):
            header = None
        elif header is None:
            header = _cells(line)
        elif _cells(line) != header:
            broken.append(number)
    assert not broken, f"{doc.name}: rows with a stray | (escape it as \\|): lines {broken}"


def test_every_output_the_docs_read_is_exported(run_stack: RunStack) -> None:
    refs = [r for r in _references(DOCS + WORKFLOWS) if r[1] == ""]
    assert len(refs) >= 8, "the runbooks read stack outputs; the pattern found too few"
    exported = set(run_stack("prod").outputs) | set(run_stack("dev").outputs)
    unknown = sorted({(f, name) for f, _, name in refs if name not in exported})
    assert not unknown, f"outputs the program does not export: {unknown}"


def test_every_bootstrap_output_the_docs_read_is_exported() -> None:
    refs = [r for r in _references(DOCS) if r[1] == "bootstrap"]
    assert {name for _, _, name in refs} >= {"previewRoleArn", "deployRoleArn"}
    exported = set(bootstrap_run().outputs)
    unknown = sorted({(f, name) for f, _, name in refs if name not in exported})
    assert not unknown, f"outputs the bootstrap does not export: {unknown}"
