"""IAM and bucket policy documents of the W.W.H.D. services, as data built from ARNs formed
from names (known before anything exists, so the policy pack judges them on a new stack).

Wildcard resources appear only for actions that AWS does not scope to a resource (X-Ray's
writes and sampling calls, the ECS Exec SSM channel); no action is a wildcard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from iam_document import policy_document
from session_manager import CHANNEL_ACTIONS

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
LOG_WRITE_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]
# What the task's pull needs for an image behind a pull-through cache rule: ECR creates the
# cached repository and imports the upstream image on the first pull.
PULL_THROUGH_ACTIONS = ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]


ECS_TASKS_PRINCIPAL = "ecs-tasks.amazonaws.com"


def ecs_tasks_trust_policy(account: str, region: str) -> dict[str, Any]:
    """Trust ECS tasks of this account and region only (confused-deputy guard: another
    account's ECS cannot be made to assume the role on its behalf)."""
    return policy_document(
        {
            "Effect": "Allow",
            "Principal": {"Service": ECS_TASKS_PRINCIPAL},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:aws:ecs:{region}:{account}:*"},
            },
        }
    )


@dataclass(frozen=True)
class Scope:
    """Where the stack lives, for ARNs formed from names: known before anything exists, so the
    documents built from them can be judged by the policy pack on a stack not yet created."""

    region: str
    account: str
    key_alias: str
    """The stack key's alias (``alias/wwhd-<stack>``): its key id is random, so statements reach
    the key through the alias (``kms:ResourceAliases``) rather than through its ARN."""
    partition: str = "aws"

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account}:{resource}"

    def role_arn(self, name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{name}"

    def stack_key(self, sid: str, actions: Sequence[str] | str) -> dict[str, Any]:
        """Use the stack key, and no other: any key of the account that carries the stack's alias."""
        return {
            "Sid": sid,
            "Effect": "Allow",
            "Action": actions,
            "Resource": self.arn("kms", "key/*"),
            "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": self.key_alias}},
        }


def secret_source(reference: str, scope: Scope) -> tuple[str, str]:
    """(service, ARN) of what an ECS ``secrets[].valueFrom`` reads: a Secrets Manager secret
    (its ARN, possibly followed by ``:json-key:version-stage:version-id``) or an SSM parameter
    (its ARN, or its name in the task's own region)."""
    if reference.startswith("arn:"):
        parts = reference.split(":")
        if parts[2] == "secretsmanager":
            return "secretsmanager", ":".join(parts[:7])
        return parts[2], reference
    name = reference if reference.startswith("/") else f"/{reference}"
    return "ssm", scope.arn("ssm", f"parameter{name}")


# What the execution role calls to read an injected secret, by the service that holds it; the
# statement's Sid first. (ECS reads parameters with GetParameters, plural.)
INJECTION_READS: dict[str, tuple[str, str]] = {
    "secretsmanager": ("ReadInjectedSecrets", "secretsmanager:GetSecretValue"),
    "ssm": ("ReadInjectedParameters", "ssm:GetParameters"),
}


def execution_policy(
    secret_references: Sequence[str], scope: Scope, cache_prefixes: Sequence[str] = ()
) -> dict[str, Any]:
    """What ECS needs beyond the managed policy to start a task: read exactly the secrets and
    parameters it injects, decrypt them with the stack key, and, for images behind the stack's
    pull-through cache, let ECR create the cached repository and import the image on first pull."""
    sources: dict[str, set[str]] = {}
    for reference in secret_references:
        service, arn = secret_source(reference, scope)
        sources.setdefault(service, set()).add(arn)
    statements: list[dict[str, Any]] = [
        {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": sorted(sources[service])}
        for service, (sid, action) in INJECTION_READS.items()
        if service in sources
    ]
    if sources:
        statements.append(scope.stack_key("DecryptWithStackKey", "kms:Decrypt"))
    if cache_prefixes:
        statements.append(
            {
                "Sid": "PullThroughCache",
                "Effect": "Allow",
                "Action": PULL_THROUGH_ACTIONS,
                "Resource": [scope.arn("ecr", f"repository/{prefix}/*") for prefix in sorted(cache_prefixes)],
            }
        )
    return policy_document(*statements)


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


def api_task_statements(
    scope: Scope,
    *,
    bucket: str,
    performance_log_group: str,
    tracing: bool,
    ecs_exec: bool,
    database_user: str | None,
) -> list[dict[str, Any]]:
    """What the API task's code may call, every ARN formed from a name. EFS is granted by the
    file system policy to the task role through its access points (the access point ids are
    random, so they stay out of this document)."""
    bucket_arn = f"arn:{scope.partition}:s3:::{bucket}"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "DocumentsObjects",
            "Effect": "Allow",
            "Action": S3_OBJECT_ACTIONS,
            "Resource": f"{bucket_arn}/*",
        },
        {"Sid": "DocumentsList", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn},
        scope.stack_key("DocumentsEncryption", KMS_DATA_ACTIONS),
        {
            # The performance log group (seed 000) is written by the application itself
            # (awslogs sends only stdout/stderr, to the main group).
            "Sid": "PerformanceLogs",
            "Effect": "Allow",
            "Action": LOG_WRITE_ACTIONS,
            "Resource": scope.arn("logs", f"log-group:{performance_log_group}:*"),
        },
    ]
    if database_user is not None:
        statements.append(
            {
                # IAM database authentication as the app's own user. The instance's resource id
                # (dbuser:<DbiResourceId>/<user>) is random: any instance of this account and
                # region, as this user only.
                "Sid": "DatabaseConnect",
                "Effect": "Allow",
                "Action": "rds-db:connect",
                "Resource": scope.arn("rds-db", f"dbuser:*/{database_user}"),
            }
        )
    if tracing:
        statements.append({"Sid": "Tracing", "Effect": "Allow", "Action": XRAY_ACTIONS, "Resource": "*"})
    if ecs_exec:
        # ECS Exec opens Session Manager channels.
        statements.append(
            {"Sid": "EcsExec", "Effect": "Allow", "Action": list(CHANNEL_ACTIONS), "Resource": "*"}
        )
    return statements


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
    return policy_document(deny_insecure_transport(bucket_arn))


def alb_logs_bucket_policy(bucket_arn: str, account: str, principal: dict[str, str]) -> dict[str, Any]:
    """Let the regional ELB log delivery write this account's access logs, nothing else.

    ``principal`` is ``{"AWS": <ELB account root ARN>}`` in regions opened before August 2022
    (us-west-2: 797873946194) and ``{"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}``
    in later ones, as the ALB guide's "Attach a policy to your S3 bucket" step says."""
    return policy_document(
        {
            "Sid": "ElbLogDelivery",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/AWSLogs/{account}/*",
        },
        deny_insecure_transport(bucket_arn),
    )
