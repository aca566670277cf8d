"""Every policy, fed the values it needs as preview-time unknowns, says "cannot decide"
(UnknownValueError -> the analyzer's advisory diagnostic): never a pass, never a crash."""

from __future__ import annotations

import pytest
from pulumi_policy.proxy import UnknownValueError
from wwhd_policies import ALL_POLICIES

from .conftest import UNKNOWN, R, check_resource, check_stack

POLICIES = {p.name: p for p in ALL_POLICIES}
TD = "aws:ecs/taskDefinition:TaskDefinition"
UNKNOWN_CONTAINERS = {"containerDefinitions": UNKNOWN}

RESOURCE_CASES = {
    "efs-encrypted": ("aws:efs/fileSystem:FileSystem", {"encrypted": UNKNOWN, "kmsKeyId": "k"}),
    "ecs-efs-transit-encryption": (
        TD,
        {"volumes": [{"name": "d", "efsVolumeConfiguration": {"transitEncryption": UNKNOWN}}]},
    ),
    "log-group-encrypted": None,  # an unknown key ARN is a key that will exist: decided (tested elsewhere)
    "log-group-retention": ("aws:cloudwatch/logGroup:LogGroup", {"retentionInDays": UNKNOWN}),
    "sns-topic-encrypted": None,  # same as log-group-encrypted
    "rds-encrypted": ("aws:rds/instance:Instance", {"storageEncrypted": UNKNOWN}),
    "kms-key-rotation": ("aws:kms/key:Key", {"enableKeyRotation": UNKNOWN}),
    "secret-encrypted-with-cmk": None,  # same as log-group-encrypted
    "ecr-repository-hardened": (
        "aws:ecr/repository:Repository",
        {
            "imageScanningConfiguration": {"scanOnPush": UNKNOWN},
            "imageTagMutability": "IMMUTABLE",
            "encryptionConfigurations": [{"encryptionType": "KMS"}],
        },
    ),
    "alb-https-only": ("aws:lb/listener:Listener", {"protocol": "HTTPS", "sslPolicy": UNKNOWN}),
    "rds-not-public": ("aws:rds/instance:Instance", {"publiclyAccessible": UNKNOWN}),
    "alb-drop-invalid-headers": ("aws:lb/loadBalancer:LoadBalancer", {"dropInvalidHeaderFields": UNKNOWN}),
    "rds-backup-retention": ("aws:rds/instance:Instance", {"backupRetentionPeriod": UNKNOWN}),
    "stateful-resources-protected": ("aws:rds/instance:Instance", {"deletionProtection": UNKNOWN}),
    "qdrant-on-network-storage": (
        TD,
        {"containerDefinitions": UNKNOWN, "volumes": [{"name": "d", "efsVolumeConfiguration": {}}]},
    ),
    "fargate-task-size-valid": (
        TD,
        {"requiresCompatibilities": ["FARGATE"], "cpu": "512", "memory": UNKNOWN},
    ),
    "ecs-deployment-circuit-breaker": ("aws:ecs/service:Service", {"deploymentCircuitBreaker": UNKNOWN}),
    "container-health-check": (TD, UNKNOWN_CONTAINERS),
    "image-pinned": (TD, UNKNOWN_CONTAINERS),
    "alarm-has-actions": None,  # an unknown list of ARNs is still a list of actions: decided
    "target-group-health-check": ("aws:lb/targetGroup:TargetGroup", {"healthCheck": UNKNOWN}),
    "iam-no-wildcard-actions": ("aws:iam/rolePolicy:RolePolicy", {"policy": UNKNOWN}),
    "iam-no-admin-policies": ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", {"policyArn": UNKNOWN}),
    "iam-wildcard-resource-justified": ("aws:iam/policy:Policy", {"policy": UNKNOWN}),
    "ecs-secrets-not-in-environment": (TD, UNKNOWN_CONTAINERS),
    "ecs-task-role-separate": (TD, {"taskRoleArn": UNKNOWN, "executionRoleArn": UNKNOWN}),
    "ecs-no-privileged-containers": (TD, UNKNOWN_CONTAINERS),
    "ecs-read-only-root-filesystem": (TD, UNKNOWN_CONTAINERS),
    "iam-no-privilege-escalation": ("aws:iam/rolePolicy:RolePolicy", {"policy": UNKNOWN}),
    "ebs-encrypted": ("aws:ebs/volume:Volume", {"encrypted": UNKNOWN}),
    "ec2-imdsv2-required": (
        "aws:ec2/launchTemplate:LaunchTemplate",
        {"metadataOptions": {"httpTokens": UNKNOWN}},
    ),
    "ec2-no-public-ip": ("aws:ec2/instance:Instance", {"associatePublicIpAddress": UNKNOWN}),
}

