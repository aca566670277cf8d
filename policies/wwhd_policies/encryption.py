"""Encryption at rest and in transit: EFS, logs, SNS, S3, RDS/Aurora, KMS, Secrets Manager, ECR, load
balancers (ALB/NLB listeners and rules, Classic Load Balancers)."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from . import _aws as aws
from ._util import (
    ADVISORY,
    LITERAL,
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
    # Unset `encrypted` is the EFS API's false.
    encrypted = r.get("encrypted")
    if is_unknown(encrypted):
        out.cannot_decide(
            f"{r.label()}: `encrypted` is unknown before creation, so encryption at rest cannot be judged",
            prop="encrypted",
            remedy=LITERAL,
        )
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
            out.cannot_decide(
                f"{r.label()}: the EFS settings of volume '{name}' are unknown before creation, so TLS and IAM "
                "authorization cannot be judged",
                prop="volumes",
                remedy=LITERAL,
            )
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
        out.cannot_decide(
            f"{r.label()}: retentionInDays is unknown before creation, so retention cannot be judged",
            prop="retentionInDays",
            remedy=LITERAL,
        )
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
_CMK_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


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


def _sse_defaults(bucket: Res, configs: list[Res]) -> list[Any]:
    """The default-encryption settings of a bucket: its SSE configuration resources' rules and the
    legacy inline configuration on the bucket itself (unknown values stay unknown)."""
    rules: list[Any] = []
    for cfg in configs:
        value = cfg.get("rules")
        rules += [value] if is_unknown(value) else as_list(value)
    inline = bucket.get("serverSideEncryptionConfiguration")
    if inline is not None:
        rules.append(inline.get("rule") if isinstance(inline, dict) else inline)
    return [
        rule.get("applyServerSideEncryptionByDefault") if isinstance(rule, dict) else rule for rule in rules
    ]


def _judge_bucket_key(bucket: Res, configs: list[Res], targets_unknown: bool, out: Findings) -> None:
    """requireCustomerManagedKey: the bucket's default encryption uses a customer managed KMS key."""
    settings = _sse_defaults(bucket, configs)
    if any(is_unknown(s) or (isinstance(s, dict) and is_unknown(s.get("sseAlgorithm"))) for s in settings):
        out.cannot_decide(
            f"{bucket.label()}: its default encryption is unknown before creation, so whether it uses a "
            "customer managed KMS key cannot be judged",
            prop="rules",
            remedy=LITERAL,
            urn=bucket.urn,
        )
        return
    algorithms = [s.get("sseAlgorithm") for s in settings if isinstance(s, dict)]
    if any(
        isinstance(s, dict) and s.get("sseAlgorithm") in _CMK_ALGORITHMS and _is_set(s.get("kmsMasterKeyId"))
        for s in settings
    ):
        return
    if not settings and targets_unknown:
        out.cannot_decide(
            f"{bucket.label()}: which bucket an encryption configuration targets is unknown before creation, "
            "so whether this one uses a customer managed KMS key cannot be judged",
            prop="bucket",
            remedy=aws.BUCKET_REF_REMEDY,
            urn=bucket.urn,
        )
        return
    used = (
        "the AWS managed key aws/s3"
        if any(a in _CMK_ALGORITHMS for a in algorithms)
        else "SSE-S3, AWS's default for every new object since January 2023"
    )
    out.violation(
        f"{bucket.label()} encrypts with {used}; this stack's policy config (requireCustomerManagedKey) "
        "asks for a customer managed KMS key on buckets that hold data.",
        bucket.urn,
    )


def _account_blocks(stack: Stack) -> dict[str, Any]:
    """flag -> True when an account-level public access block of this stack sets it, an unknown
    sentinel while one is unknown, else False."""
    flags: dict[str, Any] = dict.fromkeys(_PAB_FLAGS, False)
    for block in stack.of_type(aws.ACCOUNT_PAB):
        for f in _PAB_FLAGS:
            value = block.get(f)
            if truthy(value):
                flags[f] = True
            elif is_unknown(value) and flags[f] is False:
                flags[f] = value
    return flags


