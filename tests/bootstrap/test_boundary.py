"""No privilege escalation through the deploy role: what the registered deploy policy lets a
deploy do to IAM, and what the workload boundary lets any role of the program ever do, judged
the way IAM evaluates them (an explicit Deny wins, then an Allow, else the implicit deny)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from policy_sentry.querying.actions import get_action_data, get_actions_that_support_wildcard_arns_only

from tests.bootstrap.conftest import _like, _values, allows, bootstrap_run
from tests.conftest import RunStack
from tools.mocks import ACCOUNT_ID
from wwhd_bootstrap.boundary import boundary_policy_arn, workload_boundary
from wwhd_bootstrap.permissions import PROGRAM_MANAGED_POLICIES

BOUNDARY = f"arn:aws:iam::{ACCOUNT_ID}:policy/wwhd-workload-boundary"
OTHER_BOUNDARY = f"arn:aws:iam::{ACCOUNT_ID}:policy/wwhd-open"
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/wwhd-api-task-1234567"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/github-actions-wwhd-deploy"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/OrganizationAccountAccessRole"
PROFILE = f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/wwhd-qdrant-7654321"

# AWS's PowerUserAccess (the deploy role's managed policy) as its reference page shows it:
# everything but IAM, Organizations and Account, plus a few IAM calls AWS services need.
POWER_USER_ACCESS = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": [
                "account:GetAccountInformation",
                "account:GetPrimaryEmail",
                "account:ListRegions",
                "iam:CreateServiceLinkedRole",
                "iam:DeleteServiceLinkedRole",
                "iam:ListRoles",
                "organizations:DescribeOrganization",
            ],
            "Resource": "*",
        },
    ],
}


@pytest.fixture(scope="module")
def deploy() -> list[dict[str, Any]]:
    """The deploy role's policies: PowerUserAccess and the inline policy the bootstrap registers."""
    run = bootstrap_run()
    inline = json.loads(
        run.monitor.one("aws:iam/rolePolicy:RolePolicy", "deploy-program-iam").inputs["policy"]
    )
    return [POWER_USER_ACCESS, inline]


def bounded(boundary: str | None) -> dict[str, str]:
    """The request context of a role write: the boundary the request sets or the role carries."""
    return {"iam:PermissionsBoundary": boundary} if boundary else {}


# --- the deploy role -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action", ["iam:CreateRole", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:DeleteRolePolicy"]
)
def test_the_deploy_role_writes_program_roles_only_within_the_boundary(deploy: list, action: str) -> None:
    assert allows(deploy, action, ROLE, bounded(BOUNDARY))
    # Without a boundary, or with one of the deployer's choosing, a role could hold anything.
    assert not allows(deploy, action, ROLE, bounded(None))
    assert not allows(deploy, action, ROLE, bounded(OTHER_BOUNDARY))
    # Outside wwhd-*: never, boundary or not.
    assert not allows(deploy, action, ADMIN_ROLE, bounded(BOUNDARY))
    assert not allows(deploy, action, DEPLOY_ROLE, bounded(BOUNDARY))


def test_the_deploy_role_attaches_only_the_programs_managed_policies(deploy: list) -> None:
    def attach(policy: str, boundary: str | None = BOUNDARY) -> bool:
        context = {"iam:PolicyARN": f"arn:aws:iam::aws:policy/{policy}", **bounded(boundary)}
        return allows(deploy, "iam:AttachRolePolicy", ROLE, context)

    assert all(attach(p) for p in PROGRAM_MANAGED_POLICIES)
    assert not attach("AdministratorAccess")
    assert not attach("IAMFullAccess")
    assert not attach("service-role/AmazonECSTaskExecutionRolePolicy", boundary=None)


def test_the_boundary_cannot_be_removed_swapped_or_rewritten(deploy: list) -> None:
    # A role of the program without a boundary (made before it existed) may only be given it.
    assert allows(deploy, "iam:PutRolePermissionsBoundary", ROLE, bounded(BOUNDARY))
    assert not allows(deploy, "iam:PutRolePermissionsBoundary", ROLE, bounded(OTHER_BOUNDARY))
    assert not allows(deploy, "iam:DeleteRolePermissionsBoundary", ROLE, bounded(BOUNDARY))
    for action in ("iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy"):
        assert not allows(deploy, action, BOUNDARY), action
    # Nor can the deployer make a boundary of its own to point a role at.
    assert not allows(deploy, "iam:CreatePolicy", OTHER_BOUNDARY)


