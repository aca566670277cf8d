"""The one way this stack makes an S3 bucket: encrypted, private, owner-enforced, expiring."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pulumi
import pulumi_aws as aws

# Parts left by an interrupted multipart upload are billed until removed.
ABORT_MULTIPART_DAYS = 7


def private_bucket(
    name: str,
    parent: pulumi.Resource,
    *,
    policy: Callable[[pulumi.Output[str]], pulumi.Input[str]],
    lifecycle: aws.s3.BucketLifecycleConfigurationRuleArgs,
    kms_key_arn: pulumi.Input[str] | None = None,
    versioned: bool = False,
    protect: bool = False,
    aliases: Sequence[pulumi.Input[str | pulumi.Alias]] = (),
) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
    """A bucket and the resources pulumi-aws 7 splits its settings into, all children of
    ``parent``: server-side encryption (the KMS key when given, with a bucket key; SSE-S3
    otherwise, which is all some AWS writers such as ALB access logs accept), every public
    access block flag on, ACLs disabled (BucketOwnerEnforced), optional versioning, the
    ``lifecycle`` rule, and the bucket policy ``policy(bucket_arn)`` returns as JSON.
    ``protect`` refuses its deletion; ``aliases`` (where they lived before) apply to all of them,
    which share the bucket's name."""
    moved = list(aliases) or None
    child = pulumi.ResourceOptions(parent=parent, aliases=moved)
    bucket = aws.s3.Bucket(name, opts=pulumi.ResourceOptions(parent=parent, protect=protect, aliases=moved))
    encryption = (
        aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn
        )
        if kms_key_arn is not None
        else aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="AES256"
        )
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        name,
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=encryption,
                # One data key per bucket instead of a KMS call per object.
                bucket_key_enabled=True if kms_key_arn is not None else None,
            )
        ],
        opts=child,
    )
    block = aws.s3.BucketPublicAccessBlock(
        name,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    aws.s3.BucketOwnershipControls(
        name,
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=child,
    )
    if versioned:
        aws.s3.BucketVersioning(
            name,
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
    aws.s3.BucketLifecycleConfiguration(name, bucket=bucket.id, rules=[lifecycle], opts=child)
    bucket_policy = aws.s3.BucketPolicy(
        name,
        bucket=bucket.id,
        policy=policy(bucket.arn),
        # S3 refuses a policy while the public access block is being changed.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[block], aliases=moved),
    )
    return bucket, bucket_policy


def whole_bucket_rule(
    rule_id: str,
    *,
    expiration: aws.s3.BucketLifecycleConfigurationRuleExpirationArgs | None = None,
    noncurrent_version_expiration: aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs
    | None = None,
) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    """An enabled lifecycle rule over every object of the bucket, with the multipart clean-up
    every rule of the stack carries. Default: no expiration."""
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id=rule_id,
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
        expiration=expiration,
        noncurrent_version_expiration=noncurrent_version_expiration,
        abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=ABORT_MULTIPART_DAYS
        ),
    )
