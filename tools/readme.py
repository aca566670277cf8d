"""The generated sections of README.md: ``python -m tools.readme`` rewrites them in place;
``--check`` changes nothing, and exits 1 with a unified diff when the README differs from what
it would write.

A section sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` and holds
what ``GENERATORS[NAME]()`` returns; the text around it is the README's own. To add a section,
write a function returning its markdown, register it under a name, and put the two markers
where it belongs.

``example``: the dev stack's offline preview report, from a real run (``tools.preview``, the
text report, which is deterministic), each of its paragraphs cut to ``EXAMPLE_LINES`` lines.

``bench``: the benchmark figures of ``docs/bench.json``, as ``make bench`` last wrote them (never
timed here).

``config``: every key of the stack configuration (``stack_config.py``), one row each, with its
type and bounds from the model's metadata, its default per environment (``DEFAULTS`` merged
with the field's own default: what a stack file that leaves the key out gets) and the first
sentence of the field's docstring.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import inspect
import json
import re
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from config_errors import nested_model
from stack_config import DEFAULTS, NAMESPACE, SECRET_KEYS, StackConfig, environment_defaults
from tools import BENCH_RESULTS, ROOT

README = ROOT / "README.md"
ENVIRONMENTS = tuple(DEFAULTS)


# --- the config section ---------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One key of the configuration table."""

    key: str
    """As a stack file (or ``pulumi config set --path``) spells it: ``wwhd:service.cpu``."""
    kind: str
    """Its type in words."""
    defaults: tuple[str, ...]
    """What a stack file that leaves it out gets, per environment (``ENVIRONMENTS``' order)."""
    meaning: str
    """The first sentence of its docstring."""
    source: tuple[type[BaseModel], str] | None
    """The model and field it documents (None for a key outside the model: the secrets)."""


def config_rows() -> list[Row]:
    """Every key of ``StackConfig``, depth first in declaration order, then the secret keys."""
    given = {env: environment_defaults(env) for env in ENVIRONMENTS}
    rows = list(_rows(StackConfig, "", given))
    for key, description in SECRET_KEYS.items():
        rows.append(
            Row(
                f"{NAMESPACE}:{key}",
                "secret string",
                ("unset",) * len(ENVIRONMENTS),
                _first_sentence(description),
                None,
            )
        )
    return rows


@functools.cache
def field_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """The docstring under each field of ``model`` and its bases, by field name. Read from the
    source here rather than by pydantic at every import of the program (``use_attribute_docstrings``
    costs each preview about 50 ms), since only this table needs them."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):  # a subclass's docstring wins over its base's
        if not issubclass(cls, BaseModel) or cls.__module__.startswith("pydantic."):
            continue
        (body,) = ast.parse(textwrap.dedent(inspect.getsource(cls))).body
        assert isinstance(body, ast.ClassDef)
        for field, after in zip(body.body, body.body[1:], strict=False):
            if (
                isinstance(field, ast.AnnAssign)
                and isinstance(field.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                found[field.target.id] = inspect.cleandoc(after.value.value)
    return found


def _rows(model: type[BaseModel], prefix: str, given: Mapping[str, Any]) -> Iterator[Row]:
    """The rows of ``model``'s fields under ``prefix``; ``given`` holds, per environment, the
    mapping of defaults at this level (or a value that is not one, where none applies)."""
    for name, field in model.model_fields.items():
        key = field.alias or name
        if model is StackConfig:
            path = "aws:region" if name == "region" else f"{NAMESPACE}:{key}"
        else:
            path = f"{prefix}.{key}"
        description = field_docstrings(model).get(name)
        if not description:
            raise ValueError(f"{model.__name__}.{name} ({path}) has no docstring to document it with")
        inner = {
            env: g.get(key, PydanticUndefined) if isinstance(g, Mapping) else PydanticUndefined
            for env, g in given.items()
        }
        yield Row(
            path,
            _words(field.annotation, field.metadata),
            tuple(_default(inner[env], field) for env in ENVIRONMENTS),
            _first_sentence(description),
            (model, name),
        )
        sub = nested_model(field.annotation)
        if sub is not None:
            listed = get_origin(field.annotation) is list
            yield from _rows(
                sub,
                f"{path}[]" if listed else path,
                {env: {} if listed else inner[env] for env in ENVIRONMENTS},
            )


def _default(value: Any, field: FieldInfo) -> str:
    """The default a stack file gets: the environment's, else the field's own. A section or
    nested mapping that exists by default has its keys' defaults in their own rows."""
    if value is PydanticUndefined:
        if field.is_required():
            return "required"
        value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, BaseModel | Mapping) and get_origin(field.annotation) is not dict:
        return "(keys below)"
    return f"`{value if isinstance(value, str) else json.dumps(value)}`"


