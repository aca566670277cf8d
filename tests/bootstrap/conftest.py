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
        after it. The token's other claims (the workflow among them) are not condition keys
        IAM evaluates, so they are left out."""
        owner, name = self.repository.split("/")
        repo = f"repo:{owner}@{self.ids[0]}/{name}@{self.ids[1]}" if self.ids else f"repo:{self.repository}"
        if self.environment is not None:
            context = f"environment:{self.environment}"
        elif self.event == "pull_request":
            context = "pull_request"
        else:
            context = f"ref:{self.ref}"
        sub = f"{repo}:{context}" if template == "github-default" else f"{repo}:{context}:ref:{self.ref}"
        return {
            f"{ISSUER}:aud": self.audience,
            f"{ISSUER}:sub": sub,
        }


# --- IAM's side: policy evaluation ---------------------------------------------------------------


def _like(pattern: str, value: str) -> bool:
    """IAM StringLike: ``*`` any run of characters (also none), ``?`` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _equals(pattern: str, value: str) -> bool:
    return pattern == value


# Each operator: (how one policy value matches the request's value, negated). ArnEquals and
# ArnLike both take wildcards (IAM's condition operator reference); Bool compares "true"/"false".
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (_equals, False),
    "StringNotEquals": (_equals, True),
    "StringLike": (_like, False),
    "ArnEquals": (_like, False),
    "ArnLike": (_like, False),
    "Bool": (lambda pattern, value: pattern.lower() == value.lower(), False),
}


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def conditions_hold(conditions: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    """Every operator block and every key must hold (AND); a key's list of values is satisfied
    by any one of them (OR). A key missing from the request fails a positive operator and
    satisfies a negated one (StringNotEquals), as IAM evaluates them."""
    unknown = set(conditions) - set(_OPERATORS)
    assert not unknown, f"the evaluator does not know {unknown}"
    for operator, block in conditions.items():
        match, negated = _OPERATORS[operator]
        for key, values in block.items():
            if key not in context:
                if not negated:
                    return False
                continue
            matched = any(match(str(v), context[key]) for v in _values(values))
            if matched is negated:
                return False
    return True


def admits(policy: dict[str, Any], provider_arn: str, claims: dict[str, str]) -> bool:
    """Whether some Allow statement lets a web identity of ``provider_arn`` with ``claims``
    assume the role; a missing claim fails."""
    return any(
        statement["Effect"] == "Allow"
        and "sts:AssumeRoleWithWebIdentity" in _values(statement["Action"])
        and statement["Principal"].get("Federated") == provider_arn
        and conditions_hold(statement.get("Condition", {}), claims)
        for statement in policy["Statement"]
    )


def _applies(statement: dict[str, Any], action: str, resource: str, context: dict[str, str]) -> bool:
    """Whether a statement of an identity policy covers the request. Actions compare
    case-insensitively, resources case-sensitively, both with IAM's wildcards."""
    if "NotAction" in statement:
        action_matches = not any(_like(a.lower(), action.lower()) for a in _values(statement["NotAction"]))
    else:
        action_matches = any(_like(a.lower(), action.lower()) for a in _values(statement["Action"]))
    if "NotResource" in statement:
        resource_matches = not any(_like(r, resource) for r in _values(statement["NotResource"]))
    else:
        resource_matches = any(_like(r, resource) for r in _values(statement["Resource"]))
    return action_matches and resource_matches and conditions_hold(statement.get("Condition", {}), context)


def allows(
    policies: list[dict[str, Any]], action: str, resource: str, context: dict[str, str] | None = None
) -> bool:
    """IAM's decision for one principal's policies (identity policies, or a permissions
    boundary): an explicit Deny wins, then any Allow, else the implicit deny."""
    statements = [s for p in policies for s in _values(p["Statement"])]
    applying = [s for s in statements if _applies(s, action, resource, context or {})]
    if any(s["Effect"] == "Deny" for s in applying):
        return False
    return any(s["Effect"] == "Allow" for s in applying)