def test_the_deploy_role_passes_program_roles_to_the_programs_services_only(deploy: list) -> None:
    def passes(role: str, service: str) -> bool:
        return allows(deploy, "iam:PassRole", role, {"iam:PassedToService": service})

    for service in ("ecs-tasks.amazonaws.com", "ec2.amazonaws.com", "backup.amazonaws.com"):
        assert passes(ROLE, service), service
    assert not passes(ROLE, "lambda.amazonaws.com")
    assert not passes(ADMIN_ROLE, "ec2.amazonaws.com")
    assert not passes(DEPLOY_ROLE, "ecs-tasks.amazonaws.com")


def test_the_deploy_role_manages_the_container_instance_profile(deploy: list) -> None:
    for action in ("iam:CreateInstanceProfile", "iam:AddRoleToInstanceProfile", "iam:DeleteInstanceProfile"):
        assert allows(deploy, action, PROFILE), action
    assert not allows(
        deploy, "iam:AddRoleToInstanceProfile", f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/admin"
    )


def test_the_bootstrap_itself_stays_out_of_reach(deploy: list) -> None:
    for action in ("iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:DeleteRole", "iam:TagRole"):
        assert not allows(deploy, action, DEPLOY_ROLE, bounded(BOUNDARY)), action
    provider = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
    assert not allows(deploy, "iam:DeleteOpenIDConnectProvider", provider)


# --- the boundary ----------------------------------------------------------------------------

DOCUMENT = workload_boundary("aws", ACCOUNT_ID)
# What AWS puts in the request context when the program's roles call: its own account's
# buckets, grants AWS services make on their behalf, the ECS agent's registration.
CONTEXT = {
    "s3:ResourceAccount": ACCOUNT_ID,
    "kms:GrantIsForAWSResource": "true",
    "ecs:CreateAction": "RegisterContainerInstance",
}
EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def under_boundary(action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    """What a role with an inline policy allowing everything may do under the boundary."""
    ctx = CONTEXT if context is None else context
    return allows([EVERYTHING], action, resource, ctx) and allows([DOCUMENT], action, resource, ctx)


def test_the_contract_arn() -> None:
    assert boundary_policy_arn("aws", ACCOUNT_ID) == BOUNDARY
    assert boundary_policy_arn("aws-us-gov", ACCOUNT_ID).startswith("arn:aws-us-gov:iam::")


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("iam:CreateRole", f"arn:aws:iam::{ACCOUNT_ID}:role/wwhd-x"),
        ("iam:PassRole", ADMIN_ROLE),
        ("iam:DeleteRolePermissionsBoundary", ROLE),
        ("iam:CreatePolicyVersion", BOUNDARY),
        ("organizations:LeaveOrganization", "*"),
        ("sts:AssumeRole", ADMIN_ROLE),
        ("s3:GetObject", "arn:aws:s3:::another-teams-bucket/key"),
        ("rds:DeleteDBInstance", f"arn:aws:rds:us-west-2:{ACCOUNT_ID}:db:wwhd-db"),
        (
            "elasticfilesystem:DeleteFileSystem",
            f"arn:aws:elasticfilesystem:us-west-2:{ACCOUNT_ID}:file-system/fs-1",
        ),
        ("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-west-2:210987654321:secret:x-AbCdEf"),
        ("kms:CreateGrant", f"arn:aws:kms:us-west-2:{ACCOUNT_ID}:key/k"),  # without GrantIsForAWSResource
    ],
)
def test_no_role_under_the_boundary_can_do_this(action: str, resource: str) -> None:
    context = {k: v for k, v in CONTEXT.items() if action != "kms:CreateGrant" or not k.startswith("kms:")}
    assert not under_boundary(action, resource, context)