STACK_CASES = {
    "s3-bucket-encrypted-private": [
        R("aws:s3/bucket:Bucket", "b", {"bucket": "b"}),
        R(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "s",
            {"bucket": UNKNOWN},
        ),
    ],
    "ecs-service-private-networking": [
        R(
            "aws:ecs/service:Service",
            "svc",
            {"networkConfiguration": {"subnets": UNKNOWN, "assignPublicIp": False}},
        )
    ],
    "security-group-no-public-ingress": [
        R(
            "aws:ec2/securityGroup:SecurityGroup",
            "sg",
            {"ingress": [{"protocol": "tcp", "cidrBlocks": UNKNOWN}]},
        )
    ],
    "efs-mount-target-private": [R("aws:efs/mountTarget:MountTarget", "mt", {"subnetId": UNKNOWN})],
    "vpc-flow-logs-enabled": [
        R("aws:ec2/vpc:Vpc", "vpc", {"id": "vpc-1"}),
        R("aws:ec2/flowLog:FlowLog", "fl", {"vpcId": UNKNOWN}),
    ],
    "single-writer-storage": [
        R(
            TD,
            "td",
            {
                "arn": "arn:td:1",
                "containerDefinitions": "[]",
                "volumes": [{"name": "qdrant-data", "efsVolumeConfiguration": {}}],
            },
        ),
        R("aws:ecs/service:Service", "svc", {"taskDefinition": "arn:td:1", "desiredCount": UNKNOWN}),
    ],
    "efs-backup-enabled": [
        R("aws:efs/fileSystem:FileSystem", "fs", {"id": "fs-1"}),
        R("aws:backup/selection:Selection", "sel", {"resources": UNKNOWN}),
    ],
    "ec2-private-subnets": [R("aws:autoscaling/group:Group", "asg", {"vpcZoneIdentifiers": UNKNOWN})],
    "ebs-volume-backed-up": [
        R("aws:ebs/volume:Volume", "v", {"arn": UNKNOWN}),
        R("aws:backup/selection:Selection", "sel", {"resources": UNKNOWN}),
    ],
    "cost-ceiling": [
        R(TD, "td", {"arn": "arn:td:1", "cpu": "256", "memory": "512"}),
        R(
            "aws:ecs/service:Service",
            "svc",
            {"launchType": "FARGATE", "taskDefinition": "arn:td:1", "desiredCount": UNKNOWN},
        ),
    ],
}
STACK_CASES["cost-increase-ceiling"] = STACK_CASES["cost-ceiling"]
# The cost policies apply only to a stack with a ceiling (or a recorded bill) configured.
STACK_CONFIG = {
    "cost-ceiling": {"maxMonthlyUsd": 100},
    "cost-increase-ceiling": {"baselineMonthlyUsd": 100, "maxIncreaseUsd": 10},
}


def test_every_policy_has_an_unknown_case() -> None:
    assert set(RESOURCE_CASES) | set(STACK_CASES) == set(POLICIES)


@pytest.mark.parametrize("name", sorted(n for n, case in RESOURCE_CASES.items() if case is not None))
def test_resource_policy_cannot_decide(name: str, stack_named) -> None:
    stack_named("prod")
    typ, props = RESOURCE_CASES[name] or ("", {})
    with pytest.raises(UnknownValueError, match="cannot decide"):
        check_resource(POLICIES[name], typ, props)  # type: ignore[arg-type]


@pytest.mark.parametrize("encryption", [UNKNOWN, [UNKNOWN], [{"encryptionType": UNKNOWN}]])
def test_ecr_encryption_unknown_is_not_a_violation(encryption: object) -> None:
    """Scan and tag settings known and fine, the encryption not yet known: cannot decide."""
    props = {
        "imageScanningConfiguration": {"scanOnPush": True},
        "imageTagMutability": "IMMUTABLE",
        "encryptionConfigurations": encryption,
    }
    with pytest.raises(UnknownValueError, match="encryptionConfigurations unknown"):
        check_resource(POLICIES["ecr-repository-hardened"], "aws:ecr/repository:Repository", props)


@pytest.mark.parametrize("name", sorted(STACK_CASES))
def test_stack_policy_cannot_decide(name: str) -> None:
    with pytest.raises(UnknownValueError, match="cannot decide"):
        check_stack(POLICIES[name], STACK_CASES[name], STACK_CONFIG.get(name))  # type: ignore[arg-type]
