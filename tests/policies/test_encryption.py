"""Encryption policies: a violating and a passing case each, plus unknowns during preview."""

from __future__ import annotations

import pytest
from wwhd_policies import encryption as enc

from .conftest import UNKNOWN, R, check_resource, check_stack

EFS = "aws:efs/fileSystem:FileSystem"
TD = "aws:ecs/taskDefinition:TaskDefinition"
LISTENER = "aws:lb/listener:Listener"


def test_efs_encrypted_requires_customer_key() -> None:
    assert check_resource(enc.efs_encrypted, EFS, {"encrypted": True, "kmsKeyId": "arn:aws:kms:k"}) == []
    msgs = check_resource(enc.efs_encrypted, EFS, {"encrypted": True})
    assert any("customer managed key" in m for m in msgs)
    assert check_resource(enc.efs_encrypted, EFS, {"encrypted": False, "kmsKeyId": "k"})


def test_efs_key_unknown_during_preview_counts_as_set() -> None:
    # The ARN of a key created in the same deployment is unknown in preview, but it is set.
    assert check_resource(enc.efs_encrypted, EFS, {"encrypted": True, "kmsKeyId": UNKNOWN}) == []


def test_efs_encrypted_unknown_flag_is_undecided() -> None:
    [message] = check_resource(enc.efs_encrypted, EFS, {"encrypted": UNKNOWN, "kmsKeyId": "k"})
    assert message.startswith("undecided [encrypted]: ")


def _volume(transit: str = "ENABLED", iam: str = "ENABLED") -> dict:
    return {
        "name": "data",
        "efsVolumeConfiguration": {
            "fileSystemId": "fs-1",
            "transitEncryption": transit,
            "authorizationConfig": {"accessPointId": "fsap-1", "iam": iam},
        },
    }


def test_ecs_efs_transit_encryption() -> None:
    assert check_resource(enc.ecs_efs_transit_encryption, TD, {"volumes": [_volume()]}) == []
    msgs = check_resource(enc.ecs_efs_transit_encryption, TD, {"volumes": [_volume("DISABLED", "DISABLED")]})
    assert len(msgs) == 2


def test_ecs_efs_transit_unknown() -> None:
    [message] = check_resource(enc.ecs_efs_transit_encryption, TD, {"volumes": [_volume(transit=UNKNOWN)]})
    assert message.startswith("undecided [volumes]: ")


def test_log_group_encrypted_and_retention() -> None:
    lg = "aws:cloudwatch/logGroup:LogGroup"
    assert check_resource(enc.log_group_encrypted, lg, {"kmsKeyId": "arn:k"}) == []
    assert check_resource(enc.log_group_encrypted, lg, {})
    assert check_resource(enc.log_group_retention, lg, {"retentionInDays": 30.0}) == []
    assert check_resource(enc.log_group_retention, lg, {})
    assert check_resource(enc.log_group_retention, lg, {"retentionInDays": 7}, config={"minDays": 30})
    [message] = check_resource(enc.log_group_retention, lg, {"retentionInDays": UNKNOWN})
    assert message.startswith("undecided [retentionInDays]: ")


def test_sns_topic_encrypted() -> None:
    sns = "aws:sns/topic:Topic"
    assert check_resource(enc.sns_topic_encrypted, sns, {"kmsMasterKeyId": "alias/x"}) == []
    assert check_resource(enc.sns_topic_encrypted, sns, {"name": "alarms"})


def _pab(name: str, bucket: str, deps_on: str | None = None, **flags: bool) -> R:
    props = {"bucket": bucket} | {
        f: flags.get(f, True)
        for f in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    }
    prop_deps = {"bucket": [deps_on]} if deps_on else None
    return R("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", name, props, prop_deps=prop_deps)


SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"


def test_s3_bucket_encrypted_private_passes_when_split_resources_match() -> None:
    stack = [
        R(
            "aws:s3/bucket:Bucket",
            "logs",
            {"bucket": "logs-123", "id": "logs-123", "arn": "arn:aws:s3:::logs-123"},
        ),
        R(SSE, "logs-sse", {"bucket": "logs-123", "rules": [{}]}),
        _pab("logs-pab", "logs-123"),
    ]
    assert check_stack(enc.s3_bucket_encrypted_private, stack) == []


def test_s3_bucket_partial_block_violates() -> None:
    stack = [
        R("aws:s3/bucketV2:BucketV2", "assets", {"bucket": "assets-1", "id": "assets-1"}),
        _pab("assets-pab", "assets-1", restrictPublicBuckets=False),
    ]
    [(message, urn)] = check_stack(enc.s3_bucket_encrypted_private, stack)
    assert "leaves restrictPublicBuckets off" in message and urn and urn.endswith("::assets-pab")


