"""Encryption at rest and in transit: EFS, logs, SNS, S3, RDS, KMS, Secrets Manager, ECR, ALB."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from . import _aws as aws
from ._util import (
    ADVISORY,
    MANDATORY,
    Findings,
    Res,
    Stack,
    as_int,
    as_list,
    is_unknown,
    resource_policy,
    stack_name,
    stack_policy,
    truthy,
)


def _is_set(value: Any) -> bool:
    """A key reference counts as set when present, even if unknown during preview: an unknown
    ARN is the ARN of a key this deployment creates."""
    return value is not None and value != ""


def _check_efs(r: Res, _cfg: dict[str, Any], out: Findings) -> None:
    encrypted = r.get("encrypted")
    if is_unknown(encrypted):
        out.cannot_decide(f"{r.label()}: encrypted is unknown during preview")
    elif not truthy(encrypted):
        out.violation(f"{r.label()} is not encrypted at rest.")
    if not _is_set(r.get("kmsKeyId")):
        out.violation(f"{r.label()} uses the AWS-managed key: set kmsKeyId to a customer managed key.")


efs_encrypted = resource_policy(
    name="efs-encrypted",
    description="EFS file systems are encrypted at rest with a customer managed KMS key.",
    types=[aws.EFS_FS],
    check=_check_efs,
    level=MANDATORY,
    severity=Severity.HIGH,
    remediation="Set encrypted=True and kms_key_id to a customer managed key (enable_key_rotation=True). "
    "EFS encryption cannot be changed in place: the file system must be replaced and data copied.",
)


def _check_ecs_efs_transit(r: Res, _cfg: dict[str, Any], out: Findings) -> None:
    for vol in aws.efs_volumes(r):
        efs = vol["efsVolumeConfiguration"]
        name = vol.get("name", "?")
        transit = efs.get("transitEncryption")
        auth = efs.get("authorizationConfig") or {}
        iam = auth.get("iam") if isinstance(auth, dict) else None
        if is_unknown(transit) or is_unknown(iam) or is_unknown(auth):
            out.cannot_decide(f"{r.label()} volume '{name}': EFS settings unknown during preview")
            continue
        if transit != "ENABLED":
            out.violation(f"{r.label()} volume '{name}' mounts EFS without transitEncryption=ENABLED.")
        if iam != "ENABLED":
            out.violation(f"{r.label()} volume '{name}' mounts EFS without authorizationConfig.iam=ENABLED.")


ecs_efs_transit_encryption = resource_policy(
    name="ecs-efs-transit-encryption",
    description="Every EFS volume of an ECS task definition uses TLS in transit and IAM authorization.",
    types=[aws.TASK_DEF],
    check=_check_ecs_efs_transit,
    level=MANDATORY,
    severity=Severity.HIGH,
    remediation="In each volume's efs_volume_configuration set transit_encryption='ENABLED' and "
    "authorization_config={'iam': 'ENABLED', 'access_point_id': ...}; grant the task role "
    "elasticfilesystem:ClientMount/ClientWrite on that access point.",
)


def _check_log_group_kms(r: Res, _cfg: dict[str, Any], out: Findings) -> None:
    if not _is_set(r.get("kmsKeyId")):
        out.violation(f"{r.label()} is not encrypted with a customer managed KMS key.")


log_group_encrypted = resource_policy(
    name="log-group-encrypted",
    description="CloudWatch log groups are encrypted with a customer managed KMS key.",
    types=[aws.LOG_GROUP],
    check=_check_log_group_kms,
    level=MANDATORY,
    severity=Severity.MEDIUM,
    remediation="Set kms_key_id on the log group; the key policy must allow the "
    "logs.<region>.amazonaws.com principal (kms:Encrypt*, Decrypt*, ReEncrypt*, GenerateDataKey*, Describe*).",
)


def _check_log_retention(r: Res, cfg: dict[str, Any], out: Findings) -> None:
    value = r.get("retentionInDays")
    if is_unknown(value):
        out.cannot_decide(f"{r.label()}: retentionInDays is unknown during preview")
        return
    days = as_int(value)
    if not days:
        out.violation(f"{r.label()} keeps logs forever (no retentionInDays): set a retention period.")
        return
    minimum = as_int(cfg.get("minDays")) or 0
    maximum = as_int(cfg.get("maxDays"))
    if days < minimum:
        out.violation(f"{r.label()} keeps logs {days} days, less than the required {minimum}.")
    if maximum and days > maximum:
        out.violation(f"{r.label()} keeps logs {days} days, more than the allowed {maximum}.")


log_group_retention = resource_policy(
    name="log-group-retention",
    description="CloudWatch log groups have a retention period (never 'keep forever').",
    types=[aws.LOG_GROUP],
    check=_check_log_retention,
    level=MANDATORY,
    severity=Severity.LOW,
    remediation="Set retention_in_days (e.g. 7 for dev, 30-90 for prod).",
    schema={
        "minDays": {"type": "integer", "default": 1, "description": "Shortest allowed retention."},
        "maxDays": {"type": "integer", "default": 3653, "description": "Longest allowed retention."},
    },
)


def _check_sns(r: Res, _cfg: dict[str, Any], out: Findings) -> None:
    if not _is_set(r.get("kmsMasterKeyId")):
        out.violation(f"{r.label()} has no kmsMasterKeyId: messages are stored unencrypted.")


sns_topic_encrypted = resource_policy(
    name="sns-topic-encrypted",
    description="SNS topics are encrypted with KMS.",
    types=[aws.SNS_TOPIC],
    check=_check_sns,
    level=MANDATORY,
    severity=Severity.MEDIUM,
    remediation="Set kms_master_key_id to a customer managed key whose policy lets "
    "cloudwatch.amazonaws.com use it (alarm notifications), or 'alias/aws/sns' at least.",
)


# --- S3: pulumi-aws 7 splits a bucket into separate resources -----------------------------

_PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _bucket_targets(stack: Stack, subs: list[Res]) -> tuple[dict[str, list[tuple[Res, Res]]], list[Res]]:
    """Which bucket each sub-resource (SSE config, access block) points at, resolved once each.

    Returns ({bucket urn: [(sub-resource, bucket it resolved to)], in stack order}, the
    sub-resources whose bucket is unknown and cannot be resolved at all)."""
    targets: dict[str, list[tuple[Res, Res]]] = {}
    unknown: list[Res] = []
    for sub in subs:
        value = sub.get("bucket")
        found = stack.resolve(sub, "bucket", value, aws.BUCKETS)
        if found is None:
            if is_unknown(value):
                unknown.append(sub)
            continue
        for b in found:
            targets.setdefault(b.urn, []).append((sub, b))
    return targets, unknown


def _subs_of(bucket: Res, targets: dict[str, list[tuple[Res, Res]]]) -> list[Res]:
    """The sub-resources that resolved to this bucket, once each, in stack order."""
    subs: list[Res] = []
    for sub, b in targets.get(bucket.urn, ()):
        if b is bucket and not any(sub is s for s in subs):
            subs.append(sub)
    return subs


def _check_s3(stack: Stack, _cfg: dict[str, Any], out: Findings) -> None:
    sse_targets, sse_unknown = _bucket_targets(stack, stack.of_type(*aws.BUCKET_SSE))
    pab_targets, pab_unknown = _bucket_targets(stack, stack.of_type(aws.BUCKET_PAB))
    for bucket in stack.of_type(*aws.BUCKETS):
        # Legacy inline configuration on the bucket itself also counts.
        inline_sse = bucket.get("serverSideEncryptionConfiguration")
        sse = _subs_of(bucket, sse_targets)
        if not sse and not inline_sse:
            if sse_unknown:
                out.cannot_decide(
                    f"{bucket.label()}: which bucket an encryption configuration targets is unknown"
                )
            else:
                out.violation(f"{bucket.label()} has no server-side encryption configuration.", bucket.urn)
        pabs = _subs_of(bucket, pab_targets)
        if not pabs:
            if pab_unknown:
                out.cannot_decide(f"{bucket.label()}: which bucket a public access block targets is unknown")
            else:
                out.violation(f"{bucket.label()} has no public access block.", bucket.urn)
            continue
        for pab in pabs:
            if any(is_unknown(pab.get(f)) for f in _PAB_FLAGS):
                out.cannot_decide(f"{pab.label()}: a flag is unknown during preview")
                continue
            off = [f for f in _PAB_FLAGS if not truthy(pab.get(f))]
            if off:
                out.violation(f"{bucket.label()}: public access block leaves {', '.join(off)} off.", pab.urn)


s3_bucket_encrypted_private = stack_policy(
    name="s3-bucket-encrypted-private",
    description="Every S3 bucket has server-side encryption configured and all public access blocked.",
    check=_check_s3,
    level=MANDATORY,
    severity=Severity.HIGH,
    remediation="Add aws.s3.BucketServerSideEncryptionConfiguration (aws:kms with a customer key, or AES256) "
    "and aws.s3.BucketPublicAccessBlock with all four flags true, both with bucket=<bucket>.id.",
)


def _check_rds_encrypted(r: Res, _cfg: dict[str, Any], out: Findings) -> None:
    value = r.get("storageEncrypted")
    if is_unknown(value):
        out.cannot_decide(f"{r.label()}: storageEncrypted is unknown during preview")
    elif not truthy(value):
        out.violation(f"{r.label()} storage is not encrypted.")
    elif not _is_set(r.get("kmsKeyId")):
        out.violation(f"{r.label()} is encrypted with the AWS-managed key: set kmsKeyId to a customer key.")


rds_encrypted = resource_policy(
    name="rds-encrypted",
    description="RDS instances encrypt storage with a customer managed KMS key.",
    types=[aws.RDS_INSTANCE],
    check=_check_rds_encrypted,
    level=MANDATORY,
    severity=Severity.HIGH,
    remediation="Set storage_encrypted=True and kms_key_id. An existing unencrypted instance must be "
    "restored from an encrypted snapshot copy.",
)


def _check_kms_rotation(r: Res, _cfg: dict[str, Any], out: Findings) -> None:
    if r.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT") not in (None, "SYMMETRIC_DEFAULT") or r.get(
        "keySpec", "SYMMETRIC_DEFAULT"
    ) not in (None, "SYMMETRIC_DEFAULT"):
        return  # AWS supports automatic rotation for symmetric keys only.
    value = r.get("enableKeyRotation")
    if is_unknown(value):
        out.cannot_decide(f"{r.label()}: enableKeyRotation is unknown during preview")
    elif not truthy(value):
        out.violation(f"{r.label()} does not rotate its key material.")


kms_key_rotation = resource_policy(
    name="kms-key-rotation",
    description="Symmetric customer managed KMS keys rotate automatically.",
    types=[aws.KMS_KEY],
    check=_check_kms_rotation,
    level=MANDATORY,
    severity=Severity.MEDIUM,
    remediation="Set enable_key_rotation=True on the key.",
)


def _check_secret_cmk(r: Res, _cfg: dict[str, Any], out: Findings) -> None:
    if not _is_set(r.get("kmsKeyId")):
        out.violation(f"{r.label()} is encrypted with the AWS-managed key aws/secretsmanager.")


secret_encrypted_with_cmk = resource_policy(
    name="secret-encrypted-with-cmk",
    description="Secrets Manager secrets are encrypted with a customer managed KMS key.",
    types=[aws.SECRET],
    check=_check_secret_cmk,
    level=ADVISORY,
    severity=Severity.LOW,
    remediation="Set kms_key_id on the secret; the ECS execution role then needs kms:Decrypt on that key.",
)


def _check_ecr(r: Res, _cfg: dict[str, Any], out: Findings) -> None:
    scan = r.get("imageScanningConfiguration")
    scan_on_push = scan.get("scanOnPush") if isinstance(scan, dict) else None
    if is_unknown(scan) or is_unknown(scan_on_push):
        out.cannot_decide(f"{r.label()}: scan configuration unknown during preview")
    elif not truthy(scan_on_push):
        out.violation(f"{r.label()} does not scan images on push.")
    mutability = r.get("imageTagMutability")
    if is_unknown(mutability):
        out.cannot_decide(f"{r.label()}: imageTagMutability unknown during preview")
    elif mutability not in ("IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION"):
        out.violation(f"{r.label()} allows tags to be overwritten: set imageTagMutability=IMMUTABLE.")
    configured = r.get("encryptionConfigurations")
    encs = [e for e in as_list(configured) if isinstance(e, dict)]
    if any(e.get("encryptionType") == "KMS" for e in encs):
        return
    if is_unknown(configured) or any(
        is_unknown(e) or is_unknown(e.get("encryptionType")) for e in as_list(configured)
    ):
        out.cannot_decide(f"{r.label()}: encryptionConfigurations unknown during preview")
    else:
        out.violation(f"{r.label()} is not encrypted with KMS (encryptionType KMS).")


ecr_repository_hardened = resource_policy(
    name="ecr-repository-hardened",
    description="ECR repositories scan on push, have immutable tags and are encrypted with KMS.",
    types=[aws.ECR_REPO],
    check=_check_ecr,
    level=MANDATORY,
    severity=Severity.MEDIUM,
    remediation="Set image_scanning_configuration={'scan_on_push': True}, image_tag_mutability='IMMUTABLE', "
    "encryption_configurations=[{'encryption_type': 'KMS', 'kms_key': key.arn}] (encryption needs a replacement).",
)

# The number after TLS13- is the lowest version a policy still accepts: TLS13-1-0-* and
# TLS13-1-1-* offer TLS 1.3 yet still negotiate TLS 1.0/1.1, so only -1-2- and -1-3- pass
# (with their Res/Ext/FIPS/PQ variants), plus the older TLS 1.2 floor families.
_TLS12_POLICIES_PREFIXES = (
    "ELBSecurityPolicy-TLS13-1-2-",
    "ELBSecurityPolicy-TLS13-1-3-",
    "ELBSecurityPolicy-TLS-1-2-",
    "ELBSecurityPolicy-FS-1-2-",
)


def _check_listener(r: Res, cfg: dict[str, Any], out: Findings) -> None:
    protocol = r.get("protocol")
    if is_unknown(protocol):
        out.cannot_decide(f"{r.label()}: protocol unknown during preview")
        return
    if protocol == "HTTPS":
        policy = r.get("sslPolicy")
        if is_unknown(policy):
            out.cannot_decide(f"{r.label()}: sslPolicy unknown during preview")
        elif not isinstance(policy, str) or not policy.startswith(_TLS12_POLICIES_PREFIXES):
            out.violation(
                f"{r.label()} uses TLS policy {policy or '(default ELBSecurityPolicy-2016-08, allows TLS 1.0)'}: "
                "use ELBSecurityPolicy-TLS13-1-2-2021-06 or another TLS 1.2+ policy."
            )
        return
    if protocol != "HTTP":
        return
    if stack_name() in [s for s in as_list(cfg.get("allowPlainHttpStacks")) if isinstance(s, str)]:
        return
    actions = [a for a in as_list(r.get("defaultActions")) if isinstance(a, dict)]
    for action in actions:
        redirect = action.get("redirect")
        redirect = redirect if isinstance(redirect, dict) else {}
        if is_unknown(action.get("type")) or is_unknown(redirect.get("protocol")):
            out.cannot_decide(f"{r.label()}: default action unknown during preview")
            return
        if action.get("type") != "redirect" or redirect.get("protocol") != "HTTPS":
            out.violation(
                f"{r.label()} serves plain HTTP on port {as_int(r.get('port'))}: "
                "its default action must redirect to HTTPS."
            )
            return
    if not actions:
        out.violation(f"{r.label()} is an HTTP listener without a redirect to HTTPS.")


alb_https_only = resource_policy(
    name="alb-https-only",
    description="Load balancer HTTP listeners only redirect to HTTPS; HTTPS listeners use a TLS 1.2+ policy.",
    types=list(aws.LISTENERS),
    check=_check_listener,
    level=MANDATORY,
    severity=Severity.HIGH,
    remediation="Give the port-80 listener a default action {'type': 'redirect', 'redirect': "
    "{'protocol': 'HTTPS', 'port': '443', 'status_code': 'HTTP_301'}} and the 443 listener "
    "ssl_policy='ELBSecurityPolicy-TLS13-1-2-2021-06'. A dev stack without a certificate can be "
    "listed in allowPlainHttpStacks.",
    schema={
        "allowPlainHttpStacks": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Stack names (PULUMI_STACK) allowed to serve plain HTTP, e.g. ['dev'].",
        }
    },
)

POLICIES = [
    efs_encrypted,
    ecs_efs_transit_encryption,
    log_group_encrypted,
    log_group_retention,
    sns_topic_encrypted,
    s3_bucket_encrypted_private,
    rds_encrypted,
    kms_key_rotation,
    secret_encrypted_with_cmk,
    ecr_repository_hardened,
    alb_https_only,
]