def _judge_bucket_public(
    bucket: Res,
    blocks: list[Res],
    targets_unknown: bool,
    account: dict[str, Any],
    has_account: bool,
    out: Findings,
) -> None:
    """All four flags on, from the bucket's own public access block or the account's."""
    if not blocks and not has_account:
        if targets_unknown:
            out.cannot_decide(
                f"{bucket.label()}: which bucket a public access block targets is unknown before creation, so "
                "whether this one blocks public access cannot be judged",
                prop="bucket",
                remedy=aws.BUCKET_REF_REMEDY,
                urn=bucket.urn,
            )
        else:
            out.violation(
                f"{bucket.label()} has no public access block (neither its own nor the account's).",
                bucket.urn,
            )
        return
    own = {f: any(truthy(b.get(f)) for b in blocks) for f in _PAB_FLAGS}
    own_unknown = {f for f in _PAB_FLAGS if any(is_unknown(b.get(f)) for b in blocks)}
    off, unknown = [], []
    for f in _PAB_FLAGS:
        if own[f] or account[f] is True:
            continue
        if f in own_unknown or is_unknown(account[f]):
            unknown.append(f)
        else:
            off.append(f)
    if unknown:
        out.cannot_decide(
            f"{bucket.label()}: public access block flags {', '.join(unknown)} are unknown before creation, so "
            "public access cannot be judged",
            prop=unknown[0],
            remedy=LITERAL,
            urn=bucket.urn,
        )
    if off:
        out.violation(
            f"{bucket.label()}: its public access block (with the account's) leaves {', '.join(off)} off.",
            (blocks[0] if blocks else bucket).urn,
        )


def _check_s3(stack: Stack, cfg: dict[str, Any], out: Findings) -> None:
    require_key = truthy(cfg.get("requireCustomerManagedKey"))
    log_buckets = aws.log_buckets(stack) if require_key else set()
    sse_targets, sse_unknown = _bucket_targets(stack, stack.of_type(*aws.BUCKET_SSE))
    pab_targets, pab_unknown = _bucket_targets(stack, stack.of_type(aws.BUCKET_PAB))
    account = _account_blocks(stack)
    has_account = bool(stack.of_type(aws.ACCOUNT_PAB))
    for bucket in stack.of_type(*aws.BUCKETS):
        # Log buckets are exempt from the key rule: ALB and Classic access log delivery accepts SSE-S3 only.
        if require_key and bucket.urn not in log_buckets:
            _judge_bucket_key(bucket, _subs_of(bucket, sse_targets), bool(sse_unknown), out)
        _judge_bucket_public(
            bucket, _subs_of(bucket, pab_targets), bool(pab_unknown), account, has_account, out
        )


s3_bucket_encrypted_private = stack_policy(
    name="s3-bucket-encrypted-private",
    description="Every S3 bucket blocks all public access (its own or the account's public access block); "
    "with requireCustomerManagedKey, buckets that hold data are encrypted with a customer managed KMS key.",
    check=_check_s3,
    level=MANDATORY,
    severity=Severity.HIGH,
    remediation="Add aws.s3.BucketPublicAccessBlock with all four flags true (bucket=<bucket>.id), or one "
    "aws.s3.AccountPublicAccessBlock for the account. Where the stack requires a customer managed key, add "
    "aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm='aws:kms' and kms_master_key_id=<key>.arn.",
    schema={
        "requireCustomerManagedKey": {
            "type": "boolean",
            "default": False,
            "description": "Require a customer managed KMS key on buckets that hold data (log buckets are "
            "exempt). Off: AWS's default SSE-S3 encryption, applied to every new object since January 2023, "
            "is enough.",
        }
    },
)


def _check_rds_encrypted(r: Res, _cfg: dict[str, Any], out: Findings) -> None:
    # Unset storageEncrypted is the RDS API's false (Aurora cluster instances store nothing of their
    # own: their cluster's storage is judged).
    value = r.get("storageEncrypted")
    if is_unknown(value):
        out.cannot_decide(
            f"{r.label()}: storageEncrypted is unknown before creation, so encryption at rest cannot be judged",
            prop="storageEncrypted",
            remedy=LITERAL,
        )
    elif not truthy(value):
        out.violation(f"{r.label()} storage is not encrypted.")
    elif not _is_set(r.get("kmsKeyId")):
        out.violation(f"{r.label()} is encrypted with the AWS-managed key: set kmsKeyId to a customer key.")


rds_encrypted = resource_policy(
    name="rds-encrypted",
    description="RDS instances and Aurora/Multi-AZ DB clusters encrypt storage with a customer managed KMS key.",
    types=[aws.RDS_INSTANCE, aws.RDS_CLUSTER],
    check=_check_rds_encrypted,
    level=MANDATORY,
    severity=Severity.HIGH,
    remediation="Set storage_encrypted=True and kms_key_id. An existing unencrypted instance or cluster must "
    "be restored from an encrypted snapshot copy.",
)