def test_s3_customer_key_required_only_where_the_config_says_so() -> None:
    """AWS encrypts every new object with SSE-S3 since January 2023: without
    requireCustomerManagedKey a bucket without an encryption configuration passes."""
    stack = [R("aws:s3/bucket:Bucket", "docs", {"bucket": "docs-1"}), _pab("docs-pab", "docs-1")]
    assert check_stack(enc.s3_bucket_encrypted_private, stack) == []
    [(message, _)] = check_stack(enc.s3_bucket_encrypted_private, stack, {"requireCustomerManagedKey": True})
    assert "SSE-S3" in message and "requireCustomerManagedKey" in message
    aws_key = R(
        SSE,
        "sse",
        {"bucket": "docs-1", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]},
    )
    [(message, _)] = check_stack(
        enc.s3_bucket_encrypted_private, [*stack, aws_key], {"requireCustomerManagedKey": True}
    )
    assert "the AWS managed key aws/s3" in message
    cmk = R(
        SSE,
        "sse",
        {
            "bucket": "docs-1",
            "rules": [
                {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": UNKNOWN}}
            ],
        },
    )
    assert (
        check_stack(enc.s3_bucket_encrypted_private, [*stack, cmk], {"requireCustomerManagedKey": True}) == []
    )


def test_s3_bucket_unknown_id_matched_through_property_dependencies() -> None:
    stack = [
        R("aws:s3/bucket:Bucket", "b", {"bucket": UNKNOWN}),
        R.referencing(SSE, "b-sse", bucket="b"),
        _pab("b-pab", UNKNOWN, deps_on="b"),
    ]
    assert check_stack(enc.s3_bucket_encrypted_private, stack) == []


def test_s3_bucket_unknown_reference_without_graph_is_undecided() -> None:
    stack = [
        R("aws:s3/bucket:Bucket", "b", {"bucket": "b-1"}),
        R(SSE, "sse", {"bucket": UNKNOWN}),
        _pab("p", "b-1"),
    ]
    assert check_stack(enc.s3_bucket_encrypted_private, stack) == []  # no key required: nothing to resolve
    [(message, urn)] = check_stack(
        enc.s3_bucket_encrypted_private, stack, {"requireCustomerManagedKey": True}
    )
    assert message.startswith("undecided [bucket]: Bucket 'b'") and urn and urn.endswith("::b")


def test_rds_encrypted() -> None:
    rds = "aws:rds/instance:Instance"
    assert check_resource(enc.rds_encrypted, rds, {"storageEncrypted": True, "kmsKeyId": "arn:k"}) == []
    assert check_resource(enc.rds_encrypted, rds, {"storageEncrypted": False})


def test_kms_key_rotation() -> None:
    key = "aws:kms/key:Key"
    assert check_resource(enc.kms_key_rotation, key, {"enableKeyRotation": True}) == []
    assert check_resource(enc.kms_key_rotation, key, {"enableKeyRotation": False})
    # Asymmetric keys cannot rotate automatically: not judged.
    assert check_resource(enc.kms_key_rotation, key, {"customerMasterKeySpec": "RSA_2048"}) == []


def test_secret_encrypted_with_cmk() -> None:
    sec = "aws:secretsmanager/secret:Secret"
    assert check_resource(enc.secret_encrypted_with_cmk, sec, {"kmsKeyId": UNKNOWN}) == []
    assert check_resource(enc.secret_encrypted_with_cmk, sec, {"name": "openai"})


def test_ecr_repository_hardened() -> None:
    repo = "aws:ecr/repository:Repository"
    good = {
        "imageScanningConfiguration": {"scanOnPush": True},
        "imageTagMutability": "IMMUTABLE",
        "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": "arn:k"}],
    }
    assert check_resource(enc.ecr_repository_hardened, repo, good) == []
    assert len(check_resource(enc.ecr_repository_hardened, repo, {"imageTagMutability": "MUTABLE"})) == 3


def _http_listener(action: dict) -> dict:
    return {"port": 80, "protocol": "HTTP", "defaultActions": [action]}


REDIRECT = {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
FORWARD = {"type": "forward", "targetGroupArn": "arn:tg"}


def _https_only(listener: dict, config: dict | None = None) -> list[tuple[str, str | None]]:
    return check_stack(enc.alb_https_only, [R(LISTENER, "l", listener)], config)


def test_alb_https_only(stack_named) -> None:
    stack_named("prod")
    assert _https_only(_http_listener(REDIRECT)) == []
    assert _https_only(_http_listener(FORWARD))
    tls = {"port": 443, "protocol": "HTTPS", "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06"}
    assert _https_only(tls) == []
    old = {"port": 443, "protocol": "HTTPS", "sslPolicy": "ELBSecurityPolicy-2016-08"}
    assert _https_only(old)
    # Unset: the API default ELBSecurityPolicy-2016-08, which still allows TLS 1.0.
    [(message, _)] = _https_only({"port": 443, "protocol": "HTTPS"})
    assert "unset" in message and "ELBSecurityPolicy-2016-08" in message


@pytest.mark.parametrize(
    ("ssl_policy", "passes"),
    [
        ("ELBSecurityPolicy-TLS13-1-3-2021-06", True),
        ("ELBSecurityPolicy-TLS13-1-2-Res-2021-06", True),
        ("ELBSecurityPolicy-TLS-1-2-Ext-2018-06", True),
        ("ELBSecurityPolicy-FS-1-2-Res-2020-10", True),
        # TLS 1.3 policies whose floor is still TLS 1.0 or 1.1.
        ("ELBSecurityPolicy-TLS13-1-0-2021-06", False),
        ("ELBSecurityPolicy-TLS13-1-1-2021-06", False),
        ("ELBSecurityPolicy-FS-1-1-2019-08", False),
        ("ELBSecurityPolicy-TLS-1-1-2017-01", False),
    ],
)
def test_alb_tls_policy_floor_is_tls12(stack_named, ssl_policy: str, passes: bool) -> None:
    stack_named("prod")
    listener = {"port": 443, "protocol": "HTTPS", "sslPolicy": ssl_policy}
    assert (_https_only(listener) == []) is passes


def test_alb_plain_http_allowed_only_for_named_stack(stack_named) -> None:
    config = {"allowPlainHttpStacks": ["dev"]}
    stack_named("dev")
    assert _https_only(_http_listener(FORWARD), config) == []
    stack_named("prod")
    assert _https_only(_http_listener(FORWARD), config)
