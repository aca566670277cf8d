"""Issue 21, item 2: no false alarms on valid designs, over the gRPC interface.

A metric alarm that feeds a composite alarm that notifies has an action; a bucket covered by an
account-level public access block is private; the S3 rule asks for a customer managed key only
where the stack's policy config says so (AWS encrypts every new object since January 2023)."""

from __future__ import annotations

import pytest

from .conftest import UNKNOWN, R

METRIC = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
TOPIC = "arn:aws:sns:us-west-2:123456789012:alarms"


def _metric(name: str, **props: object) -> R:
    return R(
        METRIC,
        name,
        {"name": f"wwhd-{name}", "arn": f"arn:aws:cloudwatch:us-west-2:1:alarm:wwhd-{name}", **props},
    )


def test_a_metric_alarm_feeding_a_notifying_composite_has_an_action(pack) -> None:
    cpu, memory = _metric("cpu"), _metric("memory")
    composite = R(
        COMPOSITE,
        "pressure",
        {
            "alarmName": "wwhd-pressure",
            "alarmRule": 'ALARM("wwhd-cpu") AND ALARM(wwhd-memory)',
            "alarmActions": [TOPIC],
        },
    )
    assert pack.run("alarm-has-actions", [cpu, memory, composite]) == []
    # An alarm the rule does not name still notifies nobody.
    disk = _metric("disk")
    [violation] = pack.run("alarm-has-actions", [cpu, memory, disk, composite])
    assert violation.name == "disk" and "notifies nobody" in violation.text


def test_a_composite_rule_built_from_outputs_is_followed_through_the_graph(pack) -> None:
    cpu = R(METRIC, "cpu", {"name": UNKNOWN, "arn": UNKNOWN})
    composite = R.referencing(COMPOSITE, "pressure", {"alarmActions": [UNKNOWN]}, alarmRule="cpu")
    assert pack.run("alarm-has-actions", [cpu, composite]) == []


def test_composites_that_notify_nobody_do_not_count(pack) -> None:
    cpu = _metric("cpu")
    inner = R(COMPOSITE, "inner", {"alarmName": "inner", "alarmRule": 'ALARM("wwhd-cpu")'})
    outer = R(
        COMPOSITE, "outer", {"alarmName": "outer", "alarmRule": "ALARM(inner)", "alarmActions": [TOPIC]}
    )
    assert pack.run("alarm-has-actions", [cpu, inner, outer]) == []  # through two levels
    found = pack.run("alarm-has-actions", [cpu, inner])
    assert sorted(f.name for f in found) == ["cpu", "inner"]
    assert "feeds only composite alarms that notify nobody" in next(f.text for f in found if f.name == "cpu")
    muted = R(
        COMPOSITE,
        "outer",
        {"alarmName": "outer", "alarmRule": "ALARM(inner)", "alarmActions": [TOPIC], "actionsEnabled": False},
    )
    assert len(pack.run("alarm-has-actions", [cpu, inner, muted])) == 3


BUCKET = R("aws:s3/bucket:Bucket", "docs", {"bucket": "docs-1", "id": "docs-1"})
FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _account(**off: bool) -> R:
    return R(
        "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock",
        "account",
        {f: off.get(f, True) for f in FLAGS},
    )


def _bucket_block(**flags: bool) -> R:
    return R(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "docs-pab",
        {"bucket": "docs-1", **{f: flags.get(f, True) for f in FLAGS}},
    )


def test_a_bucket_covered_by_the_account_block_is_private(pack) -> None:
    assert pack.run("s3-bucket-encrypted-private", [BUCKET, _account()]) == []
    [violation] = pack.run("s3-bucket-encrypted-private", [BUCKET])
    assert "no public access block (neither its own nor the account's)" in violation.text


def test_bucket_and_account_blocks_combine_flag_by_flag(pack) -> None:
    partial_bucket = _bucket_block(restrictPublicBuckets=False)
    assert pack.run("s3-bucket-encrypted-private", [BUCKET, partial_bucket, _account()]) == []
    [violation] = pack.run(
        "s3-bucket-encrypted-private", [BUCKET, partial_bucket, _account(restrictPublicBuckets=False)]
    )
    assert "leaves restrictPublicBuckets off" in violation.text


@pytest.mark.parametrize("require", [None, False])
def test_aws_default_encryption_is_enough_unless_the_stack_asks_for_a_customer_key(pack, require) -> None:
    config = {} if require is None else {"requireCustomerManagedKey": require}
    assert pack.run("s3-bucket-encrypted-private", [BUCKET, _bucket_block()], config=config) == []


def test_a_stack_that_asks_for_a_customer_key_says_which_key_it_found(pack) -> None:
    config = {"requireCustomerManagedKey": True}
    [violation] = pack.run("s3-bucket-encrypted-private", [BUCKET, _bucket_block()], config=config)
    assert "SSE-S3, AWS's default for every new object since January 2023" in violation.text
    assert "requireCustomerManagedKey" in violation.text
    key = R.referencing(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "docs-sse",
        {
            "rules": [
                {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": UNKNOWN}}
            ]
        },
        bucket="docs",
    )
    assert pack.run("s3-bucket-encrypted-private", [BUCKET, _bucket_block(), key], config=config) == []


def test_log_buckets_keep_sse_s3_when_a_customer_key_is_required(pack) -> None:
    """ALB access log delivery accepts SSE-S3 only: the key rule exempts the log bucket."""
    logs = R("aws:s3/bucket:Bucket", "logs", {"bucket": UNKNOWN})
    block = R(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "logs-pab",
        {"bucket": UNKNOWN, **dict.fromkeys(FLAGS, True)},
        prop_deps={"bucket": ["logs"]},
    )
    alb = R(
        "aws:lb/loadBalancer:LoadBalancer",
        "alb",
        {"accessLogs": {"bucket": UNKNOWN, "enabled": True}},
        prop_deps={"accessLogs": ["logs"]},
    )
    config = {"requireCustomerManagedKey": True}
    assert pack.run("s3-bucket-encrypted-private", [logs, block, alb], config=config) == []
    [violation] = pack.run("s3-bucket-encrypted-private", [logs, block], config=config)
    assert violation.name == "logs"
