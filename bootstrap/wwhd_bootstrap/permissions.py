"""What the roles may do, beside the AWS managed policy each carries. Pure functions of plain
values (partition, account, ARNs), tested without mocks.

Preview: ``ReadOnlyAccess``, because `pulumi preview` and the provider's data sources read
describe/list/get APIs across every service the program uses, and a narrower list would break
with each new resource type. Its object and secret reads are then denied: the preview runs a
pull request's code, and a branch pushed by anyone with write access must not be able to print
a secret, a database row or an object into a CI log.

Deploy: ``PowerUserAccess`` (every service but IAM, Organizations and Account) plus the IAM the
program itself needs: its roles, all named ``wwhd-*`` (Pulumi names each after its logical
name, and every logical name starts with the component name ``wwhd``), their instance profiles,
the AWS managed policies it attaches, and passing those roles to the services that assume them.
Every role it creates or changes must carry the workload boundary (``boundary.py``): without
that condition, whoever can run the deploy workflow could create a ``wwhd-*`` role with any
inline policy, pass it to a service and so mint an administrator.

Image: push the API image to the stacks' repositories and nothing else, no managed policy.
"""

from __future__ import annotations

from typing import Any

from iam_document import policy_document
from wwhd_bootstrap.boundary import boundary_policy_arn

ROLE_NAME_PREFIX = "wwhd-"
"""Every IAM role (and instance profile) the program creates is auto-named
``wwhd-<component>-<suffix>``."""

PROGRAM_MANAGED_POLICIES = (
    "service-role/AmazonECSTaskExecutionRolePolicy",
    "service-role/AWSBackupServiceRolePolicyForBackup",
    "service-role/AWSBackupServiceRolePolicyForRestores",
    "service-role/AmazonRDSEnhancedMonitoringRole",
    # The Qdrant EC2 container instance: the ECS agent, and Session Manager instead of SSH.
    "service-role/AmazonEC2ContainerServiceforEC2Role",
    "AmazonSSMManagedInstanceCore",
)
"""The AWS managed policies the program attaches to its roles (``policy/<name>``); the deploy
role may attach these and no other, so it cannot hand a role of its own making
``AdministratorAccess``. Under the workload boundary a managed policy grants at most what the
boundary allows, so this list is a second fence, not the only one."""

PASSED_TO_SERVICES = (
    "ecs-tasks.amazonaws.com",  # task and execution roles in the task definitions
    "backup.amazonaws.com",  # the backup selection's role
    "vpc-flow-logs.amazonaws.com",  # the flow log's delivery role
    "monitoring.rds.amazonaws.com",  # RDS Enhanced Monitoring
    "ec2.amazonaws.com",  # the Qdrant container instance's role, through its instance profile
)
"""The services the program hands its roles to (iam:PassRole)."""

DATA_READ_ACTIONS = (
    "secretsmanager:GetSecretValue",
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:GetRecords",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
    "logs:StartQuery",
    "logs:GetQueryResults",
    "logs:StartLiveTail",
    "sqs:ReceiveMessage",
    "kinesis:GetRecords",
    "lambda:GetFunction",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
    "rds:DownloadDBLogFilePortion",
    "rds:DownloadCompleteDBLogFile",
    "athena:GetQueryResults",
    "elasticfilesystem:ClientMount",
)
"""Reads of data rather than configuration: secret values, items, log lines, image layers,
function code. ``ReadOnlyAccess`` grants several of them; the preview needs none."""

OBJECT_READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTorrent")
PARAMETER_READ_ACTIONS = (
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
)
"""Reads of parameter values: denied but for AWS's public parameters under ``/aws/service/``
(the latest AMI ids the program looks up for its instances; no account can create a parameter
whose name starts with ``aws``, so the carve-out reaches nothing of the account's)."""
DECRYPT_ACTIONS = ("kms:Decrypt", "kms:ReEncryptFrom")


def managed_policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"


def preview_policy(partition: str, state_bucket: str | None, secrets_key_arn: str | None) -> dict[str, Any]:
    """The preview role's inline policy: deny data reads; with a DIY backend, allow reading
    the state objects and decrypting with the secrets provider's key, and nothing else of the
    kind (a Deny with ``NotResource`` leaves exactly that one door)."""
    objects = f"arn:{partition}:s3:::{state_bucket}/*" if state_bucket else None
    statements: list[dict[str, Any]] = [
        {"Sid": "DenyDataReads", "Effect": "Deny", "Action": list(DATA_READ_ACTIONS), "Resource": "*"},
        _deny_except(
            "DenyParameterReads", PARAMETER_READ_ACTIONS, f"arn:{partition}:ssm:*:*:parameter/aws/service/*"
        ),
        _deny_except("DenyObjectReads", OBJECT_READ_ACTIONS, objects),
        _deny_except("DenyDecrypt", DECRYPT_ACTIONS, secrets_key_arn),
    ]
    if secrets_key_arn:
        # ReadOnlyAccess grants no kms:Decrypt; the awskms secrets provider needs it on its key.
        statements.append(
            {
                "Sid": "DecryptStackSecrets",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": secrets_key_arn,
            }
        )
    return policy_document(*statements)