def _check_kms_rotation(r: Res, _cfg: dict[str, Any], out: Findings) -> None:
    if r.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT") not in (None, "SYMMETRIC_DEFAULT") or r.get(
        "keySpec", "SYMMETRIC_DEFAULT"
    ) not in (None, "SYMMETRIC_DEFAULT"):
        return  # AWS supports automatic rotation for symmetric keys only.
    # Unset enableKeyRotation is KMS's false.
    value = r.get("enableKeyRotation")
    if is_unknown(value):
        out.cannot_decide(
            f"{r.label()}: enableKeyRotation is unknown before creation, so rotation cannot be judged",
            prop="enableKeyRotation",
            remedy=LITERAL,
        )
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
        out.cannot_decide(
            f"{r.label()}: the scan configuration is unknown before creation, so scan on push cannot be judged",
            prop="imageScanningConfiguration",
            remedy=LITERAL,
        )
    elif not truthy(scan_on_push):
        out.violation(f"{r.label()} does not scan images on push.")
    mutability = r.get("imageTagMutability")
    if is_unknown(mutability):
        out.cannot_decide(
            f"{r.label()}: imageTagMutability is unknown before creation, so tag immutability cannot be judged",
            prop="imageTagMutability",
            remedy=LITERAL,
        )
    elif mutability not in ("IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION"):
        out.violation(f"{r.label()} allows tags to be overwritten: set imageTagMutability=IMMUTABLE.")
    configured = r.get("encryptionConfigurations")
    encs = [e for e in as_list(configured) if isinstance(e, dict)]
    if any(e.get("encryptionType") == "KMS" for e in encs):
        return
    if is_unknown(configured) or any(
        is_unknown(e) or is_unknown(e.get("encryptionType")) for e in as_list(configured)
    ):
        out.cannot_decide(
            f"{r.label()}: encryptionConfigurations is unknown before creation, so KMS encryption cannot be "
            "judged",
            prop="encryptionConfigurations",
            remedy=LITERAL,
        )
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

# --- load balancers --------------------------------------------------------------------------

# The number after TLS13- is the lowest version a policy still accepts: TLS13-1-0-* and
# TLS13-1-1-* offer TLS 1.3 yet still negotiate TLS 1.0/1.1, so only -1-2- and -1-3- pass
# (with their Res/Ext/FIPS/PQ variants), plus the older TLS 1.2 floor families.
_TLS12_POLICIES_PREFIXES = (
    "ELBSecurityPolicy-TLS13-1-2-",
    "ELBSecurityPolicy-TLS13-1-3-",
    "ELBSecurityPolicy-TLS-1-2-",
    "ELBSecurityPolicy-FS-1-2-",
)
# What ELB applies to an HTTPS/TLS listener (ALB, NLB) or an HTTPS/SSL listener (Classic) created
# through the API without a policy: it still negotiates TLS 1.0 and 1.1.
API_DEFAULT_TLS_POLICY = "ELBSecurityPolicy-2016-08"
_TLS_REMEDY = "set ssl_policy from a literal (e.g. ELBSecurityPolicy-TLS13-1-2-2021-06)"


def _serves_plain(actions: Any) -> tuple[bool | None, str]:
    """Do these listener or rule actions answer over plain HTTP? (True, the action type) when one
    does anything but redirect to HTTPS, (False, "") when all redirect, (None, "") when unknown."""
    if is_unknown(actions) or any(is_unknown(a) for a in as_list(actions)):
        return None, ""
    for action in (a for a in as_list(actions) if isinstance(a, dict)):
        kind = action.get("type")
        redirect = action.get("redirect")
        protocol = redirect.get("protocol") if isinstance(redirect, dict) else None
        if is_unknown(kind) or is_unknown(redirect) or (kind == "redirect" and is_unknown(protocol)):
            return None, ""
        # A redirect without a protocol keeps the request's ("#{protocol}"): still HTTP.
        if kind != "redirect" or protocol != "HTTPS":
            return True, str(kind)
    return False, ""


