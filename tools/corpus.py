"""Preview public Pulumi programs with the offline preview and this repository's policy pack.

    python -m tools.corpus <checkout of pulumi/examples> [--new-stack] [--only DIR ...]

For each program listed in ``tests/fixtures/corpus/examples.yaml`` it copies the program's
directory from the checkout to a scratch directory (the checkout stays untouched, and no example
code enters this repository), writes there the stack file the list gives it, and runs
``python -m tools.preview --cwd <copy> --stack <stack> --policy-pack policies --json`` in a fresh
process with a time limit. It prints one row per program: exit code, seconds, resources,
mandatory findings per policy with their reviewed verdicts (``tests/fixtures/corpus/verdicts.csv``):
violations, and checks that could not decide (a mandatory one fails a preview as a violation does),
the count of all undecided checks, and the error of a program that did not preview (exit 2).

Exit 0 when every program previews (exit 0 or 1) and every mandatory finding has a verdict;
1 otherwise (a program that fails, or a finding nobody reviewed); 2 on a usage error.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import yaml

from tools import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "corpus"
EXAMPLES = FIXTURES / "examples.yaml"
VERDICTS = FIXTURES / "verdicts.csv"
PACK = ROOT / "policies"
DEFAULT_TIMEOUT_S = 60.0
# Beyond the preview's own --timeout: the process starts, imports the SDKs and runs the pack.
_PROCESS_MARGIN_S = 60.0
# Never copied: a program's virtualenv, caches and version control, which the preview does not read.
_NOT_COPIED = shutil.ignore_patterns("venv", ".venv", "node_modules", "__pycache__", ".git", "*.pyc")
VERDICT_KINDS = ("real", "false")
FINDING_KINDS = ("violation", "undecided")


@dataclass(frozen=True)
class Example:
    """One program of the list: its directory in the checkout and the stack configuration it gets."""

    dir: str
    covers: str
    config: dict[str, Any]


@dataclass(frozen=True)
class Corpus:
    source: str
    commit: str
    stack: str
    examples: list[Example]
    excluded: dict[str, str]


class Finding(NamedTuple):
    """A mandatory finding: a ``violation``, or an ``undecided`` check; ``resource`` is the logical
    name (``stack`` for the stack as a whole)."""

    kind: str
    policy: str
    resource: str


@dataclass(frozen=True)
class Verdict:
    """A reviewed mandatory finding. ``real``: the program breaks the pack's rule (a violation), or
    the check truly cannot decide offline (undecided); ``false``: a pack or preview bug."""

    example: str
    finding: Finding
    verdict: str
    why: str


Verdicts = dict[tuple[str, Finding], Verdict]


@dataclass
class Outcome:
    """One program's preview: its mandatory findings, and how many checks (of any level) could
    not decide."""

    example: str
    exit_code: int
    seconds: float
    resources: int = 0
    findings: list[Finding] = field(default_factory=list)
    undecided: int = 0
    error: str = ""

    @property
    def previews(self) -> bool:
        return self.exit_code in (0, 1)


def load_corpus(path: Path = EXAMPLES) -> Corpus:
    """The list of programs; ValueError naming the entry when one is malformed."""
    doc = yaml.safe_load(path.read_text())
    examples = []
    for i, entry in enumerate(doc.get("examples") or []):
        config = entry.get("config")
        if not entry.get("dir") or not isinstance(config, dict) or "aws:region" not in config:
            raise ValueError(f"{path}: examples[{i}] needs a dir and a config with aws:region")
        examples.append(Example(str(entry["dir"]), str(entry.get("covers", "")), dict(config)))
    dirs = [e.dir for e in examples]
    if len(set(dirs)) != len(dirs):
        raise ValueError(f"{path}: a directory is listed twice")
    return Corpus(
        source=str(doc["source"]),
        commit=str(doc["commit"]),
        stack=str(doc["stack"]),
        examples=examples,
        excluded={str(k): str(v) for k, v in (doc.get("excluded") or {}).items()},
    )


def load_verdicts(path: Path = VERDICTS) -> Verdicts:
    """Reviewed findings keyed by (example, finding); ValueError on an unknown kind or verdict."""
    found: Verdicts = {}
    with path.open(newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            finding = Finding(row["finding"], row["policy"], row["resource"])
            if finding.kind not in FINDING_KINDS or row["verdict"] not in VERDICT_KINDS:
                raise ValueError(
                    f"{path}:{line}: finding {finding.kind!r} / verdict {row['verdict']!r}: "
                    f"expected one of {FINDING_KINDS} / {VERDICT_KINDS}"
                )
            found[(row["example"], finding)] = Verdict(row["example"], finding, row["verdict"], row["why"])
    return found


def stage(checkout: Path, example: Example, stack: str, scratch: Path) -> Path:
    """A copy of the program with its stack file, in ``scratch``; the checkout is only read."""
    source = checkout / example.dir
    if not (source / "Pulumi.yaml").is_file():
        raise FileNotFoundError(f"{source}: no Pulumi.yaml (is {checkout} a checkout of the examples?)")
    target = scratch / example.dir
    shutil.copytree(source, target, ignore=_NOT_COPIED)
    (target / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": example.config}, sort_keys=False))
    return target


def error_text(stderr: str, limit: int = 400) -> str:
    """The preview's error message (from ``error:`` on; one line, at most ``limit`` characters), or
    the last line of a crash."""
    lines = stderr.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("error:")), None)
    text = (
        " ".join(line.strip() for line in lines[start:])
        if start is not None
        else (lines or ["(no output)"])[-1]
    )
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resource_name(urn: str) -> str:
    """The logical name at the end of a URN; ``stack`` for a finding on the stack as a whole."""
    return urn.rsplit("::", 1)[-1] if urn else "stack"


def run_one(
    example: Example,
    workdir: Path,
    stack: str,
    new_stack: bool,
    timeout: float,
    pack: Path = PACK,
    policy_config: Path | None = None,
    save: Path | None = None,
) -> Outcome:
    """Preview one staged program in a fresh process, as a user would run it; ``save``: a
    directory to keep its JSON document in (for reviewing findings)."""
    cmd = [sys.executable, "-m", "tools.preview", "--cwd", str(workdir), "--stack", stack,
           "--policy-pack", str(pack), "--json", "--timeout", f"{timeout:g}"]  # fmt: skip
    if policy_config is not None:
        cmd += ["--policy-pack-config", str(policy_config)]
    if new_stack:
        cmd.append("--new-stack")
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout + _PROCESS_MARGIN_S, check=False
        )
    except subprocess.TimeoutExpired:
        seconds = time.perf_counter() - started
        return Outcome(example.dir, -1, seconds, error=f"the preview process ran past {seconds:.0f} s")
    seconds = time.perf_counter() - started
    outcome = Outcome(example.dir, proc.returncode, seconds)
    if not outcome.previews or not proc.stdout.strip():
        outcome.error = error_text(proc.stderr)
        return outcome
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        (save / (example.dir.replace("/", "__") + ".json")).write_text(proc.stdout)
    doc = json.loads(proc.stdout)
    outcome.resources = len(doc["resources"])
    checks = doc["undecided"]["checks"]
    outcome.findings = sorted(
        Finding(kind, d["policyName"], resource_name(d["urn"]))
        for kind, found in (("violation", doc["violations"]), ("undecided", checks))
        for d in found
        if d["enforcementLevel"] == "mandatory"
    )
    outcome.undecided = len(checks)
    return outcome


def verdict_of(example: str, finding: Finding, verdicts: Verdicts) -> str:
    found = verdicts.get((example, finding))
    return found.verdict if found else "unreviewed"


def _findings_cell(outcome: Outcome, kind: str, verdicts: Verdicts) -> str:
    """``policy xN (R real, F false, U unreviewed)`` per policy, for one kind of finding, or ``-``."""
    per_policy: dict[str, Counter[str]] = {}
    for finding in outcome.findings:
        if finding.kind == kind:
            verdict = verdict_of(outcome.example, finding, verdicts)
            per_policy.setdefault(finding.policy, Counter())[verdict] += 1
    cells = []
    for policy, kinds in sorted(per_policy.items()):
        split = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        cells.append(f"{policy} x{sum(kinds.values())} ({split})")
    return "; ".join(cells) or "-"


def report(
    corpus: Corpus,
    outcomes: Sequence[Outcome],
    verdicts: Verdicts,
    mode: str,
    out: TextIO,
) -> bool:
    """Print the table and the totals; True when every program previewed and every finding is reviewed."""
    out.write(f"{corpus.source} at {corpus.commit[:12]}, stack '{corpus.stack}', mode {mode}\n\n")
    out.write(
        "| example | exit | s | resources | mandatory violations (verdicts) "
        "| mandatory undecided (verdicts) | undecided, all levels | error |\n"
    )
    out.write("|---|---|---|---|---|---|---|---|\n")
    for o in outcomes:
        cells = (
            [
                str(o.resources),
                *(_findings_cell(o, kind, verdicts) for kind in FINDING_KINDS),
                str(o.undecided),
            ]
            if o.previews
            else ["", "", "", ""]
        )
        out.write(f"| {o.example} | {o.exit_code} | {o.seconds:.1f} | {' | '.join(cells)} | {o.error} |\n")
    previewed = [o for o in outcomes if o.previews]
    tally = Counter(
        (finding.kind, verdict_of(o.example, finding, verdicts)) for o in previewed for finding in o.findings
    )
    exits = Counter(o.exit_code for o in outcomes)
    out.write(
        f"\n{len(outcomes)} programs: {len(previewed)} preview (exit 0: {exits[0]}, exit 1: {exits[1]}), "
        f"{len(outcomes) - len(previewed)} do not\n"
    )
    for kind in FINDING_KINDS:
        counts = {v: tally[(kind, v)] for v in (*VERDICT_KINDS, "unreviewed")}
        out.write(
            f"mandatory {kind} findings: {sum(counts.values())} ("
            + ", ".join(f"{n} {v}" for v, n in counts.items())
            + ")\n"
        )
    out.write(f"undecided checks, all levels: {sum(o.undecided for o in previewed)}\n")
    return len(previewed) == len(outcomes) and not any(v == "unreviewed" for _, v in tally)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.corpus",
        description="Preview the public programs of tests/fixtures/corpus/examples.yaml offline with the "
        "policy pack, and tabulate exit codes, resources, mandatory findings and their verdicts.",
    )
    parser.add_argument("checkout", type=Path, help="a checkout of the examples repository the list names")
    parser.add_argument(
        "--new-stack", action="store_true", help="preview each as a stack that does not exist yet"
    )
    parser.add_argument("--only", nargs="+", metavar="DIR", help="only these directories of the list")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"the preview's --timeout for each program (default: {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--examples", type=Path, default=EXAMPLES, help="the list of programs (default: %(default)s)"
    )
    parser.add_argument(
        "--verdicts", type=Path, default=VERDICTS, help="reviewed findings (default: %(default)s)"
    )
    parser.add_argument(
        "--policy-pack", type=Path, default=PACK, metavar="DIR", help="the policy pack (default: %(default)s)"
    )
    parser.add_argument(
        "--policy-pack-config", type=Path, metavar="FILE", help="a --policy-pack-config for every program"
    )
    parser.add_argument("--save", type=Path, metavar="DIR", help="keep each program's JSON document in DIR")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = parse_args(argv)
    stream: TextIO = out or sys.stdout
    corpus = load_corpus(args.examples)
    verdicts = load_verdicts(args.verdicts)
    chosen = corpus.examples
    if args.only:
        unknown = sorted(set(args.only) - {e.dir for e in corpus.examples})
        if unknown:
            print(f"error: not in {args.examples}: {', '.join(unknown)}", file=sys.stderr)
            return 2
        chosen = [e for e in corpus.examples if e.dir in args.only]
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="corpus-") as scratch:
        for example in chosen:
            try:
                workdir = stage(args.checkout, example, corpus.stack, Path(scratch))
            except FileNotFoundError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            outcomes.append(
                run_one(
                    example,
                    workdir,
                    corpus.stack,
                    args.new_stack,
                    args.timeout,
                    args.policy_pack.resolve(),
                    args.policy_pack_config.resolve() if args.policy_pack_config else None,
                    args.save,
                )
            )
            print(f"{example.dir}: exit {outcomes[-1].exit_code}", file=sys.stderr, flush=True)
    mode = "new-stack" if args.new_stack else "update"
    return 0 if report(corpus, outcomes, verdicts, mode, stream) else 1


if __name__ == "__main__":
    sys.exit(main())
