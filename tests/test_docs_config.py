"""Every configuration example in README.md and docs/ is loaded: merged over the stack file it
changes and read as the program reads it. It must be valid, or, when the doc shows the error
it fails with, fail with exactly that error.

An example is a fenced YAML block whose keys are stack configuration keys (``wwhd:...``,
``aws:...``, or a ``config:`` mapping of them), or a fenced block of ``pulumi config set``
commands. A YAML example changes ``Pulumi.dev.yaml`` unless it names another stack file in a
comment; commands change the stack their ``-s`` names, and a command whose value is a
placeholder (``'<that ARN>'``) only has its key checked, against the README's configuration
table. A YAML example is an error example when the next fenced block starts with
``error: invalid stack configuration``."""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack_config import ConfigError, _merge
from tests.test_config import read
from tools.readme import config_rows

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# A fenced block, possibly indented (inside a list item): its language and its lines.
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*) *\n(?P<body>.*?)^(?P=indent)``` *$", re.M | re.S)
_STACK_FILE = re.compile(r"#.*\bPulumi\.(?P<stack>[\w-]+)\.yaml")
_ERROR = "error: invalid stack configuration"


@dataclass(frozen=True)
class Example:
    where: str
    """``file:line`` of the block."""
    stack: str
    changes: dict[str, Any]
    """Top-level keys of the stack file's ``config`` and what to merge into each."""
    error: str | None
    """The exact error the doc shows, for an error example."""
    placeholders: tuple[str, ...] = ()
    """Keys set to a placeholder the reader fills in: they must exist, their value is unknown."""


def _blocks(doc: Path) -> list[tuple[str, str, str]]:
    text = doc.read_text()
    found = []
    for m in _FENCE.finditer(text):
        body = textwrap.dedent("\n".join(line.removeprefix(m["indent"]) for line in m["body"].splitlines()))
        found.append((f"{doc.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}", m["lang"], body))
    return found


def _config_value(text: str) -> Any:
    """A value as ``pulumi config set --path`` stores it: true and false as booleans, integers
    as numbers, anything else as a string."""
    if text in ("true", "false"):
        return text == "true"
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _commands(where: str, body: str) -> list[Example]:
    """The ``pulumi config set`` commands of a block, one example per stack they change."""
    per_stack: dict[str, dict[str, Any]] = {}
    placeholders: dict[str, list[str]] = {}
    for line in body.splitlines():
        if not line.startswith("pulumi config set "):
            continue
        words = shlex.split(line, comments=True)
        stack, path, positional, rest = "dev", False, [], words[3:]
        while rest:
            word = rest.pop(0)
            if word in ("-s", "--stack"):
                stack = rest.pop(0)
            elif word == "--path":
                path = True
            elif word.startswith("-"):
                raise AssertionError(f"{where}: the test does not know the option {word} of {line!r}")
            else:
                positional.append(word)
        key, value = positional
        target = per_stack.setdefault(stack, {})
        if re.fullmatch(r"<[^>]+>", value):
            placeholders.setdefault(stack, []).append(key)
            continue
        top, *inner = key.split(".") if path else [key]
        for part in [top, *inner[:-1]]:
            target = target.setdefault(part, {})
        if inner:
            target[inner[-1]] = _config_value(value)
        else:
            per_stack[stack][top] = value
    return [
        Example(where, stack, changes, None, tuple(placeholders.get(stack, ())))
        for stack, changes in per_stack.items()
    ]


def examples() -> list[Example]:
    found: list[Example] = []
    for doc in DOCS:
        blocks = _blocks(doc)
        for i, (where, lang, body) in enumerate(blocks):
            if lang in ("yaml", "yml"):
                loaded = yaml.safe_load(body)
                if not isinstance(loaded, dict):
                    continue
                config = loaded["config"] if isinstance(loaded.get("config"), dict) else loaded
                if not all(isinstance(k, str) and k.startswith(("wwhd:", "aws:")) for k in config):
                    continue
                named = _STACK_FILE.search(body)
                after = blocks[i + 1][2] if i + 1 < len(blocks) else ""
                error = after.strip() if after.startswith(_ERROR) else None
                found.append(Example(where, named["stack"] if named else "dev", config, error))
            elif "pulumi config set" in body:
                found += _commands(where, body)
    return found


EXAMPLES = examples()


def test_the_examples_are_found() -> None:
    """The finder sees the examples the docs are known to hold (it would pass vacuously
    otherwise)."""
    by_place = {(e.where.split(":")[0], e.stack, bool(e.error)) for e in EXAMPLES}
    assert {
        ("README.md", "dev", False),  # adding a service
        ("README.md", "dev", True),  # the configuration error example
        ("docs/operations.md", "dev", False),  # parking the API out of hours
        ("docs/operations.md", "prod", False),  # moving Qdrant's host to another subnet
        ("docs/takeover.md", "prod", False),  # the dark window
    } <= by_place, by_place


def test_config_set_commands_read_as_the_cli_stores_them() -> None:
    body = (
        "pulumi config set --path 'wwhd:service.desiredCount' 0 -s prod\n"
        "pulumi config set --path 'wwhd:service.ecsExec' true -s prod   # and commit\n"
        "pulumi config set --path 'wwhd:images.apiTag' v1.2.3 -s prod\n"
        "pulumi up -s prod\n"
    )
    (example,) = _commands(
        "x.md:1", body + "pulumi config set --path 'wwhd:images.colector' '<its ARN>' -s prod\n"
    )
    assert example.stack == "prod"
    assert example.changes == {
        "wwhd:service": {"desiredCount": 0, "ecsExec": True},
        "wwhd:images": {"apiTag": "v1.2.3"},
    }
    assert example.placeholders == ("wwhd:images.colector",)


def test_a_placeholder_sets_a_key_that_must_exist(tmp_path: Path) -> None:
    typo = Example("x.md:1", "prod", {}, None, ("wwhd:images.colector",))
    with pytest.raises(
        AssertionError, match=r"keys the configuration does not have: \['wwhd:images.colector'\]"
    ):
        test_every_configuration_example_in_the_docs_loads(tmp_path, typo)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e.where}-{e.stack}")
def test_every_configuration_example_in_the_docs_loads(tmp_path: Path, example: Example) -> None:
    keys = {row.key for row in config_rows()}
    unknown = [k for k in example.placeholders if re.sub(r"\[\d+\]", "[]", k) not in keys]
    assert not unknown, f"{example.where} sets keys the configuration does not have: {unknown}"
    stack_file = yaml.safe_load((ROOT / f"Pulumi.{example.stack}.yaml").read_text())
    changed = {"config": _merge(stack_file["config"], example.changes)}
    if example.error is None:
        read(tmp_path, yaml.safe_dump(changed))
        return
    with pytest.raises(ConfigError) as info:
        read(tmp_path, yaml.safe_dump(changed))
    assert f"error: {info.value}" == example.error, f"{example.where} shows another error than:\n{info.value}"
