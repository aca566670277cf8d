"""The undecided contract, over the Analyzer gRPC interface: a check a policy cannot decide is
reported once per resource at the policy's own level, as `undecided [<property>]: <resource>: <what
could not be judged>; <what would make it decidable>`; the per-stack option `"undecided":
"advisory"` turns it into the SDK's advisory "can't run policy" diagnostic with the same message."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy.proxy import UnknownValueError
from wwhd_policies import ALL_POLICIES, _policy, _util, encryption

from .conftest import UNKNOWN, R, check_resource

TD = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
UNKNOWN_CONTAINERS = {"containerDefinitions": UNKNOWN}
VPC = R("awsx:ec2:Vpc", "vpc", {"vpcId": UNKNOWN, "privateSubnetIds": UNKNOWN})
OPEN_GROUP = R(
    "aws:ec2/securityGroup:SecurityGroup",
    "sg",
    {
        "id": UNKNOWN,
        "ingress": [{"protocol": "tcp", "fromPort": 8000, "toPort": 8000, "cidrBlocks": ["0.0.0.0/0"]}],
    },
)

COST_UNKNOWN = [
    R(TD, "td", {"arn": "arn:td:1", "cpu": "256", "memory": "512"}),
    R(SERVICE, "svc", {"launchType": "FARGATE", "taskDefinition": "arn:td:1", "desiredCount": UNKNOWN}),
]


def _unknown(typ: str, prop: str, **known: Any) -> tuple[list[R], str]:
    """The common case: one resource whose `prop` is unknown before creation (its `known` props set)."""
    return [R(typ, "res", {prop: UNKNOWN, **known})], prop


def _unknown_target(target: R, typ: str, prop: str) -> tuple[list[R], str]:
    """`target`, and a resource of `typ` that would name it in `prop`, unknown before creation and
    depending on nothing: whether it is about `target` cannot be judged."""
    return [target, R(typ, "ref", {prop: UNKNOWN})], prop


BUCKET = R("aws:s3/bucket:Bucket", "b", {"bucket": "b"})
SELECTION = "aws:backup/selection:Selection"


# policy -> (resources whose unknown values it cannot judge, the property it must name); None where
# an unknown value still decides (an unknown key ARN is a key this stack creates; an unknown list of
# alarm actions is a list of actions).
CASES: dict[str, tuple[list[R], str] | None] = {
    "efs-encrypted": _unknown("aws:efs/fileSystem:FileSystem", "encrypted", kmsKeyId="k"),
    "ecs-efs-transit-encryption": (
        [R(TD, "td", {"volumes": [{"name": "d", "efsVolumeConfiguration": {"transitEncryption": UNKNOWN}}]})],
        "volumes",
    ),
    "log-group-encrypted": None,
    "log-group-retention": _unknown("aws:cloudwatch/logGroup:LogGroup", "retentionInDays"),
    "sns-topic-encrypted": None,
    "s3-bucket-encrypted-private": _unknown_target(
        BUCKET, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "bucket"
    ),
    "rds-encrypted": _unknown("aws:rds/instance:Instance", "storageEncrypted"),
    "kms-key-rotation": _unknown("aws:kms/key:Key", "enableKeyRotation"),
    "secret-encrypted-with-cmk": None,
    "ecr-repository-hardened": (
        [
            R(
                "aws:ecr/repository:Repository",
                "repo",
                {
                    "imageScanningConfiguration": {"scanOnPush": UNKNOWN},
                    "imageTagMutability": "IMMUTABLE",
                    "encryptionConfigurations": [{"encryptionType": "KMS"}],
                },
            )
        ],
        "imageScanningConfiguration",
    ),
    "alb-https-only": _unknown("aws:lb/listener:Listener", "sslPolicy", protocol="HTTPS"),
    "lb-tls13-policy": _unknown("aws:lb/listener:Listener", "sslPolicy", protocol="HTTPS"),
    "ecs-service-private-networking": (
        [
            VPC,
            OPEN_GROUP,
            R(
                SERVICE,
                "svc",
                {
                    "networkConfiguration": {
                        "subnets": UNKNOWN,
                        "securityGroups": [UNKNOWN],
                        "assignPublicIp": False,
                    }
                },
                prop_deps={"networkConfiguration": ["vpc", "sg"]},
            ),
        ],
        "networkConfiguration.subnets",
    ),
    "security-group-no-public-ingress": (
        [
            R(
                "aws:ec2/securityGroup:SecurityGroup",
                "sg",
                {"ingress": [{"protocol": "tcp", "cidrBlocks": UNKNOWN}]},
            )
        ],
        "ingress",
    ),
    "rds-not-public": _unknown("aws:rds/instance:Instance", "publiclyAccessible"),
    "efs-mount-target-private": _unknown("aws:efs/mountTarget:MountTarget", "subnetId"),
    "vpc-flow-logs-enabled": _unknown_target(
        R("aws:ec2/vpc:Vpc", "vpc", {"id": "vpc-1"}), "aws:ec2/flowLog:FlowLog", "vpcId"
    ),
    "alb-drop-invalid-headers": _unknown("aws:lb/loadBalancer:LoadBalancer", "dropInvalidHeaderFields"),
    "single-writer-storage": (
        [
            R(
                TD,
                "td",
                {
                    "arn": "arn:td:1",
                    "containerDefinitions": "[]",
                    "volumes": [{"name": "qdrant-data", "efsVolumeConfiguration": {}}],
                },
            ),
            R(
                SERVICE,
                "svc",
                {"taskDefinition": "arn:td:1", "desiredCount": UNKNOWN, "deploymentMaximumPercent": 100},
            ),
        ],
        "desiredCount",
    ),
    "efs-backup-enabled": _unknown_target(
        R("aws:efs/fileSystem:FileSystem", "fs", {"id": "fs-1"}), SELECTION, "resources"
    ),
    "rds-backup-retention": _unknown("aws:rds/instance:Instance", "backupRetentionPeriod"),
    "stateful-resources-protected": _unknown("aws:rds/instance:Instance", "deletionProtection"),
    "qdrant-on-network-storage": _unknown(
        TD, "containerDefinitions", volumes=[{"name": "d", "efsVolumeConfiguration": {}}]
    ),
    "fargate-task-size-valid": _unknown(TD, "memory", requiresCompatibilities=["FARGATE"], cpu="512"),
    "ecs-deployment-circuit-breaker": _unknown(SERVICE, "deploymentCircuitBreaker"),
    "container-health-check": ([R(TD, "td", UNKNOWN_CONTAINERS)], "containerDefinitions"),
    "image-pinned": ([R(TD, "td", UNKNOWN_CONTAINERS)], "containerDefinitions"),
    "alarm-has-actions": None,
    "target-group-health-check": _unknown("aws:lb/targetGroup:TargetGroup", "healthCheck"),
    "iam-no-wildcard-actions": _unknown("aws:iam/rolePolicy:RolePolicy", "policy"),
    "iam-no-admin-policies": _unknown("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "policyArn"),
    "iam-wildcard-resource-justified": _unknown("aws:iam/policy:Policy", "policy"),
    "ecs-secrets-not-in-environment": ([R(TD, "td", UNKNOWN_CONTAINERS)], "containerDefinitions"),
    "ecs-task-role-separate": _unknown(TD, "taskRoleArn", executionRoleArn=UNKNOWN),
    "ecs-no-privileged-containers": ([R(TD, "td", UNKNOWN_CONTAINERS)], "containerDefinitions"),
    "ecs-read-only-root-filesystem": ([R(TD, "td", UNKNOWN_CONTAINERS)], "containerDefinitions"),
    "iam-no-privilege-escalation": _unknown("aws:iam/rolePolicy:RolePolicy", "policy"),
    "lb-access-logs": (
        [
            R(
                "aws:lb/loadBalancer:LoadBalancer",
                "alb",
                {"accessLogs": {"bucket": "logs", "enabled": UNKNOWN}},
            )
        ],
        "accessLogs",
    ),
    "s3-bucket-access-logging": _unknown_target(BUCKET, "aws:s3/bucketLogging:BucketLogging", "bucket"),
    "rds-performance-insights": _unknown(
        "aws:rds/instance:Instance", "performanceInsightsEnabled", engine="postgres"
    ),
    "ebs-encrypted": _unknown("aws:ebs/volume:Volume", "encrypted"),
    "ec2-imdsv2-required": (
        [R("aws:ec2/launchTemplate:LaunchTemplate", "lt", {"metadataOptions": {"httpTokens": UNKNOWN}})],
        "metadataOptions",
    ),
    "ec2-no-public-ip": _unknown("aws:ec2/instance:Instance", "associatePublicIpAddress"),
    "ec2-private-subnets": _unknown("aws:autoscaling/group:Group", "vpcZoneIdentifiers"),
    "ebs-volume-backed-up": _unknown_target(
        R("aws:ebs/volume:Volume", "v", {"arn": UNKNOWN}), SELECTION, "resources"
    ),
    "container-memory-fits": _unknown(TD, "memory", containerDefinitions="[]"),
    "image-from-private-registry": ([R(TD, "td", UNKNOWN_CONTAINERS)], "containerDefinitions"),
    "rotating-secret-readers-refreshed": (
        [
            R(
                "aws:rds/instance:Instance",
                "db",
                {"manageMasterUserPassword": True, "masterUserSecrets": UNKNOWN},
            ),
            R(
                TD,
                "td",
                {"arn": "arn:td:1", **UNKNOWN_CONTAINERS},
                prop_deps={"containerDefinitions": ["db"]},
            ),
            R(SERVICE, "svc", {"taskDefinition": "arn:td:1"}),
        ],
        "containerDefinitions",
    ),
    # A service whose desired count is unknown cannot be priced: the estimate is a lower bound.
    "cost-ceiling": (COST_UNKNOWN, "desiredCount"),
    "cost-increase-ceiling": (COST_UNKNOWN, "desiredCount"),
}
# The cost policies apply only to a stack with a ceiling (or a recorded bill) configured.
CONFIG: dict[str, dict[str, object]] = {
    "cost-ceiling": {"maxMonthlyUsd": 100},
    "cost-increase-ceiling": {"baselineMonthlyUsd": 100, "maxIncreaseUsd": 10},
}
DECIDABLE = sorted(name for name, case in CASES.items() if case is not None)


def test_every_policy_has_a_case() -> None:
    assert set(CASES) == {p.name for p in ALL_POLICIES}


@pytest.mark.parametrize("name", DECIDABLE)
def test_undecided_is_reported_at_the_policys_level_naming_the_property(pack, name: str) -> None:
    specs, prop = CASES[name] or ([], "")
    for level in ("mandatory", "advisory"):
        found = pack.run(name, specs, CONFIG.get(name), level=level)
        undecided = [f for f in found if f.undecided]
        assert undecided, found
        assert all(f.level == level for f in undecided)  # mandatory stays mandatory
        assert not [f for f in found if f.cannot_run]
        if prop:
            assert undecided[0].text.startswith(f"undecided [{prop}]: ")
        # "<resource>: <what could not be judged>; <what would make it decidable>"
        body = undecided[0].text.split("]: ", 1)[1]
        assert "; " in body and "'" in body.split(":", 1)[0]


@pytest.mark.parametrize("name", DECIDABLE)
def test_the_stack_config_downgrades_undecided_to_the_sdks_advisory(pack, name: str) -> None:
    specs, _ = CASES[name] or ([], "")
    at_level = [f.text for f in pack.run(name, specs, CONFIG.get(name), level="mandatory") if f.undecided]
    found = pack.run(name, specs, config={**CONFIG.get(name, {}), "undecided": "advisory"}, level="mandatory")
    assert not [f for f in found if f.undecided]
    [advisory] = [f for f in found if f.cannot_run]
    assert advisory.level == "advisory"
    # The same messages, one per line, after the SDK's "... during preview: ".
    assert advisory.text.split("during preview: ", 1)[1].splitlines() == at_level


def test_the_option_is_in_every_policys_schema(pack) -> None:
    assert pack.pack._info is not None
    for info in pack.pack._info.policies:
        prop = info.configSchema.properties["undecided"]
        assert list(prop["enum"]) == ["policy-level", "advisory"] and prop["default"] == "policy-level"


def test_one_message_per_resource_names_every_unknown_property() -> None:
    """Two unknown settings of one repository: one undecided message with both properties."""
    policy = encryption.ecr_repository_hardened
    props = {
        "imageScanningConfiguration": UNKNOWN,
        "imageTagMutability": UNKNOWN,
        "encryptionConfigurations": UNKNOWN,
    }
    [message] = check_resource(policy, "aws:ecr/repository:Repository", props, name="repo")
    assert message.startswith(
        "undecided [imageScanningConfiguration, imageTagMutability, encryptionConfigurations]: Repository 'repo': "
    )


def test_stack_policies_report_undecided_per_resource_with_its_urn(pack) -> None:
    buckets = [R("aws:s3/bucket:Bucket", n, {"bucket": n}) for n in ("a", "b")]
    blind = R("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "pab", {"bucket": UNKNOWN})
    found = pack.run("s3-bucket-encrypted-private", [*buckets, blind])
    assert sorted(f.name for f in found if f.undecided) == ["a", "b"]


def test_a_reason_alone_is_a_well_formed_message() -> None:
    """The property and remedy have defaults: a reason alone still makes a well-formed message."""
    out = _policy.Findings()
    out.cannot_decide("2 resource(s) could not be priced")
    [(message, urn)] = out.undecided
    assert message == f"undecided [value]: 2 resource(s) could not be priced; {_util.KNOWN_BEFORE_CREATION}"
    assert urn is None
    with pytest.raises(UnknownValueError, match="could not be priced"):
        out.emit(lambda *_: None, undecided_as_advisory=True)
