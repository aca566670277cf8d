"""Roles an AWS service assumes on the stack's behalf: the EC2 instances of a host, AWS Backup,
RDS Enhanced Monitoring, VPC Flow Logs.

Every such role trusts exactly one service principal and carries the bootstrap's permissions
boundary (docs/bootstrap.md): the deploy role may create roles only with it. ``service_role``
is the one place both are set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from iam_document import policy_document

# EC2 assumes the instance role for the instances launched with its profile. No confused-deputy
# condition: EC2 puts neither aws:SourceAccount nor aws:SourceArn in the request (a trust policy
# requiring them would leave the instance without credentials), and the role can only reach an
# instance through an instance profile that someone of this account allowed to pass it
# (iam:PassRole never crosses accounts).
EC2_PRINCIPAL = "ec2.amazonaws.com"


def service_trust_policy(principal: str, source_account: str | None = None) -> dict[str, Any]:
    """``principal`` (``backup.amazonaws.com``) may assume the role; with ``source_account``,
    only on behalf of that account (the confused-deputy guard, for services that send
    ``aws:SourceAccount``)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": principal},
        "Action": "sts:AssumeRole",
    }
    if source_account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return policy_document(statement)


def service_role(
    logical: str,
    *,
    principal: str,
    description: str,
    boundary: pulumi.Input[str] | None,
    opts: pulumi.ResourceOptions,
    source_account: pulumi.Input[str] | None = None,
) -> aws.iam.Role:
    """A role ``principal`` assumes, under ``boundary``; ``source_account`` as in
    ``service_trust_policy`` (default: no condition)."""
    trust: pulumi.Input[str] = (
        pulumi.Output.from_input(source_account).apply(
            lambda account: json.dumps(service_trust_policy(principal, account))
        )
        if source_account is not None
        else json.dumps(service_trust_policy(principal))
    )
    return aws.iam.Role(
        logical, description=description, assume_role_policy=trust, permissions_boundary=boundary, opts=opts
    )


@dataclass(frozen=True)
class RoleRef:
    """A role as other resources and the stack's outputs name it."""

    arn: pulumi.Output[str]
    name: pulumi.Output[str]


@dataclass(frozen=True)
class InstanceRole:
    """What ``instance_role`` created."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy
    """Its inline policy: what an instance must wait for before it boots and uses the role."""
    profile: aws.iam.InstanceProfile


def instance_role(
    logical: str,
    *,
    profile: str,
    description: str,
    policy: Callable[[str], dict[str, Any]],
    boundary: pulumi.Input[str] | None,
    opts: pulumi.ResourceOptions,
) -> InstanceRole:
    """The role of an EC2 instance (``logical``), its inline policy (also ``logical``) and the
    instance profile (``profile``) that hands it to the instance. ``policy`` builds the policy
    document from the account id, which the ARNs it names need."""
    account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=opts.parent)).account_id
    role = service_role(
        logical, principal=EC2_PRINCIPAL, description=description, boundary=boundary, opts=opts
    )
    role_policy = aws.iam.RolePolicy(
        logical, role=role.name, policy=account.apply(lambda a: json.dumps(policy(a))), opts=opts
    )
    return InstanceRole(role, role_policy, aws.iam.InstanceProfile(profile, role=role.name, opts=opts))