def _deny_except(sid: str, actions: tuple[str, ...], allowed: str | None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Deny", "Action": list(actions)}
    if allowed:
        statement["NotResource"] = allowed
    else:
        statement["Resource"] = "*"
    return statement


def deploy_iam_policy(partition: str, account: str, protected_arns: list[str]) -> dict[str, Any]:
    """The deploy role's IAM: the program's ``wwhd-*`` roles and their policies, only with the
    workload boundary; their instance profiles; the managed policies it attaches; PassRole to
    the services that use them. Never the bootstrap's own roles and provider
    (``protected_arns``) nor the boundary policy, which an explicit Deny keeps out of reach
    even if they matched a pattern; never a role without the boundary or with another one."""
    roles = f"arn:{partition}:iam::{account}:role/{ROLE_NAME_PREFIX}*"
    boundary = boundary_policy_arn(partition, account)
    # IAM evaluates iam:PermissionsBoundary against the boundary the request sets (CreateRole,
    # PutRolePermissionsBoundary) or the role already carries (the others). These are the
    # role writes that support the key (the service authorization reference); a role of the
    # program without the boundary can only be given it, nothing else.
    within_boundary = {"StringEquals": {"iam:PermissionsBoundary": boundary}}
    return policy_document(
        {"Sid": "ReadIam", "Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"},
        {
            "Sid": "ManageProgramRolesWithinTheBoundary",
            "Effect": "Allow",
            "Action": [
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:DeleteRolePolicy",
                "iam:PutRolePermissionsBoundary",
                "iam:PutRolePolicy",
                "iam:UpdateAssumeRolePolicy",
                "iam:UpdateRole",
                "iam:UpdateRoleDescription",
            ],
            "Resource": roles,
            "Condition": within_boundary,
        },
        {
            # IAM's tagging actions take no iam:PermissionsBoundary key; a tag grants nothing.
            "Sid": "TagProgramRoles",
            "Effect": "Allow",
            "Action": ["iam:TagRole", "iam:UntagRole"],
            "Resource": roles,
        },
        {
            "Sid": "AttachProgramManagedPolicies",
            "Effect": "Allow",
            "Action": ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            "Resource": roles,
            "Condition": {
                "ArnEquals": {
                    "iam:PolicyARN": [managed_policy_arn(partition, p) for p in PROGRAM_MANAGED_POLICIES]
                },
                **within_boundary,
            },
        },
        {
            "Sid": "ManageProgramInstanceProfiles",
            "Effect": "Allow",
            "Action": [
                "iam:AddRoleToInstanceProfile",
                "iam:CreateInstanceProfile",
                "iam:DeleteInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:TagInstanceProfile",
                "iam:UntagInstanceProfile",
            ],
            "Resource": f"arn:{partition}:iam::{account}:instance-profile/{ROLE_NAME_PREFIX}*",
        },
        {
            "Sid": "PassProgramRoles",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": roles,
            "Condition": {"StringEquals": {"iam:PassedToService": list(PASSED_TO_SERVICES)}},
        },
        {
            "Sid": "KeepTheBoundary",
            "Effect": "Deny",
            "Action": ["iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary"],
            "Resource": "*",
        },
        {
            "Sid": "NoOtherBoundary",
            "Effect": "Deny",
            "Action": ["iam:PutRolePermissionsBoundary", "iam:PutUserPermissionsBoundary"],
            "Resource": "*",
            "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": boundary}},
        },
        {
            # Covers the boundary policy too: no new version, default version or deletion.
            "Sid": "KeepOffTheBootstrap",
            "Effect": "Deny",
            "NotAction": ["iam:Get*", "iam:List*"],
            "Resource": [*protected_arns, boundary],
        },
    )


IMAGE_REPOSITORIES = ("wwhd/*/api", "wwhd-prod-backend")
"""The stacks' API image repositories, as the main program names them (``workloads.py``,
``physical_names``): ``wwhd/<stack>/api``, and prod's ``wwhd-prod-backend``, kept since before
that scheme. Neither pattern reaches the pull-through caches (``wwhd-<stack>/...``)."""

IMAGE_PUSH_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    # The registry client asks for a manifest before pushing it (AWS lists this action among
    # those a push needs), and image.yml reads the pushed index to check its platforms.
    "ecr:BatchGetImage",
    # image.yml's checks before building: the repository exists, the tag is not taken.
    "ecr:DescribeRepositories",
    "ecr:DescribeImages",
)
"""What a push of an image index needs on the repository (ECR User Guide, "IAM permissions for
pushing an image"), plus two metadata reads. No layer download, no delete, no policy change."""


def image_push_policy(partition: str, account: str) -> dict[str, Any]:
    """The image role's inline policy: a registry login anywhere (``GetAuthorizationToken``
    takes no resource), pushes only to the stacks' repositories of this account."""
    return policy_document(
        {
            "Sid": "LogInToTheRegistry",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
        {
            "Sid": "PushApiImages",
            "Effect": "Allow",
            "Action": list(IMAGE_PUSH_ACTIONS),
            "Resource": [f"arn:{partition}:ecr:*:{account}:repository/{name}" for name in IMAGE_REPOSITORIES],
        },
    )
