"""Security policies."""

from __future__ import annotations

import json

import pytest
from wwhd_policies import security as sec

from .conftest import UNKNOWN, R, check_resource, check_stack

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
TD = "aws:ecs/taskDefinition:TaskDefinition"


def doc(*statements: dict) -> dict:
    return {"policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)})}


def test_iam_no_wildcard_actions() -> None:
    scoped = {
        "Effect": "Allow",
        "Action": ["elasticfilesystem:ClientMount"],
        "Resource": "arn:aws:elasticfilesystem:x",
    }
    assert check_resource(sec.iam_no_wildcard_actions, ROLE_POLICY, doc(scoped)) == []
    assert check_resource(
        sec.iam_no_wildcard_actions, ROLE_POLICY, doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    )
    assert check_resource(
        sec.iam_no_wildcard_actions,
        ROLE_POLICY,
        doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
    )
    # Deny statements may use wildcards.
    assert (
        check_resource(
            sec.iam_no_wildcard_actions, ROLE_POLICY, doc({"Effect": "Deny", "Action": "*", "Resource": "*"})
        )
        == []
    )


@pytest.mark.parametrize(
    ("action", "reaches"),
    [
        ("iam:Pass*", "iam:passrole"),
        ("iam:Put*Policy", "iam:putrolepolicy"),
        ("kms:*Grant", "kms:creategrant"),
        ("kms:GenerateDataKey*", None),  # data-plane actions only
        ("s3:Get*", None),
    ],
)
def test_partial_wildcards_that_reach_permissions_management_violate(
    action: str, reaches: str | None
) -> None:
    found = check_resource(
        sec.iam_no_wildcard_actions, ROLE_POLICY, doc({"Effect": "Allow", "Action": action, "Resource": "*"})
    )
    if reaches is None:
        assert found == []
    else:
        assert len(found) == 1 and reaches in found[0]


def test_partial_wildcard_of_an_unknown_service_is_undecided() -> None:
    [message] = check_resource(
        sec.iam_no_wildcard_actions,
        ROLE_POLICY,
        doc({"Effect": "Allow", "Action": "nosuchservice:Get*", "Resource": "*"}),
    )
    assert message.startswith("undecided [policy]: ") and "not in the IAM action database" in message


def test_iam_inline_role_policies_are_checked() -> None:
    role = {
        "inlinePolicies": [
            {
                "name": "x",
                "policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
            }
        ]
    }
    assert check_resource(sec.iam_no_wildcard_actions, "aws:iam/role:Role", role)


def test_iam_policy_unknown_document_is_undecided() -> None:
    [message] = check_resource(sec.iam_no_wildcard_actions, ROLE_POLICY, {"policy": UNKNOWN})
    assert message.startswith("undecided [policy]: ")


def test_iam_no_admin_policies() -> None:
    rpa = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    ecs_exec = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    assert check_stack(sec.iam_no_admin_policies, [R(rpa, "a", {"policyArn": ecs_exec})]) == []
    for name in ("AdministratorAccess", "IAMFullAccess", "PowerUserAccess"):
        assert check_stack(
            sec.iam_no_admin_policies, [R(rpa, "a", {"policyArn": f"arn:aws:iam::aws:policy/{name}"})]
        )


def test_iam_wildcard_resource_justified_uses_policy_sentry() -> None:
    justified = {
        "Effect": "Allow",
        "Action": ["ecr:GetAuthorizationToken", "xray:PutTraceSegments"],
        "Resource": "*",
    }
    assert check_resource(sec.iam_wildcard_resource_justified, ROLE_POLICY, doc(justified)) == []
    lazy = {
        "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue", "ecr:GetAuthorizationToken"],
        "Resource": "*",
    }
    msgs = check_resource(sec.iam_wildcard_resource_justified, ROLE_POLICY, doc(lazy))
    assert len(msgs) == 1 and "['secretsmanager:GetSecretValue']" in msgs[0]


def test_iam_wildcard_resource_unknown_action_is_undecided() -> None:
    odd = {"Effect": "Allow", "Action": ["madeup:DoThing"], "Resource": "*"}
    [message] = check_resource(sec.iam_wildcard_resource_justified, ROLE_POLICY, doc(odd))
    assert message.startswith("undecided [policy]: ") and "IAM action database" in message


def env_td(env: list[dict], **extra) -> dict:
    return {"containerDefinitions": json.dumps([{"name": "api", "image": "x:1", "environment": env} | extra])}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPENAI_API_KEY", "sk-abcdefghijklmnopqrstuvwxyz123456"),
        ("DATABASE_URL", "postgresql://wwhd:hunter2@db.internal:5432/wwhd"),
        ("JWT_SECRET", "change-me"),
        ("ADMIN_PASSWORD", "p"),
        ("SOMETHING", "AKIAIOSFODNN7EXAMPLE"),
    ],
)
def test_secrets_not_in_environment_flags_credentials(name: str, value: str) -> None:
    assert check_resource(sec.ecs_secrets_not_in_environment, TD, env_td([{"name": name, "value": value}]))


def test_secrets_not_in_environment_allows_plain_settings_and_secrets_block() -> None:
    env = [
        {"name": "QDRANT_URL", "value": "http://localhost:6333"},
        {"name": "DATABASE_URL", "value": "sqlite:////data/wwhd.db"},
        {"name": "OPENAI_SECRET_ARN", "value": "arn:aws:secretsmanager:us-west-2:1:secret:x"},
        {"name": "TOKEN_EXPIRE_MINUTES", "value": "30"},
    ]
    td = env_td(
        env, secrets=[{"name": "OPENAI_API_KEY", "valueFrom": "arn:aws:secretsmanager:us-west-2:1:secret:x"}]
    )
    assert check_resource(sec.ecs_secrets_not_in_environment, TD, td) == []
    flagged = env_td([{"name": "API_TOKEN", "value": "abc"}])
    assert (
        check_resource(sec.ecs_secrets_not_in_environment, TD, flagged, config={"allowNames": ["API_TOKEN"]})
        == []
    )


def test_task_role_separate() -> None:
    same = {"taskRoleArn": "arn:aws:iam::1:role/r", "executionRoleArn": "arn:aws:iam::1:role/r"}
    assert check_stack(sec.ecs_task_role_separate, [R(TD, "td", same)])
    diff = {"taskRoleArn": "arn:aws:iam::1:role/task", "executionRoleArn": "arn:aws:iam::1:role/exec"}
    assert check_stack(sec.ecs_task_role_separate, [R(TD, "td", diff)]) == []
    blind = R(TD, "td", {"taskRoleArn": UNKNOWN, "executionRoleArn": UNKNOWN})
    [(message, _)] = check_stack(sec.ecs_task_role_separate, [blind])
    assert message.startswith("undecided [taskRoleArn]: ")


def test_no_privileged_and_read_only_root() -> None:
    assert check_resource(sec.ecs_no_privileged_containers, TD, env_td([], privileged=True))
    assert check_resource(sec.ecs_no_privileged_containers, TD, env_td([])) == []
    assert check_resource(sec.ecs_read_only_root_filesystem, TD, env_td([]))
    assert (
        check_resource(sec.ecs_read_only_root_filesystem, TD, env_td([], readonlyRootFilesystem=True)) == []
    )
