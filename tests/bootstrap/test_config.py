"""The bootstrap's configuration problems read like the program's: the key path as the stack
file writes it, plain words, a suggestion for a misspelt key, strict types, every problem at
once. Both come from the same machinery (config_errors.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from stack_config import parse_stack_config
from tests.bootstrap.conftest import BOOTSTRAP, REPOSITORY
from wwhd_bootstrap.config import ConfigError, parse_config

REGION = "us-west-2"


def problems(raw: dict[str, Any], region: str | None = REGION) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(raw, region)
    return [str(p) for p in raised.value.problems]


def github(**keys: Any) -> dict[str, Any]:
    return {"github": {"repository": REPOSITORY, **keys}}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (github(mainBrnch="main"), "wwhd-bootstrap:github.mainBrnch: unknown key; did you mean mainBranch?"),
        (
            github() | {"stateBuckett": "acme-state"},
            "wwhd-bootstrap:stateBuckett: unknown key; did you mean stateBucket?",
        ),
    ],
)
def test_a_misspelt_key_is_named_with_a_suggestion_as_in_the_program(
    raw: dict[str, Any], expected: str
) -> None:
    assert problems(raw) == [expected]
    # The program's stack file says the same of its own typo.
    with pytest.raises(ConfigError) as raised:
        parse_stack_config({"environment": "dev", "service": {"desiredCunt": 1}}, REGION)
    assert "wwhd:service.desiredCunt: unknown key; did you mean desiredCount?" in map(
        str, raised.value.problems
    )


def test_types_are_strict_and_the_message_says_how_to_fix_the_value() -> None:
    assert problems(github(ownerId="12", repositoryId=34)) == [
        "wwhd-bootstrap:github.ownerId: must be an integer, not the string '12'; write it without quotes"
    ]


def test_a_pattern_field_says_what_it_expects_in_words() -> None:
    assert problems({"github": {"repository": "*/*"}}) == [
        "wwhd-bootstrap:github.repository: must be a GitHub owner/name"
        " (letters, digits, '-', '_' and '.'; no wildcards), not the string '*/*'"
    ]


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(github(mainBrnch="main") | {"stateBucket": "s3://acme"}, None)
    assert [p.path for p in raised.value.problems] == [
        "aws:region",
        "wwhd-bootstrap:github.mainBrnch",
        "wwhd-bootstrap:stateBucket",
    ]
    assert str(raised.value).startswith("invalid bootstrap configuration (3 problems):")


def test_the_bootstrap_run_from_its_own_directory_finds_the_shared_machinery() -> None:
    """As ``pulumi -C bootstrap up`` runs it: the bootstrap's directory first on the import
    path, the repository root nowhere on it (-I drops PYTHONPATH and the working directory)."""
    script = textwrap.dedent(
        """
        import importlib.util, runpy, sys
        import pulumi

        sys.path.insert(0, ".")
        assert importlib.util.find_spec("config_errors") is None, "the root is already importable"

        class Mocks(pulumi.runtime.Mocks):
            def new_resource(self, args):
                return args.name + "-id", args.inputs

            def call(self, args):
                return {}

        pulumi.runtime.set_mocks(Mocks(), project="wwhd-bootstrap", stack="prod", preview=True)
        pulumi.runtime.set_all_config(
            {"aws:region": "us-west-2", "wwhd-bootstrap:github": '{"repository": "acme/x", "mainBrnch": "main"}'}
        )
        try:
            runpy.run_path("__main__.py", run_name="__main__")
        except pulumi.RunError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script], cwd=BOOTSTRAP, capture_output=True, text=True, timeout=120
    )
    assert "wwhd-bootstrap:github.mainBrnch: unknown key; did you mean mainBranch?" in result.stdout, (
        result.stderr
    )