def _words(annotation: Any, metadata: list[Any]) -> str:
    """A type in words, with the bounds its metadata sets."""
    args = get_args(annotation)
    origin = get_origin(annotation)
    if origin is not None and type(None) in args:
        return _words(next(a for a in args if a is not type(None)), metadata)
    if origin is Annotated:  # Annotated[str, Field(...)]: the Field's constraints
        inner = [m for info in args[1:] for m in getattr(info, "metadata", [info])]
        return _words(args[0], [*inner, *metadata])
    if origin is Literal:
        return f"`{args[0]}` only" if len(args) == 1 else "one of " + "/".join(f"`{a}`" for a in args)
    if nested_model(annotation) is annotation:
        return "mapping (keys below)"
    if origin is list:
        item = "mappings (keys below)" if nested_model(args[0]) else _plural(_words(args[0], []))
        return f"list of {item}{_lengths(metadata)}"
    if origin is dict:
        return f"mapping of {_plural(_words(args[0], []))} to {_plural(_words(args[1], []))}"
    if annotation is bool:
        return "`true`/`false`"
    if annotation in (int, float):
        return ("integer" if annotation is int else "number") + _bounds(metadata)
    if getattr(annotation, "__name__", "") == "EmailStr":
        return "e-mail address"
    if annotation is str:
        return "string"
    raise ValueError(f"no words for the type {annotation!r}")


def _bounds(metadata: list[Any]) -> str:
    """The numeric bounds in words: `` 1-100``, `` from 0``, `` above 0, below 100``."""
    found = {type(m): m for m in metadata if isinstance(m, at.Ge | at.Gt | at.Le | at.Lt)}
    ge, gt, le, lt = (found.get(kind) for kind in (at.Ge, at.Gt, at.Le, at.Lt))
    if isinstance(ge, at.Ge) and isinstance(le, at.Le):
        return f" {ge.ge}-{le.le}"
    low = f"from {ge.ge}" if isinstance(ge, at.Ge) else f"above {gt.gt}" if isinstance(gt, at.Gt) else ""
    high = f"up to {le.le}" if isinstance(le, at.Le) else f"below {lt.lt}" if isinstance(lt, at.Lt) else ""
    words = ", ".join(w for w in (low, high) if w)
    return f" {words}" if words else ""


def _lengths(metadata: list[Any]) -> str:
    bits = [f"at least {m.min_length}" for m in metadata if isinstance(m, at.MinLen)]
    bits += [f"at most {m.max_length}" for m in metadata if isinstance(m, at.MaxLen)]
    return f" ({', '.join(bits)})" if bits else ""


def _plural(words: str) -> str:
    head, _, rest = words.partition(" ")
    if head in ("string", "integer", "number"):
        return f"{head}s" + (f" {rest}" if rest else "")
    if words == "e-mail address":
        return "e-mail addresses"
    return words


_SENTENCE = re.compile(r"^(.+?[.!?])(?=\s|$)", re.S)


def _first_sentence(text: str) -> str:
    """The first sentence of the first paragraph, on one line, in markdown's code spans; a
    paragraph that introduces a list (``...: `` then items) ends at its colon."""
    paragraph = " ".join(text.strip().split("\n\n")[0].split())
    match = _SENTENCE.match(paragraph)
    sentence = match.group(1) if match else paragraph.removesuffix(":") + "."
    return sentence.replace("``", "`")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def config_table() -> str:
    """The configuration table: key, type, default (one value when every environment agrees,
    else dev / staging / prod), meaning."""
    lines = [
        f"| key | type | default ({' / '.join(ENVIRONMENTS)}) | meaning |",
        "|---|---|---|---|",
    ]
    for row in config_rows():
        default = row.defaults[0] if len(set(row.defaults)) == 1 else " / ".join(row.defaults)
        lines.append(
            "| " + " | ".join(_cell(c) for c in (f"`{row.key}`", row.kind, default, row.meaning)) + " |"
        )
    return "\n".join(lines) + "\n"


# --- the example and bench sections -------------------------------------------------------

EXAMPLE_STACK = "dev"
EXAMPLE_LINES = 12


def example_report() -> str:
    """The example stack's preview, run now with its policy pack and config, abridged: each
    paragraph of the report keeps its first ``EXAMPLE_LINES`` lines, then `` ...``."""
    import io

    from tools.preview import cli

    out, err = io.StringIO(), io.StringIO()
    pack = ROOT / "policies"
    code = cli.main(
        ["--stack", EXAMPLE_STACK, "--cwd", str(ROOT), "--policy-pack", str(pack),
         "--policy-pack-config", str(pack / "config" / f"{EXAMPLE_STACK}.json")],
        stdout=out,
        stderr=err,
    )  # fmt: skip
    if code == cli.EXIT_ERROR:
        raise RuntimeError(f"the {EXAMPLE_STACK} preview failed: {err.getvalue()}")
    paragraphs = []
    for paragraph in out.getvalue().rstrip("\n").split("\n\n"):
        lines = paragraph.split("\n")
        paragraphs.append("\n".join(lines[:EXAMPLE_LINES] + [" ..."] * (len(lines) > EXAMPLE_LINES)))
    return "```\n" + "\n\n".join(paragraphs) + "\n```\n"