def _check_listener_tls(r: Res, out: Findings) -> None:
    policy = r.get("sslPolicy")
    if is_unknown(policy):
        out.cannot_decide(
            f"{r.label()}: sslPolicy is unknown before creation, so its lowest TLS version cannot be judged",
            prop="sslPolicy",
            remedy=_TLS_REMEDY,
            urn=r.urn,
        )
    elif not isinstance(policy, str) or not policy.startswith(_TLS12_POLICIES_PREFIXES):
        shown = policy or f"(unset: the API default {API_DEFAULT_TLS_POLICY}, which allows TLS 1.0)"
        out.violation(
            f"{r.label()} uses TLS policy {shown}: use ELBSecurityPolicy-TLS13-1-2-2021-06 or another "
            "TLS 1.2+ policy.",
            r.urn,
        )


TLS12 = "TLS 1.2"


# Classic Load Balancer predefined policies: TLS-1-2 allows 1.2 only, TLS-1-1 1.1 and 1.2, the
# dated ones (2016-08, 2015-05, ...) 1.0 to 1.2.
def _classic_reference_versions(name: str) -> set[str]:
    if "TLS-1-2" in name:
        return {TLS12}
    if "TLS-1-1" in name:
        return {"TLS 1.1", TLS12}
    return {"TLS 1.0", "TLS 1.1", TLS12}


_CLASSIC_PROTOCOL_ATTRS = {
    "Protocol-SSLv3": "SSL 3.0",
    "Protocol-TLSv1": "TLS 1.0",
    "Protocol-TLSv1.1": "TLS 1.1",
    "Protocol-TLSv1.2": TLS12,
}


def _classic_versions(attributes: Any) -> set[str] | None:
    """Protocols an SSL negotiation policy's attributes enable (None while one is unknown)."""
    pairs: dict[Any, Any] = {}
    for a in as_list(attributes):
        if is_unknown(a) or (
            isinstance(a, dict) and (is_unknown(a.get("name")) or is_unknown(a.get("value")))
        ):
            return None
        if isinstance(a, dict):
            pairs[a.get("name")] = a.get("value")
    reference = pairs.get("Reference-Security-Policy")
    if isinstance(reference, str):
        return _classic_reference_versions(reference)
    return {v for k, v in _CLASSIC_PROTOCOL_ATTRS.items() if str(pairs.get(k)).lower() == "true"}


def _for_classic(stack: Stack, r: Res, key: str, lb: Res, port: int) -> bool | None:
    """Does a Classic policy resource (by `key`: its load balancer, and its port) apply to `lb`'s
    listener on `port`? None when that is unknown."""
    hits = stack.resolve(r, key, r.get(key), (aws.CLASSIC_LB,))
    if hits is None:
        return None if is_unknown(r.get(key)) else False
    if lb not in hits:
        return False
    own_port = r.get("lbPort" if r.type == aws.CLASSIC_SSL_NEGOTIATION else "loadBalancerPort")
    return None if is_unknown(own_port) else as_int(own_port) == port


def _classic_tls(stack: Stack, lb: Res, port: int) -> tuple[set[str] | None, str]:
    """The protocol versions a Classic Load Balancer's HTTPS/SSL listener on `port` negotiates:
    from an aws.elb.SslNegotiationPolicy, or an aws.elb.ListenerPolicy naming an
    aws.elb.LoadBalancerPolicy of type SSLNegotiationPolicyType; else the API default."""
    for pol in stack.of_type(aws.CLASSIC_SSL_NEGOTIATION):
        applies = _for_classic(stack, pol, "loadBalancer", lb, port)
        if applies is None:
            return None, f"which listener {pol.label()} applies to is unknown before creation"
        if applies:
            return _classic_versions(pol.get("attributes")), pol.label()
    for lp in stack.of_type(aws.CLASSIC_LISTENER_POLICY):
        applies = _for_classic(stack, lp, "loadBalancerName", lb, port)
        if applies is None:
            return None, f"which listener {lp.label()} applies to is unknown before creation"
        if not applies:
            continue
        names = lp.get("policyNames")
        known = {n for n in as_list(names) if isinstance(n, str) and not is_unknown(n)}
        policies = [p for p in stack.of_type(aws.CLASSIC_LB_POLICY) if p.get("policyName") in known]
        policies += aws.deps_of(stack, lp, "policyNames", (aws.CLASSIC_LB_POLICY,))
        for pol in stack.ordered(policies):
            kind = pol.get("policyTypeName")
            if is_unknown(kind):
                return None, f"the type of {pol.label()} is unknown before creation"
            if kind == "SSLNegotiationPolicyType":
                return _classic_versions(pol.get("policyAttributes")), pol.label()
    return _classic_reference_versions(API_DEFAULT_TLS_POLICY), (
        f"no SSL negotiation policy: the API default {API_DEFAULT_TLS_POLICY}"
    )


