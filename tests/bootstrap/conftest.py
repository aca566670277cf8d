"""Run the bootstrap program offline, and judge its trust policies the way IAM does."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import ROOT
from tools.mocks import ProgramRun, run_program

BOOTSTRAP = ROOT / "bootstrap"
REPOSITORY = "acme/wwhd-infra"
ISSUER = "token.actions.githubusercontent.com"

RunBootstrap = Callable[..., ProgramRun]


def bootstrap_run(github: dict[str, Any] | None = None, **keys: Any) -> ProgramRun:
    """Run the bootstrap's prod stack with ``github`` merged into a real repository and other
    top-level keys replaced: ``bootstrap_run(github={"subjectTemplate": "github-default"})``."""
    overrides = {"wwhd-bootstrap:github": json.dumps({"repository": REPOSITORY} | (github or {}))}
    for key, value in keys.items():
        overrides[f"wwhd-bootstrap:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return run_program(BOOTSTRAP, "prod", overrides)


@pytest.fixture
def run_bootstrap() -> RunBootstrap:
    """``bootstrap_run``, for tests (each test gets fresh mocks when it calls it)."""
    return bootstrap_run


def role_policy(run: ProgramRun, logical: str) -> dict[str, Any]:
    """The trust policy the program registered for the role ``logical``."""
    return json.loads(run.monitor.one("aws:iam/role:Role", logical).inputs["assumeRolePolicy"])


# --- GitHub's side: the claims of a job's token ------------------------------------------------


@dataclass(frozen=True)
class Job:
    """A workflow job asking for a token, described as GitHub sees it."""

    repository: str = REPOSITORY
    event: str = "pull_request"  # "pull_request", "push"
    ref: str = "refs/pull/7/merge"
    environment: str | None = None
    audience: str = "sts.amazonaws.com"
    ids: tuple[int, int] | None = None  # (owner id, repository id): the immutable format

    def claims(self, template: str) -> dict[str, str]:
        """``aud`` and ``sub`` as GitHub's OIDC reference documents them: the default template
        ends in the environment, ``pull_request`` or the ref; the ``repo, context, ref``
        template puts the context first (environment, ``pull_request`` or the ref) and the ref
        after it."""
        owner, name = self.repository.split("/")
        repo = f"repo:{owner}@{self.ids[0]}/{name}@{self.ids[1]}" if self.ids else f"repo:{self.repository}"
        if self.environment is not None:
            context = f"environment:{self.environment}"
        elif self.event == "pull_request":
            context = "pull_request"
        else:
            context = f"ref:{self.ref}"
        sub = f"{repo}:{context}" if template == "github-default" else f"{repo}:{context}:ref:{self.ref}"
        return {f"{ISSUER}:aud": self.audience, f"{ISSUER}:sub": sub}


# --- IAM's side: does a trust policy admit those claims -----------------------------------------


def _like(pattern: str, value: str) -> bool:
    """IAM StringLike: ``*`` any run of characters (also none), ``?`` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda pattern, value: pattern == value,
    "StringLike": _like,
}


def admits(policy: dict[str, Any], provider_arn: str, claims: dict[str, str]) -> bool:
    """Whether some Allow statement lets a web identity of ``provider_arn`` with ``claims``
    assume the role. Within a statement every operator block and every key must hold (AND);
    a key's list of values is satisfied by any one of them (OR); a missing claim fails."""
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if (
            statement["Effect"] != "Allow"
            or "sts:AssumeRoleWithWebIdentity" not in actions
            or statement["Principal"].get("Federated") != provider_arn
        ):
            continue
        conditions = statement.get("Condition", {})
        unknown = set(conditions) - set(_OPERATORS)
        assert not unknown, f"the evaluator does not know {unknown}"
        if all(
            key in claims
            and any(
                _OPERATORS[op](v, claims[key]) for v in (values if isinstance(values, list) else [values])
            )
            for op, block in conditions.items()
            for key, values in block.items()
        ):
            return True
    return False
