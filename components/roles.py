"""Roles an AWS service assumes on the stack's behalf: the EC2 instances of a host, AWS Backup,
RDS Enhanced Monitoring, VPC Flow Logs.

Every such role trusts exactly one service principal and carries the bootstrap's permissions
boundary (docs/bootstrap.md): the deploy role may create roles only with it. ``service_role``
is the one place both are set.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws


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
    return {"Version": "2012-10-17", "Statement": [statement]}


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