def _check_classic(stack: Stack, lb: Res, plain_ok: bool, out: Findings) -> None:
    listeners = lb.get("listeners")
    if is_unknown(listeners):
        out.cannot_decide(
            f"{lb.label()}: its listeners are unknown before creation, so HTTPS-only cannot be judged",
            prop="listeners",
            remedy=LITERAL,
            urn=lb.urn,
        )
        return
    for listener in (li for li in as_list(listeners) if isinstance(li, dict)):
        protocol, port = listener.get("lbProtocol"), as_int(listener.get("lbPort"))
        if is_unknown(protocol) or is_unknown(listener.get("lbPort")):
            out.cannot_decide(
                f"{lb.label()}: a listener's protocol or port is unknown before creation, so HTTPS-only "
                "cannot be judged",
                prop="listeners",
                remedy=LITERAL,
                urn=lb.urn,
            )
            continue
        protocol = str(protocol).upper()
        if protocol == "HTTP" and not plain_ok:
            out.violation(
                f"{lb.label()} serves plain HTTP on port {port}: a Classic Load Balancer cannot redirect to "
                "HTTPS, so serve HTTPS only (or move to an ALB).",
                lb.urn,
            )
        elif protocol in ("HTTPS", "SSL") and port is not None:
            versions, source = _classic_tls(stack, lb, port)
            if versions is None:
                out.cannot_decide(
                    f"{lb.label()}: the TLS versions of its port-{port} listener cannot be judged ({source})",
                    prop="listeners",
                    remedy="reference the load balancer's own outputs in its policies, with literal ports",
                    urn=lb.urn,
                )
            elif versions - {TLS12}:
                out.violation(
                    f"{lb.label()} port {port} negotiates {', '.join(sorted(versions - {TLS12}))} "
                    f"({source}): use Reference-Security-Policy ELBSecurityPolicy-TLS-1-2-2017-01.",
                    lb.urn,
                )


def _check_https_only(stack: Stack, cfg: dict[str, Any], out: Findings) -> None:
    plain_ok = stack_name() in [s for s in as_list(cfg.get("allowPlainHttpStacks")) if isinstance(s, str)]
    http_listeners: dict[str, Res] = {}
    for listener in stack.of_type(*aws.LISTENERS):
        protocol = aws.listener_protocol(stack, listener)
        if is_unknown(protocol):
            out.cannot_decide(
                f"{listener.label()}: its protocol is unknown before creation, so HTTPS-only cannot be judged",
                prop="protocol",
                remedy=LITERAL,
                urn=listener.urn,
            )
        elif protocol in ("HTTPS", "TLS"):
            _check_listener_tls(listener, out)
        elif protocol == "HTTP" and not plain_ok:
            http_listeners[listener.urn] = listener
    for listener in http_listeners.values():
        serves, kind = _serves_plain(listener.get("defaultActions"))
        port = as_int(listener.get("port"))
        if serves is None:
            out.cannot_decide(
                f"{listener.label()}: its default actions are unknown before creation, so whether it redirects "
                "to HTTPS cannot be judged",
                prop="defaultActions",
                remedy=LITERAL,
                urn=listener.urn,
            )
        elif serves:
            out.violation(
                f"{listener.label()} serves plain HTTP on port {port}: its default action must redirect to HTTPS.",
                listener.urn,
            )
        elif not as_list(listener.get("defaultActions")):
            out.violation(
                f"{listener.label()} is an HTTP listener without a redirect to HTTPS.", listener.urn
            )
    # A rule answers before the default action: a forwarding rule on the redirecting port-80
    # listener serves the app over plain HTTP all the same.
    for rule in () if plain_ok else stack.of_type(*aws.LISTENER_RULES):
        listeners = stack.resolve(rule, "listenerArn", rule.get("listenerArn"), aws.LISTENERS)
        if listeners is None:
            out.cannot_decide(
                f"{rule.label()}: its listener is not in this stack (or unknown before creation), so whether it "
                "serves plain HTTP cannot be judged",
                prop="listenerArn",
                remedy="pass the listener's own output (listener_arn=listener.arn)",
                urn=rule.urn,
            )
            continue
        on_http = [li for li in listeners if li.urn in http_listeners]
        if not on_http:
            continue
        serves, kind = _serves_plain(rule.get("actions"))
        if serves is None:
            out.cannot_decide(
                f"{rule.label()}: its actions are unknown before creation, so whether it serves plain HTTP "
                "cannot be judged",
                prop="actions",
                remedy=LITERAL,
                urn=rule.urn,
            )
        elif serves:
            out.violation(
                f"{rule.label()} answers plain HTTP requests on {on_http[0].label()} "
                f"(port {as_int(on_http[0].get('port'))}) with a {kind} action: rules on an HTTP listener "
                "must redirect to HTTPS, like its default action.",
                rule.urn,
            )
    for lb in stack.of_type(aws.CLASSIC_LB):
        _check_classic(stack, lb, plain_ok, out)


