"""WwhdStackKey: the one customer-managed KMS key that encrypts a stack's data at rest."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.component import WwhdComponent
from iam_document import policy_document

TOKEN = "wwhd:index:WwhdStackKey"


@dataclass(frozen=True)
class WwhdStackKeyArgs:
    """How the stack key is created."""

    region: str
    """AWS region of the stack; CloudWatch Logs' service principal is regional."""
    protect: bool = False
    """Protect the key from deletion (on in prod: losing it loses every backup it sealed)."""
    deletion_window_days: int = 30
    """Days a scheduled deletion can still be cancelled (AWS allows 7-30)."""


class WwhdStackKey(WwhdComponent[WwhdStackKeyArgs], token=TOKEN):
    """A customer-managed key with rotation and an alias, shared by every component of the
    stack (EFS, Backup, RDS, Secrets Manager, ECR, S3, CloudWatch Logs, SNS).

    It stands apart from the data volume because the network's flow-log group needs it
    before any storage exists. The key policy lets the account administer the key through
    IAM (so each role's own policy decides who encrypts), and lets the two services that act
    as themselves rather than on a caller's behalf use it: CloudWatch Logs for this stack's
    log groups, and CloudWatch alarms publishing to the encrypted SNS topic.
    """

    key_arn: pulumi.Output[str]
    """ARN of the key: pass it to every resource that encrypts."""
    key_id: pulumi.Output[str]
    """Id of the key."""
    alias_name: pulumi.Output[str]
    """The alias, ``alias/wwhd-<stack>``."""

    def _build(self, name: str, args: WwhdStackKeyArgs) -> None:
        identity = aws.get_caller_identity_output(opts=self._invoke)
        policy = identity.account_id.apply(lambda account: json.dumps(_key_policy(account, args.region)))

        key = aws.kms.Key(
            f"{name}-key",
            description=f"W.W.H.D. data key ({pulumi.get_stack()})",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=policy,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        alias = aws.kms.Alias(
            f"{name}-key-alias",
            name=f"alias/wwhd-{pulumi.get_stack()}",
            target_key_id=key.key_id,
            opts=self._child,
        )

        self.key_arn = key.arn
        self.key_id = key.key_id
        self.alias_name = alias.name


def _key_policy(account: str, region: str) -> dict:
    root = f"arn:aws:iam::{account}:root"
    return policy_document(
        {
            # Without this statement IAM policies cannot grant use of the key at all,
            # and the key could become unmanageable.
            "Sid": "AccountAdministersThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            # Logs encrypts as itself; the encryption context pins it to this account's groups.
            "Sid": "CloudWatchLogsEncryptsThisAccountsLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": [
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:Encrypt",
                "kms:GenerateDataKey*",
                "kms:ReEncrypt*",
            ],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{account}:log-group:*"
                }
            },
        },
        {
            # Alarms publish to the encrypted SNS topic as the CloudWatch service.
            "Sid": "CloudWatchAlarmsPublishToEncryptedTopic",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        },
    )