def bench_table(path: Path = BENCH_RESULTS) -> str:
    """The figures ``make bench`` wrote, as a table with the machine they were measured on."""
    doc = json.loads(path.read_text())
    p, k, a = doc["preview"], doc["pack"], doc["anchor"]
    small, big = sorted(k["seconds"], key=int)
    split = ", ".join(f"{name} {p[name]:.2f} s" for name in ("program", "policies", "cost"))
    rows = [
        (f"Offline preview of {p['stack']}, start to finish, a fresh process each run (median of {p['runs']})",
         f"<= {p['target']:g} s", f"{p['wall']:.2f} s: {split} (in-process total {p['total']:.2f} s; "
         f"spread {p['min']:.2f}-{p['max']:.2f} s)"),
        *_anchor_rows(p, a),
        (f"Policy pack alone over gRPC, {int(small):,} synthetic resources (`Analyze` each + `AnalyzeStack`, "
         f"median of {k['repeats']})", "", f"{k['seconds'][small]:.2f} s"),
        (f"The same, {int(big):,} resources", f"< {k['target']:g} s", f"{k['seconds'][big]:.2f} s"),
        (f"{int(big):,} / {int(small):,}", f"< {k['ratioTarget']:g} (linear: {int(big) // int(small)})",
         f"{k['ratio']:.1f}"),
    ]  # fmt: skip
    lines = [
        f"Measured on {doc['date']} with Python {doc['python']} on {doc['cores']} cores of "
        f"{doc['cpu']}, load average {doc['loadAverage']:g} at the end (`docs/bench.json`):",
        "",
        "| Measure | Target | Measured |",
        "| --- | --- | --- |",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
    ]
    return "\n".join(lines) + "\n"


def _anchor_rows(preview: dict[str, Any], anchor: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The CDK anchor's row and the preview / anchor ratio's, or one row saying why it was not measured."""
    if "skipped" in anchor:
        return [("CDK anchor (`bench/cdk-anchor`)", "", f"not measured: {anchor['skipped']}")]
    v, nag, lint = anchor["versions"], anchor["nag"], anchor["cfnLint"]
    found = (f"cdk-nag {nag['error']} errors and {nag['warning']} warnings, cfn-lint {lint['error']} errors and "
             f"{lint['warning']} warnings")  # fmt: skip
    return [
        (f"CDK anchor: the same architecture as an AWS CDK app (`bench/cdk-anchor`, {anchor['resources']} "
         f"CloudFormation resources), `app.synth()` with cdk-nag's AwsSolutions checks, then cfn-lint on the "
         f"template; a fresh process each run, paired with each preview run (median of {anchor['runs']}; node "
         f"{v['node']}, aws-cdk-lib {v['aws-cdk-lib']}, cdk-nag {v['cdk-nag']}, cfn-lint {v['cfn-lint']})",
         f"about {anchor['issueSeconds']:g} s where the 1 s target was set",
         f"{anchor['wall']:.2f} s: synth + cdk-nag {anchor['synth']:.2f} s, cfn-lint {anchor['lint']:.2f} s "
         f"(spread {anchor['min']:.2f}-{anchor['max']:.2f} s); found {found}"),
        ("Preview / anchor, the median of the paired runs' ratios (what a shared machine's speed cancels out of)",
         f"<= {anchor['ratioTarget']:.2f} ({preview['target']:g} s / {anchor['issueSeconds']:g} s)",
         f"{anchor['ratio']:.2f} (spread {anchor['ratioMin']:.2f}-{anchor['ratioMax']:.2f})"),
    ]  # fmt: skip


# --- the README's generated sections --------------------------------------------------------

GENERATORS: dict[str, Callable[[], str]] = {
    "config": config_table,
    "example": example_report,
    "bench": bench_table,
}

_SECTION = re.compile(
    r"(<!-- generated:(?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)", re.S
)


def render(text: str) -> str:
    """``text`` with every generated section's body rewritten by its generator."""
    names = [m["name"] for m in _SECTION.finditer(text)]
    unknown = sorted(set(names) - set(GENERATORS))
    if unknown:
        raise ValueError(f"README sections without a generator: {', '.join(unknown)}")
    return _SECTION.sub(lambda m: m.group(1) + GENERATORS[m["name"]]() + m.group(4), text)


def check(path: Path = README) -> str:
    """The unified diff from ``path`` to what ``render`` would write (empty when current)."""
    current = path.read_text()
    wanted = render(current)
    name = path.name
    return "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            f"{name} (current)",
            f"{name} (generated)",
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.readme", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument(
        "--check", action="store_true", help="print the diff and exit 1 when README.md is stale"
    )
    args = parser.parse_args(argv)
    if args.check:
        diff = check(README)
        sys.stdout.write(diff)
        return 1 if diff else 0
    README.write_text(render(README.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
