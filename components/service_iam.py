"""IAM and bucket policy documents of the W.W.H.D. service, as data built from exact ARNs.

Wildcard resources appear only for actions that AWS does not scope to a resource
(X-Ray's writes and sampling calls, the ECS Exec SSM channel); no action is a wildcard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

VERSION = "2012-10-17"

EXECUTION_MANAGED_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"

EFS_CLIENT_ACTIONS = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
S3_OBJECT_ACTIONS = ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
# SSE-KMS: GetObject needs Decrypt, PutObject needs GenerateDataKey (and Decrypt for multipart).
KMS_DATA_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]
# X-Ray's service authorization reference lists no resource type for these actions.
XRAY_ACTIONS = [
    "xray:GetSamplingRules",
    "xray:GetSamplingStatisticSummaries",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
]
# ECS Exec's Session Manager channel; ssmmessages has no resource types either.
SSM_EXEC_ACTIONS = [
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
]
LOG_WRITE_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]


def _doc(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": statements}


ECS_TASKS_PRINCIPAL = "ecs-tasks.amazonaws.com"


def ecs_tasks_trust_policy(account: str, region: str) -> dict[str, Any]:
    """Trust ECS tasks of this account and region only (confused-deputy guard: another
    account's ECS cannot be made to assume the role on its behalf)."""
    return _doc(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": ECS_TASKS_PRINCIPAL},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": f"arn:aws:ecs:{region}:{account}:*"},
                },
            }
        ]
    )


def secret_source(reference: str, region: str, account: str) -> tuple[str, str]:
    """(service, ARN) of what an ECS ``secrets[].valueFrom`` reads: a Secrets Manager secret
    (its ARN, possibly followed by ``:json-key:version-stage:version-id``) or an SSM parameter
    (its ARN, or its name in the task's own region)."""
    if reference.startswith("arn:"):
        parts = reference.split(":")
        if parts[2] == "secretsmanager":
            return "secretsmanager", ":".join(parts[:7])
        return parts[2], reference
    name = reference if reference.startswith("/") else f"/{reference}"
    return "ssm", f"arn:aws:ssm:{region}:{account}:parameter{name}"


def execution_policy(
    secret_references: Sequence[str], key_arn: str, region: str, account: str
) -> dict[str, Any]:
    """What ECS needs beyond the managed policy to start a task: read exactly the secrets and
    parameters it injects, and decrypt them with the stack key."""
    sources: dict[str, set[str]] = {}
    for reference in secret_references:
        service, arn = secret_source(reference, region, account)
        sources.setdefault(service, set()).add(arn)
    statements: list[dict[str, Any]] = []
    if "secretsmanager" in sources:
        statements.append(
            {
                "Sid": "ReadInjectedSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": sorted(sources["secretsmanager"]),
            }
        )
    if "ssm" in sources:
        statements.append(
            {
                "Sid": "ReadInjectedParameters",
                "Effect": "Allow",
                "Action": "ssm:GetParameters",
                "Resource": sorted(sources["ssm"]),
            }
        )
    statements.append(
        {"Sid": "DecryptWithStackKey", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn}
    )
    return _doc(statements)


def efs_statement(sid: str, file_system_arn: str, access_point_arn: str) -> dict[str, Any]:
    """Mount and write the file system, only through one access point (whose POSIX user and
    root directory EFS then enforces)."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": EFS_CLIENT_ACTIONS,
        "Resource": file_system_arn,
        "Condition": {"StringEquals": {"elasticfilesystem:AccessPointArn": access_point_arn}},
    }


def api_task_policy(
    *,
    file_system_arn: str,
    access_point_arns: Sequence[tuple[str, str]],
    bucket_arn: str,
    key_arn: str,
    performance_log_group_arn: str,
    tracing: bool,
    ecs_exec: bool,
) -> dict[str, Any]:
    """What the API task's code may call. ``access_point_arns`` lists (sid, ARN) for each
    access point the task mounts (SQLite's, and Qdrant's when it is a sidecar)."""
    statements = [efs_statement(sid, file_system_arn, arn) for sid, arn in access_point_arns]
    statements += [
        {
            "Sid": "DocumentsObjects",
            "Effect": "Allow",
            "Action": S3_OBJECT_ACTIONS,
            "Resource": f"{bucket_arn}/*",
        },
        {"Sid": "DocumentsList", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn},
        {"Sid": "DocumentsEncryption", "Effect": "Allow", "Action": KMS_DATA_ACTIONS, "Resource": key_arn},
        {
            # The performance log group (seed 000) is written by the application itself
            # (awslogs sends only stdout/stderr, to the main group).
            "Sid": "PerformanceLogs",
            "Effect": "Allow",
            "Action": LOG_WRITE_ACTIONS,
            "Resource": f"{performance_log_group_arn}:*",
        },
    ]
    if tracing:
        statements.append({"Sid": "XRayWrite", "Effect": "Allow", "Action": XRAY_ACTIONS, "Resource": "*"})
    if ecs_exec:
        statements.append({"Sid": "EcsExec", "Effect": "Allow", "Action": SSM_EXEC_ACTIONS, "Resource": "*"})
    return _doc(statements)


def qdrant_task_policy(file_system_arn: str, access_point_arn: str) -> dict[str, Any]:
    """The Qdrant service's task: its own access point, nothing else."""
    return _doc([efs_statement("QdrantStorage", file_system_arn, access_point_arn)])


def deny_insecure_transport(bucket_arn: str) -> dict[str, Any]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def documents_bucket_policy(bucket_arn: str) -> dict[str, Any]:
    """TLS only; access itself is granted by the task role (same account)."""
    return _doc([deny_insecure_transport(bucket_arn)])


def alb_logs_bucket_policy(bucket_arn: str, account: str, principal: dict[str, str]) -> dict[str, Any]:
    """Let the regional ELB log delivery write this account's access logs, nothing else.

    ``principal`` is ``{"AWS": <ELB account root ARN>}`` in regions opened before August 2022
    (us-west-2: 797873946194) and ``{"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}``
    in later ones, as the ALB guide's "Attach a policy to your S3 bucket" step says."""
    return _doc(
        [
            {
                "Sid": "ElbLogDelivery",
                "Effect": "Allow",
                "Principal": principal,
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/AWSLogs/{account}/*",
            },
            deny_insecure_transport(bucket_arn),
        ]
    )
