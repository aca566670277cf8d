"""Encryption at rest and in transit: EFS, logs, SNS, S3, RDS/Aurora, KMS, Secrets Manager, ECR, load
balancers (ALB/NLB listeners and rules, Classic Load Balancers)."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from . import _aws as aws
from ._policy import ADVISORY, MANDATORY, Config, Findings, resource_policy, setting, stack_policy
from ._util import Res, Stack, as_int, as_list, is_unknown, stack_name, truthy


def _is_set(value: Any) -> bool:
    """A key reference counts as set when present, even if unknown during preview: an unknown
    ARN is the ARN of a key this deployment creates."""
    return value is not None and value != ""


@resource_policy("efs-encrypted", MANDATORY, Severity.HIGH, types=[aws.EFS_FS])
def efs_encrypted(r: Res, _cfg: Config, out: Findings) -> None:
    """EFS file systems are encrypted at rest with a customer managed KMS key.

    Remediation: Set encrypted=True and kms_key_id to a customer managed key (enable_key_rotation=True). EFS
    encryption cannot be changed in place: the file system must be replaced and data copied.
    """
    # Unset `encrypted` is the EFS API's false.
    if out.flag(r, "encrypted", "encryption at rest", subject="`encrypted`") is False:
        out.violation(f"{r.label()} is not encrypted at rest.")
    if not _is_set(r.get("kmsKeyId")):
        out.violation(f"{r.label()} uses the AWS-managed key: set kmsKeyId to a customer managed key.")


@resource_policy("ecs-efs-transit-encryption", MANDATORY, Severity.HIGH, types=[aws.TASK_DEF])
def ecs_efs_transit_encryption(r: Res, _cfg: Config, out: Findings) -> None:
    """Every EFS volume of an ECS task definition uses TLS in transit and IAM authorization.

    Remediation: In each volume's efs_volume_configuration set transit_encryption='ENABLED' and
    authorization_config={'iam': 'ENABLED', 'access_point_id': ...}; grant the task role
    elasticfilesystem:ClientMount/ClientWrite on that access point.
    """
    for vol in aws.efs_volumes(r):
        efs = vol["efsVolumeConfiguration"]
        name = vol.get("name", "?")
        transit = efs.get("transitEncryption")
        auth = efs.get("authorizationConfig") or {}
        iam = auth.get("iam") if isinstance(auth, dict) else None
        if is_unknown(transit) or is_unknown(iam) or is_unknown(auth):
            out.unknown(
                r,
                "volumes",
                "TLS and IAM authorization",
                subject=f"the EFS settings of volume '{name}'",
                plural=True,
            )
            continue
        if transit != "ENABLED":
            out.violation(f"{r.label()} volume '{name}' mounts EFS without transitEncryption=ENABLED.")
        if iam != "ENABLED":
            out.violation(f"{r.label()} volume '{name}' mounts EFS without authorizationConfig.iam=ENABLED.")


@resource_policy("log-group-encrypted", MANDATORY, Severity.MEDIUM, types=[aws.LOG_GROUP])
def log_group_encrypted(r: Res, _cfg: Config, out: Findings) -> None:
    """CloudWatch log groups are encrypted with a customer managed KMS key.

    Remediation: Set kms_key_id on the log group; the key policy must allow the logs.<region>.amazonaws.com
    principal (kms:Encrypt*, Decrypt*, ReEncrypt*, GenerateDataKey*, Describe*).
    """
    if not _is_set(r.get("kmsKeyId")):
        out.violation(f"{r.label()} is not encrypted with a customer managed KMS key.")


@resource_policy(
    "log-group-retention",
    MANDATORY,
    Severity.LOW,
    types=[aws.LOG_GROUP],
    schema={
        "minDays": setting("Shortest allowed retention.", 1),
        "maxDays": setting("Longest allowed retention.", 3653),
    },
)
def log_group_retention(r: Res, cfg: Config, out: Findings) -> None:
    """CloudWatch log groups have a retention period (never 'keep forever').

    Remediation: Set retention_in_days (e.g. 7 for dev, 30-90 for prod).
    """
    value = r.get("retentionInDays")
    if is_unknown(value):
        out.unknown(r, "retentionInDays", "retention")
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


@resource_policy("sns-topic-encrypted", MANDATORY, Severity.MEDIUM, types=[aws.SNS_TOPIC])
def sns_topic_encrypted(r: Res, _cfg: Config, out: Findings) -> None:
    """SNS topics are encrypted with KMS.

    Remediation: Set kms_master_key_id to a customer managed key whose policy lets cloudwatch.amazonaws.com
    use it (alarm notifications), or 'alias/aws/sns' at least.
    """
    if not _is_set(r.get("kmsMasterKeyId")):
        out.violation(f"{r.label()} has no kmsMasterKeyId: messages are stored unencrypted.")


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
        out.unknown(
            bucket, "rules", "whether it uses a customer managed KMS key", subject="its default encryption"
        )
        return
    algorithms = [s.get("sseAlgorithm") for s in settings if isinstance(s, dict)]
    if any(
        isinstance(s, dict) and s.get("sseAlgorithm") in _CMK_ALGORITHMS and _is_set(s.get("kmsMasterKeyId"))
        for s in settings
    ):
        return
    if not settings and targets_unknown:
        out.unknown(
            bucket,
            "bucket",
            "whether this one uses a customer managed KMS key",
            subject="which bucket an encryption configuration targets",
            remedy=aws.BUCKET_REF_REMEDY,
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
            out.unknown(
                bucket,
                "bucket",
                "whether this one blocks public access",
                subject="which bucket a public access block targets",
                remedy=aws.BUCKET_REF_REMEDY,
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
        subject = f"public access block flags {', '.join(unknown)}"
        out.unknown(bucket, unknown[0], "public access", subject=subject, plural=True)
    if off:
        out.violation(
            f"{bucket.label()}: its public access block (with the account's) leaves {', '.join(off)} off.",
            (blocks[0] if blocks else bucket).urn,
        )


@stack_policy(
    "s3-bucket-encrypted-private",
    MANDATORY,
    Severity.HIGH,
    schema={
        "requireCustomerManagedKey": setting(
            "Require a customer managed KMS key on buckets that hold data (log buckets are "
            "exempt). Off: AWS's default SSE-S3 encryption, applied to every new object since January 2023, "
            "is enough.",
            False,
        )
    },
)
def s3_bucket_encrypted_private(stack: Stack, cfg: Config, out: Findings) -> None:
    """Every S3 bucket blocks all public access (its own or the account's public access block); with
    requireCustomerManagedKey, buckets that hold data are encrypted with a customer managed KMS key.

    Remediation: Add aws.s3.BucketPublicAccessBlock with all four flags true (bucket=<bucket>.id), or one
    aws.s3.AccountPublicAccessBlock for the account. Where the stack requires a customer managed key, add
    aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm='aws:kms' and
    kms_master_key_id=<key>.arn.
    """
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


@resource_policy("rds-encrypted", MANDATORY, Severity.HIGH, types=[aws.RDS_INSTANCE, aws.RDS_CLUSTER])
def rds_encrypted(r: Res, _cfg: Config, out: Findings) -> None:
    """RDS instances and Aurora/Multi-AZ DB clusters encrypt storage with a customer managed KMS key.

    Remediation: Set storage_encrypted=True and kms_key_id. An existing unencrypted instance or cluster must
    be restored from an encrypted snapshot copy.
    """
    # Unset storageEncrypted is the RDS API's false (Aurora cluster instances store nothing of their
    # own: their cluster's storage is judged).
    encrypted = out.flag(r, "storageEncrypted", "encryption at rest")
    if encrypted is False:
        out.violation(f"{r.label()} storage is not encrypted.")
    elif encrypted and not _is_set(r.get("kmsKeyId")):
        out.violation(f"{r.label()} is encrypted with the AWS-managed key: set kmsKeyId to a customer key.")


@resource_policy("kms-key-rotation", MANDATORY, Severity.MEDIUM, types=[aws.KMS_KEY])
def kms_key_rotation(r: Res, _cfg: Config, out: Findings) -> None:
    """Symmetric customer managed KMS keys rotate automatically.

    Remediation: Set enable_key_rotation=True on the key.
    """
    if r.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT") not in (None, "SYMMETRIC_DEFAULT") or r.get(
        "keySpec", "SYMMETRIC_DEFAULT"
    ) not in (None, "SYMMETRIC_DEFAULT"):
        return  # AWS supports automatic rotation for symmetric keys only.
    # Unset enableKeyRotation is KMS's false.
    if out.flag(r, "enableKeyRotation", "rotation") is False:
        out.violation(f"{r.label()} does not rotate its key material.")


@resource_policy("secret-encrypted-with-cmk", ADVISORY, Severity.LOW, types=[aws.SECRET])
def secret_encrypted_with_cmk(r: Res, _cfg: Config, out: Findings) -> None:
    """Secrets Manager secrets are encrypted with a customer managed KMS key.

    Remediation: Set kms_key_id on the secret; the ECS execution role then needs kms:Decrypt on that key.
    """
    if not _is_set(r.get("kmsKeyId")):
        out.violation(f"{r.label()} is encrypted with the AWS-managed key aws/secretsmanager.")


@resource_policy("ecr-repository-hardened", MANDATORY, Severity.MEDIUM, types=[aws.ECR_REPO])
def ecr_repository_hardened(r: Res, _cfg: Config, out: Findings) -> None:
    """ECR repositories scan on push, have immutable tags and are encrypted with KMS.

    Remediation: Set image_scanning_configuration={'scan_on_push': True}, image_tag_mutability='IMMUTABLE',
    encryption_configurations=[{'encryption_type': 'KMS', 'kms_key': key.arn}] (encryption needs a
    replacement).
    """
    scan = r.get("imageScanningConfiguration")
    scan_on_push = scan.get("scanOnPush") if isinstance(scan, dict) else None
    if is_unknown(scan) or is_unknown(scan_on_push):
        out.unknown(r, "imageScanningConfiguration", "scan on push", subject="the scan configuration")
    elif not truthy(scan_on_push):
        out.violation(f"{r.label()} does not scan images on push.")
    mutability = r.get("imageTagMutability")
    if is_unknown(mutability):
        out.unknown(r, "imageTagMutability", "tag immutability")
    elif mutability not in ("IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION"):
        out.violation(f"{r.label()} allows tags to be overwritten: set imageTagMutability=IMMUTABLE.")
    configured = r.get("encryptionConfigurations")
    encs = [e for e in as_list(configured) if isinstance(e, dict)]
    if any(e.get("encryptionType") == "KMS" for e in encs):
        return
    if is_unknown(configured) or any(
        is_unknown(e) or is_unknown(e.get("encryptionType")) for e in as_list(configured)
    ):
        out.unknown(r, "encryptionConfigurations", "KMS encryption")
    else:
        out.violation(f"{r.label()} is not encrypted with KMS (encryptionType KMS).")


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
        out.unknown(r, "sslPolicy", "its lowest TLS version", remedy=_TLS_REMEDY)
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
        out.unknown(lb, "listeners", "HTTPS-only", subject="its listeners", plural=True)
        return
    for listener in (li for li in as_list(listeners) if isinstance(li, dict)):
        protocol, port = listener.get("lbProtocol"), as_int(listener.get("lbPort"))
        if is_unknown(protocol) or is_unknown(listener.get("lbPort")):
            out.unknown(lb, "listeners", "HTTPS-only", subject="a listener's protocol or port")
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


@stack_policy(
    "alb-https-only",
    MANDATORY,
    Severity.HIGH,
    schema={
        "allowPlainHttpStacks": setting(
            "Stack names (PULUMI_STACK) allowed to serve plain HTTP, e.g. ['dev'].", [], items="string"
        )
    },
)
def alb_https_only(stack: Stack, cfg: Config, out: Findings) -> None:
    """Load balancers serve HTTPS only: HTTP listeners and their rules only redirect to HTTPS, HTTPS/TLS
    listeners (ALB, NLB, Classic) negotiate TLS 1.2 or later.

    Remediation: Give the port-80 listener a default action {'type': 'redirect', 'redirect': {'protocol':
    'HTTPS', 'port': '443', 'status_code': 'HTTP_301'}} and no forwarding rules, and the 443 listener
    ssl_policy='ELBSecurityPolicy-TLS13-1-2-2021-06'. A Classic Load Balancer serves HTTPS/SSL only, with an
    aws.elb.SslNegotiationPolicy referencing ELBSecurityPolicy-TLS-1-2-2017-01. A dev stack without a
    certificate can be listed in allowPlainHttpStacks.
    """
    plain_ok = stack_name() in [s for s in as_list(cfg.get("allowPlainHttpStacks")) if isinstance(s, str)]
    http_listeners: dict[str, Res] = {}
    for listener in stack.of_type(*aws.LISTENERS):
        protocol = aws.listener_protocol(stack, listener)
        if is_unknown(protocol):
            out.unknown(listener, "protocol", "HTTPS-only", subject="its protocol")
        elif protocol in ("HTTPS", "TLS"):
            _check_listener_tls(listener, out)
        elif protocol == "HTTP" and not plain_ok:
            http_listeners[listener.urn] = listener
    for listener in http_listeners.values():
        serves, kind = _serves_plain(listener.get("defaultActions"))
        port = as_int(listener.get("port"))
        if serves is None:
            out.unknown(
                listener,
                "defaultActions",
                "whether it redirects to HTTPS",
                subject="its default actions",
                plural=True,
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
            out.unknown(rule, "actions", "whether it serves plain HTTP", subject="its actions", plural=True)
        elif serves:
            out.violation(
                f"{rule.label()} answers plain HTTP requests on {on_http[0].label()} "
                f"(port {as_int(on_http[0].get('port'))}) with a {kind} action: rules on an HTTP listener "
                "must redirect to HTTPS, like its default action.",
                rule.urn,
            )
    for lb in stack.of_type(aws.CLASSIC_LB):
        _check_classic(stack, lb, plain_ok, out)


@resource_policy(
    "lb-tls13-policy",
    ADVISORY,
    Severity.LOW,
    types=[*aws.LISTENERS, aws.CLASSIC_LB],
    url="https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html",
)
def lb_tls13_policy(r: Res, _cfg: Config, out: Findings) -> None:
    """HTTPS/TLS listeners use a TLS 1.3 security policy (ELBSecurityPolicy-TLS13-*).

    Remediation: Set ssl_policy='ELBSecurityPolicy-TLS13-1-2-2021-06' (or a -Res- variant) on HTTPS/TLS
    listeners; replace a Classic Load Balancer that terminates TLS by an ALB or NLB.
    """
    if r.type == aws.CLASSIC_LB:
        listeners = r.get("listeners")
        if is_unknown(listeners):
            out.unknown(r, "listeners", "its TLS versions", subject="its listeners", plural=True)
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
        out.unknown(r, "protocol", "its TLS policy", subject="its protocol")
        return
    if str(protocol).upper() not in ("HTTPS", "TLS"):  # unset is HTTP on an ALB: no TLS
        return
    policy = r.get("sslPolicy")
    if is_unknown(policy):
        out.unknown(r, "sslPolicy", "its TLS policy family", remedy=_TLS_REMEDY)
    elif not isinstance(policy, str) or not policy.startswith("ELBSecurityPolicy-TLS13-"):
        shown = policy or f"the API default {API_DEFAULT_TLS_POLICY}"
        out.violation(
            f"{r.label()} uses {shown}, older than the TLS 1.3 family: use ELBSecurityPolicy-TLS13-1-2-2021-06 "
            "(TLS 1.3 and 1.2, the console's default)."
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