def test_a_same_named_bucket_of_another_account_is_out_of_reach() -> None:
    key = "arn:aws:s3:::wwhd-documents-6eb00ee/upload.pdf"
    assert under_boundary("s3:PutObject", key)
    assert not under_boundary("s3:PutObject", key, {**CONTEXT, "s3:ResourceAccount": "210987654321"})


@cache
def _resource_types(action: str) -> tuple[str, ...]:
    service, name = action.split(":")
    rows = next(iter(get_action_data(service, name).values()), [])
    return tuple(r["resource_arn_format"] for r in rows)


def test_every_boundary_action_is_a_real_iam_action() -> None:
    """A misspelt action in a boundary is a permission silently missing on AWS."""
    actions = {a for s in DOCUMENT["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}
    assert not [a for a in sorted(actions) if not _resource_types(a)]


def test_scoped_statements_name_no_wildcard_only_action() -> None:
    """IAM authorizes an action without resource types against "*" only: under a statement
    naming ARNs it would never be allowed."""
    misplaced = []
    for st in DOCUMENT["Statement"]:
        if st["Effect"] != "Allow" or st["Resource"] == "*":
            continue
        for action in st["Action"]:
            service = action.split(":")[0]
            if action in get_actions_that_support_wildcard_arns_only(service):
                misplaced.append((st["Sid"], action))
    assert misplaced == []


def _non_whitespace(document: dict[str, Any]) -> int:
    return len("".join(json.dumps(document).split()))


def test_the_documents_fit_iams_size_quotas() -> None:
    """IAM refuses a managed policy over 6,144 characters and a role's inline policies over
    10,240 in total (whitespace not counted)."""
    assert _non_whitespace(workload_boundary("aws-us-gov", ACCOUNT_ID)) <= 6144
    run = bootstrap_run()
    inline = [json.loads(p.inputs["policy"]) for p in run.monitor.of_type("aws:iam/rolePolicy:RolePolicy")]
    assert all(_non_whitespace(p) <= 10240 for p in inline)


def _program_grants(run: Any) -> list[tuple[str, str, str]]:
    """(role policy, action, resource) for every Allow of the program's inline role policies."""
    documents = [
        (p.name, json.loads(p.inputs["policy"])) for p in run.monitor.of_type("aws:iam/rolePolicy:RolePolicy")
    ]
    for role in run.monitor.of_type("aws:iam/role:Role"):
        documents += [(role.name, json.loads(p["policy"])) for p in role.inputs.get("inlinePolicies") or []]
    return [
        (name, action, resource)
        for name, doc in documents
        for st in _values(doc["Statement"])
        if st["Effect"] == "Allow"
        for action in _values(st["Action"])
        for resource in _values(st["Resource"])
    ]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_boundary_admits_everything_the_program_grants(run_stack: RunStack, stack: str) -> None:
    """A permission the program grants and the boundary cuts fails on AWS only, when the task
    calls it: a new permission in the program fails here first."""
    grants = _program_grants(run_stack(stack))
    assert grants
    cut = [g for g in grants if not allows([DOCUMENT], g[1], g[2], CONTEXT)]
    assert cut == []


# What the program's roles do with the AWS managed policies attached to them (each policy's
# reference page, version read in 2026), for the resources this program has. The boundary must
# leave these standing, or the managed policy grants them in vain. Per policy: resource -> actions on it.
def _arn(service: str, resource: str, region: str = "us-west-2") -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"


MANAGED_POLICY_NEEDS: dict[str, dict[str, list[str]]] = {
    "service-role/AmazonECSTaskExecutionRolePolicy": {
        "*": ["ecr:GetAuthorizationToken"],
        _arn("ecr", "repository/wwhd-api"): ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
        _arn("logs", "log-group:/wwhd/prod/api:log-stream:api/1"): ["logs:CreateLogStream", "logs:PutLogEvents"],
    },
    "service-role/AWSBackupServiceRolePolicyForBackup": {
        _arn("elasticfilesystem", "file-system/fs-1"): ["elasticfilesystem:Backup", "elasticfilesystem:DescribeTags"],
        _arn("backup", "backup-vault:wwhd-vault"): ["backup:DescribeBackupVault"],
        _arn("backup", "backup-vault:wwhd-vault-copy", "us-east-1"): ["backup:CopyIntoBackupVault"],
        _arn("backup", "recovery-point:1EB3B5E7-9EB0-435A"): ["backup:CopyFromBackupVault"],
        _arn("kms", "key/k"): ["kms:DescribeKey", "kms:CreateGrant", "kms:GenerateDataKeyWithoutPlaintext"],
        "*": ["tag:GetResources", "ec2:DescribeVolumes"],
        _arn("rds", "db:wwhd-db"): ["rds:CreateDBSnapshot"],
        _arn("rds", "snapshot:awsbackup:job-1"): ["rds:CopyDBSnapshot", "rds:DeleteDBSnapshot"],
        _arn("ec2", "volume/vol-1"): ["ec2:CreateSnapshot"],
        "arn:aws:ec2:us-west-2::snapshot/snap-1": ["ec2:CreateTags", "ec2:DeleteSnapshot"],
    },
    "service-role/AWSBackupServiceRolePolicyForRestores": {
        _arn("elasticfilesystem", "file-system/fs-1"): ["elasticfilesystem:Restore"],
        "*": ["elasticfilesystem:CreateFileSystem"],
        _arn("elasticfilesystem", "file-system/fs-2"): ["elasticfilesystem:DescribeFileSystems"],
        _arn("rds", "db:wwhd-db-restored"): ["rds:RestoreDBInstanceFromDBSnapshot"],
        _arn("ec2", "volume/vol-2"): ["ec2:CreateVolume"],
        _arn("kms", "key/k"): ["kms:Decrypt", "kms:CreateGrant"],
    },
    "service-role/AmazonRDSEnhancedMonitoringRole": {
        _arn("logs", "log-group:RDSOSMetrics"): ["logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:DescribeLogStreams"],
        _arn("logs", "log-group:RDSOSMetrics:log-stream:db-ABC"): ["logs:CreateLogStream", "logs:PutLogEvents"],
    },
    "service-role/AmazonEC2ContainerServiceforEC2Role": {
        "*": ["ec2:DescribeTags", "ecs:DiscoverPollEndpoint"],
        _arn("ecs", "cluster/wwhd-cluster"): ["ecs:RegisterContainerInstance", "ecs:SubmitTaskStateChange"],
        _arn("ecs", "container-instance/wwhd-cluster/abc"): ["ecs:Poll", "ecs:StartTelemetrySession", "ecs:TagResource"],
        _arn("ecr", "repository/wwhd-qdrant"): ["ecr:BatchGetImage"],
        _arn("logs", "log-group:/wwhd/prod/qdrant:log-stream:q/1"): ["logs:PutLogEvents"],
    },
    "AmazonSSMManagedInstanceCore": {
        _arn("ec2", "instance/i-1"): ["ssm:UpdateInstanceInformation"],
        "*": ["ssmmessages:CreateControlChannel", "ssmmessages:OpenDataChannel", "ec2messages:GetMessages"],
    },
}  # fmt: skip


def test_every_managed_policy_the_deploy_role_may_attach_has_its_needs_recorded() -> None:
    assert set(MANAGED_POLICY_NEEDS) == set(PROGRAM_MANAGED_POLICIES)


@pytest.mark.parametrize("policy", sorted(MANAGED_POLICY_NEEDS))
def test_the_boundary_leaves_the_managed_policies_working(policy: str) -> None:
    needs = [(a, r) for r, actions in MANAGED_POLICY_NEEDS[policy].items() for a in actions]
    cut = [(a, r) for a, r in needs if not allows([DOCUMENT], a, r, CONTEXT)]
    assert cut == []


def test_the_evaluator_reads_wildcards_like_iam() -> None:
    """The matcher the coverage tests rely on: '*' spans ':' and '/' in resources."""
    assert _like("arn:aws:logs:*:1:log-group:*", "arn:aws:logs:us-west-2:1:log-group:/a/b:log-stream:c")
    assert _like("arn:aws:ec2:*::snapshot/*", "arn:aws:ec2:us-west-2::snapshot/snap-1")
    assert not _like("arn:aws:ecs:*:1:*", "*")
