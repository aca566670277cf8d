"""WwhdRoles: who may assume each role (read from the trust policies), and that they start empty."""

from __future__ import annotations

import json

import pytest

from components.roles import WwhdRoles, WwhdRolesArgs
from tools.mocks import ACCOUNT_ID, RecordingMonitor, resolve, settle

ROLE = "aws:iam/role:Role"


def build(monitor: RecordingMonitor, qdrant_service: bool = False) -> WwhdRoles:
    roles = WwhdRoles("t", WwhdRolesArgs(region="us-west-2", qdrant_service=qdrant_service))
    settle()
    return roles


@pytest.mark.parametrize("qdrant_service", [False, True])
def test_roles_per_topology(mocks: RecordingMonitor, qdrant_service: bool) -> None:
    roles = build(mocks, qdrant_service)
    names = {r.name for r in mocks.of_type(ROLE)}
    expected = {"t-api-task", "t-execution"}
    if qdrant_service:
        expected |= {"t-qdrant-task", "t-qdrant-execution"}
    assert names == expected
    assert resolve(roles.api_task_role_arn) == mocks.one(ROLE, "t-api-task").outputs["arn"]
    assert resolve(roles.execution_role_name) == mocks.one(ROLE, "t-execution").outputs["name"]
    task_roles = roles.task_roles()
    assert (task_roles.qdrant_task_role_arn is None) is not qdrant_service
    assert (roles.qdrant_execution_role_name is None) is not qdrant_service


def test_task_and_execution_roles_are_distinct(mocks: RecordingMonitor) -> None:
    roles = build(mocks, qdrant_service=True)
    arns = [
        resolve(roles.api_task_role_arn),
        resolve(roles.execution_role_arn),
        resolve(roles.qdrant_task_role_arn),
        resolve(roles.qdrant_execution_role_arn),
    ]
    assert len(set(arns)) == 4


def test_trust_only_this_accounts_ecs_tasks_in_this_region(mocks: RecordingMonitor) -> None:
    build(mocks, qdrant_service=True)
    for role in mocks.of_type(ROLE):
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert statement["Action"] == "sts:AssumeRole"
        # Confused-deputy guard: another account's ECS cannot assume these roles.
        assert statement["Condition"] == {
            "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": f"arn:aws:ecs:us-west-2:{ACCOUNT_ID}:*"},
        }


def test_roles_start_without_permissions(mocks: RecordingMonitor) -> None:
    """Permissions come later from WwhdService, as separate resources."""
    build(mocks, qdrant_service=True)
    for role in mocks.of_type(ROLE):
        assert not role.inputs.get("inlinePolicies"), role.name
        assert not role.inputs.get("managedPolicyArns"), role.name
    assert mocks.of_type("aws:iam/rolePolicy:RolePolicy") == []
    assert mocks.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []


def test_children_are_parented_to_the_component(mocks: RecordingMonitor) -> None:
    build(mocks, qdrant_service=True)
    component = mocks.one("wwhd:index:WwhdRoles")
    for r in mocks.registrations:
        if r is not component and r.type != "pulumi:pulumi:Stack":
            assert r.parent == component.urn, r.name