alb_https_only = stack_policy(
    name="alb-https-only",
    description="Load balancers serve HTTPS only: HTTP listeners and their rules only redirect to HTTPS, "
    "HTTPS/TLS listeners (ALB, NLB, Classic) negotiate TLS 1.2 or later.",
    check=_check_https_only,
    level=MANDATORY,
    severity=Severity.HIGH,
    remediation="Give the port-80 listener a default action {'type': 'redirect', 'redirect': "
    "{'protocol': 'HTTPS', 'port': '443', 'status_code': 'HTTP_301'}} and no forwarding rules, and the 443 "
    "listener ssl_policy='ELBSecurityPolicy-TLS13-1-2-2021-06'. A Classic Load Balancer serves HTTPS/SSL "
    "only, with an aws.elb.SslNegotiationPolicy referencing ELBSecurityPolicy-TLS-1-2-2017-01. A dev stack "
    "without a certificate can be listed in allowPlainHttpStacks.",
    schema={
        "allowPlainHttpStacks": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Stack names (PULUMI_STACK) allowed to serve plain HTTP, e.g. ['dev'].",
        }
    },
)


def _check_tls13(r: Res, _cfg: dict[str, Any], out: Findings) -> None:
    if r.type == aws.CLASSIC_LB:
        listeners = r.get("listeners")
        if is_unknown(listeners):
            out.cannot_decide(
                f"{r.label()}: its listeners are unknown before creation, so its TLS versions cannot be judged",
                prop="listeners",
                remedy=LITERAL,
            )
            return
        ports = [
            as_int(li.get("lbPort"))
            for li in as_list(listeners)
            if isinstance(li, dict) and str(li.get("lbProtocol")).upper() in ("HTTPS", "SSL")
        ]
        if ports:
            out.violation(
                f"{r.label()} terminates TLS on port(s) {ports}, and Classic Load Balancers have no TLS 1.3 "
                "security policy: move to an ALB or NLB with ELBSecurityPolicy-TLS13-1-2-2021-06."
            )
        return
    protocol = r.get("protocol")
    if is_unknown(protocol):
        out.cannot_decide(
            f"{r.label()}: its protocol is unknown before creation, so its TLS policy cannot be judged",
            prop="protocol",
            remedy=LITERAL,
        )
        return
    if str(protocol).upper() not in ("HTTPS", "TLS"):  # unset is HTTP on an ALB: no TLS
        return
    policy = r.get("sslPolicy")
    if is_unknown(policy):
        out.cannot_decide(
            f"{r.label()}: sslPolicy is unknown before creation, so its TLS policy family cannot be judged",
            prop="sslPolicy",
            remedy=_TLS_REMEDY,
        )
    elif not isinstance(policy, str) or not policy.startswith("ELBSecurityPolicy-TLS13-"):
        shown = policy or f"the API default {API_DEFAULT_TLS_POLICY}"
        out.violation(
            f"{r.label()} uses {shown}, older than the TLS 1.3 family: use ELBSecurityPolicy-TLS13-1-2-2021-06 "
            "(TLS 1.3 and 1.2, the console's default)."
        )


lb_tls13_policy = resource_policy(
    name="lb-tls13-policy",
    description="HTTPS/TLS listeners use a TLS 1.3 security policy (ELBSecurityPolicy-TLS13-*).",
    types=[*aws.LISTENERS, aws.CLASSIC_LB],
    check=_check_tls13,
    level=ADVISORY,
    severity=Severity.LOW,
    remediation="Set ssl_policy='ELBSecurityPolicy-TLS13-1-2-2021-06' (or a -Res- variant) on HTTPS/TLS "
    "listeners; replace a Classic Load Balancer that terminates TLS by an ALB or NLB.",
    url="https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html",
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
    lb_tls13_policy,
]
