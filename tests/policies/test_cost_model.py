"""Cost model arithmetic against hand-computed figures (730 h/month, us-west-2 unit prices).

Every expected value is written out from the published unit prices, never read back from the
model: Fargate x86 $0.04048/vCPU-h + $0.004445/GB-h, arm64 $0.03238 + $0.00356, Spot 70% off,
ALB $0.0225/h + $0.008/LCU-h, NAT $0.045/h + $0.045/GB, public IPv4 $0.005/h, EFS $0.30/GB-month,
RDS PostgreSQL db.t4g.medium $0.065/h + $0.115/GB-month, EBS gp3 $0.08/GB-month (+ $0.005 per
IOPS above 3,000), snapshots $0.05/GB-month, EC2 t4g.small $0.0168/h."""

from __future__ import annotations

import json

import pytest
from wwhd_policies.cost_model import DEFAULT_USAGE, estimate, load_prices
from wwhd_policies.cost_model.model import split_capacity

from .conftest import UNKNOWN

H = 730
NO_USAGE = {
    k: 0 for k in ("natGbPerMonth", "albLcu", "efsGbStored", "logIngestGbPerGroup", "logStoredGbPerGroup")
}
X86_TASK_HOUR = 1 * 0.04048 + 2 * 0.004445  # 1 vCPU / 2 GB
ARM_TASK_HOUR = 1 * 0.03238 + 2 * 0.00356


def res(typ: str, name: str, props: dict | None = None, **extra) -> dict:
    return {"type": typ, "name": name, "urn": f"urn:{name}", "props": props or {}, **extra}


def td(name: str, cpu: str, mem: str, arch: str = "X86_64") -> dict:
    return {**_td(name, cpu, mem, arch), "urn": f"urn:td:{name}"}


def _td(name: str, cpu: str, mem: str, arch: str) -> dict:
    return res(
        "aws:ecs/taskDefinition:TaskDefinition",
        name,
        {
            "arn": f"arn:aws:ecs:us-west-2:1:task-definition/{name}:1",
            "cpu": cpu,
            "memory": mem,
            "requiresCompatibilities": ["FARGATE"],
            "runtimePlatform": {"cpuArchitecture": arch, "operatingSystemFamily": "LINUX"},
        },
    )


def svc(name: str, td_name: str, desired, **extra) -> dict:
    props = {
        "name": name,
        "launchType": "FARGATE",
        "taskDefinition": f"arn:aws:ecs:us-west-2:1:task-definition/{td_name}:1",
    }
    if desired is not None:
        props["desiredCount"] = desired
    return res("aws:ecs/service:Service", name, props | extra)


def scaling(service: str, maximum: float) -> dict:
    return res(
        "aws:appautoscaling/target:Target",
        f"{service}-target",
        {"resourceId": f"service/wwhd/{service}", "maxCapacity": maximum, "minCapacity": 1.0},
    )


def item(est, name: str):
    return next(i for i in est.items if i.name == name)


# --- Fargate ---------------------------------------------------------------------------------


def test_fargate_baseline_and_peak_split() -> None:
    est = estimate([td("api", "1024", "2048"), svc("api", "api", 2.0), scaling("api", 4.0)], usage=NO_USAGE)
    assert item(est, "api").baseline_monthly == pytest.approx(2 * X86_TASK_HOUR * H, abs=0.01)
    assert item(est, "api").peak_monthly == pytest.approx(4 * X86_TASK_HOUR * H, abs=0.01)
    assert est.baseline_monthly == pytest.approx(2 * (1 * 0.04048 + 2 * 0.004445) * 730, abs=0.01)


def test_arm64_costs_less_than_x86_and_spot_is_70_percent_off() -> None:
    strategies = [
        {"capacityProvider": "FARGATE", "base": 1.0, "weight": 0.0},
        {"capacityProvider": "FARGATE_SPOT", "base": 0.0, "weight": 1.0},
    ]
    spot_svc = svc("w", "w", 3.0, capacityProviderStrategies=strategies)
    del spot_svc["props"]["launchType"]
    est = estimate([td("w", "1024", "2048", "ARM64"), spot_svc, td("x", "1024", "2048"), svc("x", "x", 1.0)])
    # 1 on-demand task (the base), 2 on Spot at 70% off.
    assert item(est, "w").baseline_monthly == pytest.approx((1 + 2 * 0.3) * ARM_TASK_HOUR * H, abs=0.01)
    assert item(est, "x").baseline_monthly == pytest.approx(1 * (0.04048 + 2 * 0.004445) * 730, abs=0.01)
    assert "Fargate Spot" in item(est, "w").detail


def test_split_capacity_fills_bases_then_weights() -> None:
    assert split_capacity(
        4, [{"capacityProvider": "FARGATE", "weight": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 3}]
    ) == (1.0, 3.0, 0.0)
    assert split_capacity(
        3,
        [
            {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
            {"capacityProvider": "qdrant-asg", "weight": 1},
        ],
    ) == (2.0, 0.0, 1.0)


def test_unset_desired_count_is_zero_tasks_as_aws_applies() -> None:
    est = estimate([td("api", "512", "1024"), svc("api", "api", None)])
    assert item(est, "api").baseline_monthly == 0
    assert item(est, "api").detail.startswith("0 task(s) baseline")


def test_unknown_desired_count_is_unpriced_never_zero_tasks() -> None:
    est = estimate([td("api", "512", "1024"), svc("api", "api", UNKNOWN)])
    assert est.items == []
    assert est.unpriced == [
        {
            "urn": "urn:api",
            "name": "api",
            "type": "aws:ecs/service:Service",
            "reason": "desiredCount is not known yet",
            "kind": "unknown",
            "property": "desiredCount",
        }
    ]


def test_ec2_launch_type_tasks_are_priced_with_their_instances() -> None:
    ec2_svc = svc("qdrant", "q", 1.0, launchType="EC2")
    est = estimate([td("q", "512", "1024"), ec2_svc])
    assert item(est, "qdrant").baseline_monthly == 0
    assert "container instances" in item(est, "qdrant").detail


def test_service_on_an_ec2_capacity_provider_needs_no_task_size() -> None:
    strategy = [{"capacityProvider": "wwhd-qdrant-asg", "weight": 1}]
    service = svc("qdrant", "q", 1.0, capacityProviderStrategies=strategy)
    del service["props"]["launchType"]
    bare_td = res(
        "aws:ecs/taskDefinition:TaskDefinition", "q", {"arn": "arn:aws:ecs:us-west-2:1:task-definition/q:1"}
    )
    est = estimate([bare_td, service])
    assert est.unpriced == [] and item(est, "qdrant").baseline_monthly == 0
    assert "EC2 capacity providers" in item(est, "qdrant").detail


def test_service_without_launch_type_follows_its_clusters_default_strategy() -> None:
    cluster = res("aws:ecs/cluster:Cluster", "cluster", {"name": "wwhd", "arn": "arn:cluster"})
    ccp = res(
        "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders",
        "ccp",
        {
            "clusterName": "wwhd",
            "defaultCapacityProviderStrategies": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
        },
    )
    service = svc("api", "api", 2.0, cluster="arn:cluster")
    del service["props"]["launchType"]
    est = estimate([cluster, ccp, td("api", "1024", "2048"), service])
    assert item(est, "api").baseline_monthly == pytest.approx(2 * 0.3 * X86_TASK_HOUR * H, abs=0.01)
    # Without a default strategy AWS uses the EC2 launch type...
    ec2_td = td("api", "1024", "2048")
    ec2_td["props"]["requiresCompatibilities"] = ["EC2", "FARGATE"]
    est = estimate([cluster, ec2_td, service])
    assert item(est, "api").baseline_monthly == 0 and "EC2 launch type" in item(est, "api").detail
    # ...which a Fargate-only task definition cannot use: it is priced as on-demand Fargate.
    est = estimate([cluster, td("api", "1024", "2048"), service])
    assert item(est, "api").baseline_monthly == pytest.approx(2 * X86_TASK_HOUR * H, abs=0.01)
    # A cluster outside the stack leaves the launch type unknown to the model.
    est = estimate([ec2_td, service])
    assert est.unpriced[0]["reason"] == "its cluster is not in this stack, so its launch type is not known"


# --- networking, storage, databases ------------------------------------------------------------


def test_alb_with_lcu_and_public_ipv4_and_nat() -> None:
    resources = [
        res("aws:lb/loadBalancer:LoadBalancer", "alb", {"subnets": ["a", "b"], "internal": False}),
        res("aws:lb/loadBalancer:LoadBalancer", "internal", {"internal": True}),
        res(
            "awsx:ec2:Vpc",
            "vpc",
            {"privateSubnetIds": ["p1", "p2"]},
            inputs={"numberOfAvailabilityZones": 2, "natGateways": {"strategy": "Single"}},
        ),
    ]
    est = estimate(resources, usage={"albLcu": 1, "natGbPerMonth": 100})
    assert item(est, "alb").baseline_monthly == pytest.approx(
        730 * (0.0225 + 1 * 0.008) + 2 * 0.005 * 730, abs=0.01
    )
    assert item(est, "internal").baseline_monthly == pytest.approx(730 * (0.0225 + 0.008), abs=0.01)
    assert item(est, "vpc").baseline_monthly == pytest.approx(730 * (0.045 + 0.005) + 100 * 0.045, abs=0.01)


def test_az_count_of_unknown_subnets_comes_from_their_awsx_vpc() -> None:
    vpc = res(
        "awsx:ec2:Vpc", "vpc", inputs={"numberOfAvailabilityZones": 3, "natGateways": {"strategy": "None"}}
    )
    alb = res(
        "aws:lb/loadBalancer:LoadBalancer",
        "alb",
        {"subnets": UNKNOWN},
        propertyDependencies={"subnets": ["urn:vpc"]},
    )
    endpoint = res(
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "ecr",
        {"vpcEndpointType": "Interface", "subnetIds": UNKNOWN},
        propertyDependencies={"subnetIds": ["urn:vpc"]},
    )
    orphan = res("aws:lb/loadBalancer:LoadBalancer", "orphan", {"subnets": UNKNOWN})
    est = estimate(
        [vpc, alb, endpoint, orphan], usage={"albLcu": 0, "vpcEndpointGbPerMonth": 0, "defaultAzs": 2}
    )
    assert item(est, "alb").baseline_monthly == pytest.approx(730 * 0.0225 + 3 * 0.005 * 730, abs=0.01)
    assert item(est, "ecr").baseline_monthly == pytest.approx(3 * 0.01 * 730, abs=0.01)
    assert "one per AZ of vpc" in item(est, "alb").detail
    assert item(est, "orphan").baseline_monthly == pytest.approx(730 * 0.0225 + 2 * 0.005 * 730, abs=0.01)
    assert "AZ count assumed" in item(est, "orphan").detail


def test_awsx_vpc_priced_from_children_when_present_never_both() -> None:
    resources = [
        res("awsx:ec2:Vpc", "vpc", inputs={"natGateways": {"strategy": "OnePerAz"}}),
        res("aws:ec2/natGateway:NatGateway", "nat-1", parent="urn:vpc"),
        res("aws:ec2/eip:Eip", "eip-1", parent="urn:vpc"),
        res("aws:ec2/subnet:Subnet", "s1", parent="urn:vpc"),
    ]
    est = estimate(resources, usage={"natGbPerMonth": 0})
    assert sorted(i.name for i in est.items) == ["eip-1", "nat-1"]
    assert est.baseline_monthly == pytest.approx(730 * 0.045 + 730 * 0.005, abs=0.01)
    assert est.unpriced == []


def test_efs_standard_storage() -> None:
    est = estimate(
        [res("aws:efs/fileSystem:FileSystem", "fs", {"encrypted": True})], usage={"efsGbStored": 12}
    )
    assert est.baseline_monthly == pytest.approx(12 * 0.30, abs=0.01)


def test_rds_multi_az_doubles_instance_and_storage() -> None:
    db = res(
        "aws:rds/instance:Instance",
        "db",
        {"instanceClass": "db.t4g.medium", "multiAz": True, "allocatedStorage": 20.0, "engine": "postgres"},
    )
    est = estimate([db])
    assert est.baseline_monthly == pytest.approx(2 * (0.065 * 730 + 20 * 0.115), abs=0.01)
    single = estimate([res("aws:rds/instance:Instance", "db", {**db["props"], "multiAz": False})])
    assert single.baseline_monthly == pytest.approx(0.065 * 730 + 20 * 0.115, abs=0.01)


def test_rds_iops_without_storage_type_is_io1_and_unpriced() -> None:
    db = res(
        "aws:rds/instance:Instance",
        "db",
        {"instanceClass": "db.t4g.micro", "engine": "postgres", "iops": 3000},
    )
    est = estimate([db])
    assert est.unpriced[0]["reason"] == "io1 storage is not in prices.json"


def test_aurora_cluster_and_serverless_capacity_range() -> None:
    resources = [
        res(
            "aws:rds/cluster:Cluster",
            "aurora",
            {
                "engine": "aurora-postgresql",
                "serverlessv2ScalingConfiguration": {"minCapacity": 0.5, "maxCapacity": 4},
            },
        ),
        res(
            "aws:rds/clusterInstance:ClusterInstance",
            "writer",
            {"instanceClass": "db.serverless", "engine": "aurora-postgresql"},
            propertyDependencies={"clusterIdentifier": ["urn:aurora"]},
        ),
        res(
            "aws:rds/clusterInstance:ClusterInstance",
            "reader",
            {"instanceClass": "db.t4g.medium", "engine": "aurora-postgresql"},
        ),
    ]
    est = estimate(resources, usage={"auroraStorageGb": 10, "auroraIoMillionPerMonth": 10})
    assert item(est, "aurora").baseline_monthly == pytest.approx(10 * 0.10 + 10 * 0.20, abs=0.01)
    assert item(est, "writer").baseline_monthly == pytest.approx(0.5 * 0.12 * 730, abs=0.01)
    assert item(est, "writer").peak_monthly == pytest.approx(4 * 0.12 * 730, abs=0.01)
    assert item(est, "reader").baseline_monthly == pytest.approx(0.073 * 730, abs=0.01)


def test_elasticache_nodes_and_serverless() -> None:
    resources = [
        res(
            "aws:elasticache/cluster:Cluster",
            "memcached",
            {"engine": "memcached", "nodeType": "cache.t4g.small", "numCacheNodes": 2},
        ),
        res(
            "aws:elasticache/replicationGroup:ReplicationGroup",
            "redis",
            {"nodeType": "cache.t4g.micro", "numCacheClusters": 2},
        ),
        res("aws:elasticache/serverlessCache:ServerlessCache", "serverless", {"engine": "valkey"}),
    ]
    est = estimate(resources)
    assert item(est, "memcached").baseline_monthly == pytest.approx(2 * 0.032 * 730, abs=0.01)
    assert item(est, "redis").baseline_monthly == pytest.approx(2 * 0.016 * 730, abs=0.01)
    assert [u["name"] for u in est.unpriced] == ["serverless"]


# --- EC2 and EBS (issue 18: Qdrant on one Graviton container instance) -------------------------

LT = res(
    "aws:ec2/launchTemplate:LaunchTemplate",
    "qdrant-lt",
    {
        "instanceType": "t4g.small",
        "metadataOptions": {"httpTokens": "required"},
        "networkInterfaces": [{"associatePublicIpAddress": "false"}],
        "blockDeviceMappings": [
            {"deviceName": "/dev/xvda", "ebs": {"volumeSize": 30, "volumeType": "gp3", "encrypted": "true"}}
        ],
    },
)
ASG = res(
    "aws:autoscaling/group:Group",
    "qdrant-asg",
    {"minSize": 1, "maxSize": 1, "vpcZoneIdentifiers": [UNKNOWN], "launchTemplate": {"id": UNKNOWN}},
    propertyDependencies={"launchTemplate": ["urn:qdrant-lt"]},
)
VOLUME = res(
    "aws:ebs/volume:Volume",
    "qdrant-data",
    {"size": 20, "type": "gp3", "encrypted": True, "arn": UNKNOWN, "tags": {"Name": "qdrant-data"}},
)
SELECTION = res(
    "aws:backup/selection:Selection",
    "qdrant-backup",
    {"resources": [UNKNOWN]},
    propertyDependencies={"resources": ["urn:qdrant-data"]},
)


def test_autoscaling_group_prices_its_launch_templates_instance_and_root_volume() -> None:
    est = estimate([LT, ASG])
    # desiredCapacity unset: AWS starts the group at its minimum (1).
    assert item(est, "qdrant-asg").baseline_monthly == pytest.approx(0.0168 * 730 + 30 * 0.08, abs=0.01)
    assert item(est, "qdrant-asg").peak_monthly == pytest.approx(0.0168 * 730 + 30 * 0.08, abs=0.01)
    # us-west-2 has no EC2 table of its own: the figure is us-east-1's, and the estimate says so.
    assert est.prices["ec2.linux.instanceHour"]["region"] == "us-east-1"
    assert est.prices["ec2.linux.instanceHour"]["source"].startswith("karpenter:")


def test_backed_up_volume_adds_its_snapshots() -> None:
    est = estimate([VOLUME, SELECTION])
    assert item(est, "qdrant-data").baseline_monthly == pytest.approx(20 * 0.08, abs=0.01)
    assert item(est, "qdrant-data snapshots").baseline_monthly == pytest.approx(20 * 1.0 * 0.05, abs=0.01)
    alone = estimate([VOLUME])
    assert [i.name for i in alone.items] == ["qdrant-data"]


def test_volume_type_defaults_to_gp2_and_gp3_iops_above_baseline_are_charged() -> None:
    est = estimate(
        [
            res("aws:ebs/volume:Volume", "plain", {"size": 10}),
            res("aws:ebs/volume:Volume", "fast", {"size": 10, "type": "gp3", "iops": 4000}),
        ]
    )
    assert item(est, "plain").baseline_monthly == pytest.approx(10 * 0.10, abs=0.01)
    assert item(est, "fast").baseline_monthly == pytest.approx(10 * 0.08 + (4000 - 3000) * 0.005, abs=0.01)


def test_instance_with_public_ip_and_unsized_root() -> None:
    inst = res(
        "aws:ec2/instance:Instance", "bastion", {"instanceType": "t4g.nano", "associatePublicIpAddress": True}
    )
    est = estimate([inst], usage={"amiRootVolumeGb": 8})
    assert item(est, "bastion").baseline_monthly == pytest.approx(
        0.0042 * 730 + 8 * 0.08 + 0.005 * 730, abs=0.01
    )
    assert "size assumed" in item(est, "bastion").detail


def test_instance_with_only_data_devices_still_has_the_amis_root_volume() -> None:
    inst = res(
        "aws:ec2/instance:Instance",
        "box",
        {
            "instanceType": "t4g.nano",
            "associatePublicIpAddress": False,
            "ebsBlockDevices": [{"deviceName": "/dev/sdf", "volumeSize": 10, "volumeType": "gp3"}],
        },
    )
    est = estimate([inst], usage={"amiRootVolumeGb": 30})
    assert item(est, "box").baseline_monthly == pytest.approx(0.0042 * 730 + 30 * 0.08 + 10 * 0.08, abs=0.01)


def test_ec2_instance_type_missing_from_the_table_is_unpriced() -> None:
    inst = res("aws:ec2/instance:Instance", "odd", {"instanceType": "zz9.huge"})
    est = estimate([inst])
    assert est.unpriced[0]["kind"] == "unpriced" and "zz9.huge" in est.unpriced[0]["reason"]


PLAN = res(
    "aws:backup/plan:Plan",
    "qdrant-plan",
    {
        "id": UNKNOWN,
        "rules": [{"targetVaultName": UNKNOWN, "copyActions": [{"destinationVaultArn": UNKNOWN}]}],
    },
    propertyDependencies={"rules": ["urn:qdrant-vault", "urn:qdrant-vault-copy"]},
)
PLANNED_SELECTION = {**SELECTION, "props": {**SELECTION["props"], "planId": UNKNOWN}} | {
    "propertyDependencies": {"resources": ["urn:qdrant-data"], "planId": ["urn:qdrant-plan"]}
}
VAULTS = [
    res("aws:backup/vault:Vault", n, {"name": UNKNOWN, "arn": UNKNOWN})
    for n in ("qdrant-vault", "qdrant-vault-copy")
]


def test_a_vault_keeping_a_volumes_recovery_points_is_priced_from_its_size() -> None:
    """The plan's vault and its copy in another region each keep the volume's snapshots (20 GB at
    $0.05); the volume's own line no longer carries them, and no EFS-backup assumption is added."""
    est = estimate([VOLUME, PLAN, PLANNED_SELECTION, *VAULTS])
    assert est.unpriced == []
    assert item(est, "qdrant-data").baseline_monthly == pytest.approx(20 * 0.08, abs=0.01)
    assert "qdrant-data snapshots" not in [i.name for i in est.items]
    for vault in ("qdrant-vault", "qdrant-vault-copy"):
        assert item(est, vault).baseline_monthly == pytest.approx(20 * 0.05, abs=0.01)
        assert item(est, vault).detail == "20 GB of snapshots of Volume 'qdrant-data'"


def test_a_vault_of_other_backups_or_of_no_plan_keeps_the_usage_assumption() -> None:
    efs = res("aws:efs/fileSystem:FileSystem", "fs", {"arn": UNKNOWN})
    efs_selection = res(
        "aws:backup/selection:Selection",
        "fs-backup",
        {"resources": [UNKNOWN], "planId": UNKNOWN},
        propertyDependencies={"resources": ["urn:fs"], "planId": ["urn:qdrant-plan"]},
    )
    est = estimate([efs, PLAN, efs_selection, *VAULTS], usage={"efsGbStored": 0})
    assert item(est, "qdrant-vault").baseline_monthly == pytest.approx(10 * 0.05)
    assert item(est, "qdrant-vault").detail == "10 GB of backups"
    lonely = estimate([VAULTS[0]])
    assert lonely.baseline_monthly == pytest.approx(10 * 0.05)
    assert "assumed: no plan of this stack uses it" in lonely.items[0].detail


def test_an_rds_managed_master_secret_is_billed_on_the_instance() -> None:
    db = {"instanceClass": "db.t4g.medium", "engine": "postgres", "allocatedStorage": 20}
    plain_db = item(estimate([res("aws:rds/instance:Instance", "db", db)]), "db")
    managed = item(
        estimate([res("aws:rds/instance:Instance", "db", db | {"manageMasterUserPassword": True})]), "db"
    )
    assert managed.baseline_monthly == pytest.approx(plain_db.baseline_monthly + 0.40, abs=0.01)
    assert managed.detail.endswith("+ its RDS-managed master user secret")


def test_parameter_store_standard_is_free_advanced_is_billed() -> None:
    def priced(props: dict) -> float:
        est = estimate([res("aws:ssm/parameter:Parameter", "p", {"type": "String", "value": "v"} | props)])
        assert est.unpriced == []
        return est.baseline_monthly

    assert priced({}) == 0 and priced({"tier": "Standard"}) == 0
    assert priced({"tier": "Advanced"}) == pytest.approx(0.05)
    # Intelligent-Tiering: standard until the value passes 4 KB or a policy is attached.
    assert priced({"tier": "Intelligent-Tiering"}) == 0
    assert priced({"tier": "Intelligent-Tiering", "value": "x" * 4097}) == pytest.approx(0.05)
    assert priced({"tier": "Intelligent-Tiering", "policies": '[{"Type": "Expiration"}]'}) == pytest.approx(
        0.05
    )


def test_a_pull_through_cache_rule_is_priced_for_the_images_it_caches() -> None:
    resources = [
        res(
            "aws:ecr/pullThroughCacheRule:PullThroughCacheRule",
            "docker-hub",
            {"ecrRepositoryPrefix": "docker-hub"},
        ),
        res("aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate", "docker-hub-template"),
    ]
    est = estimate(resources)
    assert est.unpriced == []
    assert [(i.name, i.baseline_monthly) for i in est.items] == [("docker-hub", pytest.approx(1 * 0.10))]
    assert estimate(resources, usage={"ecrCachedGbPerRule": 5}).baseline_monthly == pytest.approx(0.50)


def test_an_unknown_flow_log_destination_claims_no_log_group() -> None:
    """On a new stack every ARN is the same placeholder: the application's log groups still pay
    their own ingestion."""
    group = res("aws:cloudwatch/logGroup:LogGroup", "api-logs", {"arn": UNKNOWN})
    flow = res(
        "aws:ec2/flowLog:FlowLog",
        "flow",
        {"logDestination": UNKNOWN},
        propertyDependencies={"logDestination": ["urn:flow-logs"]},
    )
    est = estimate([group, flow])
    assert item(est, "api-logs").baseline_monthly == pytest.approx(1 * 0.5 + 2 * 0.03)


def test_unpriced_types_and_classes_are_listed_not_zero() -> None:
    resources = [
        res("aws:sqs/queue:Queue", "queue"),
        res("aws:ec2/securityGroup:SecurityGroup", "sg"),
        res("aws:iam/role:Role", "role"),
        res("aws:ec2/launchTemplate:LaunchTemplate", "lt"),
        res("aws:rds/instance:Instance", "big", {"instanceClass": "db.x2g.16xlarge", "engine": "postgres"}),
    ]
    est = estimate(resources)
    assert {u["name"]: u["kind"] for u in est.unpriced} == {"queue": "unpriced", "big": "unpriced"}
    assert est.items == [] and est.baseline_monthly == 0


def test_unknown_region_prices_nothing() -> None:
    est = estimate([res("aws:kms/key:Key", "k")], region="eu-north-9")
    assert est.items == [] and est.unpriced[0]["reason"].startswith("no prices for region")


def test_us_east_1_borrows_unit_prices_and_says_so() -> None:
    est = estimate([res("aws:kms/key:Key", "k")], region="us-east-1")
    assert est.baseline_monthly == 1.0
    assert est.prices["kms.keyMonth"]["region"] == "us-west-2"


def test_cloud_map_and_random_values() -> None:
    resources = [
        res("aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace", "ns"),
        res("aws:servicediscovery/service:Service", "qdrant"),
        res("random:index/randomPassword:RandomPassword", "jwt"),
    ]
    est = estimate(resources)
    assert est.unpriced == []
    assert item(est, "ns").baseline_monthly == pytest.approx(0.50)
    assert item(est, "qdrant").baseline_monthly == pytest.approx(0.10)


def test_result_is_json_with_the_agreed_keys() -> None:
    est = estimate([res("aws:kms/key:Key", "k"), res("aws:sns/topic:Topic", "t")])
    data = json.loads(json.dumps(est.to_dict()))
    assert {"currency", "baselineMonthly", "peakMonthly", "items", "unpriced", "prices", "advice"} <= set(
        data
    )
    assert data["currency"] == "USD" and data["baselineMonthly"] == 1.0
    assert data["items"][0]["peakMonthly"] == 1.0
    assert data["advice"] is None  # not asked for
    assert data["prices"]["kms.keyMonth"] == {
        "region": "us-west-2",
        "source": data["prices"]["kms.keyMonth"]["source"],
        "read": None,
    }


# --- the price table ---------------------------------------------------------------------------


def test_every_price_records_unit_source_and_date() -> None:
    prices = load_prices()
    assert prices["hoursPerMonth"] == 730
    assert {"us-west-2", "us-east-1"} <= set(prices["regions"])
    for region, table in prices["regions"].items():
        for key, entry in table.items():
            assert {"unit", "source", "read"} <= set(entry), (region, key)
            # A figure nobody read from a price list must not carry a date that says otherwise.
            recalled = entry["source"].startswith("recalled:")
            assert (entry["read"] is None) is recalled, (region, key)
            assert ("usd" in entry) != ("classes" in entry), (region, key)
    for region, fallback in prices["fallbacks"].items():
        assert fallback["from"] in prices["regions"] and fallback["from"] != region and fallback["why"]
    assert set(DEFAULT_USAGE) >= {"natGbPerMonth", "albLcu", "efsGbStored", "amiRootVolumeGb"}


def test_ec2_table_comes_from_the_maintained_source_and_covers_current_types() -> None:
    table = load_prices()["regions"]["us-east-1"]["ec2.linux.instanceHour"]
    assert table["source"].startswith("karpenter: aws/karpenter-provider-aws")
    assert table["read"] == "2026-07-20"
    classes = table["classes"]
    assert len(classes) > 1000
    assert {"t4g.nano", "t4g.small", "m7g.large", "c7i.large", "r8g.large"} <= set(classes)
    assert classes["t4g.small"] == 0.0168


def test_qdrant_on_one_graviton_instance_costs_less_than_the_fargate_singleton() -> None:
    """Issue 18: prod's estimate goes down when Qdrant moves from a 0.5 vCPU / 1 GB Fargate task
    to one t4g.small with a 30 GB root and a 20 GB gp3 data volume backed up daily."""
    fargate = estimate([td("qdrant", "512", "1024"), svc("qdrant", "qdrant", 1.0)])
    assert fargate.baseline_monthly == pytest.approx((0.5 * 0.04048 + 1 * 0.004445) * 730, abs=0.01)
    on_ec2 = estimate(
        [
            td("qdrant", "512", "1024"),
            svc("qdrant", "qdrant", 1.0, launchType="EC2"),
            LT,
            ASG,
            VOLUME,
            SELECTION,
        ]
    )
    assert on_ec2.unpriced == []
    assert on_ec2.baseline_monthly == pytest.approx(
        0.0168 * 730 + 30 * 0.08 + 20 * 0.08 + 20 * 0.05, abs=0.01
    )
    assert on_ec2.baseline_monthly < fargate.baseline_monthly


def test_a_new_stack_with_unknown_ids_is_still_priced() -> None:
    """Before the first deployment every id, ARN and generated name is unknown; none of them
    changes a price, so none may leave a resource unpriced."""
    template = res(
        "aws:ec2/launchTemplate:LaunchTemplate",
        "qdrant-lt",
        {
            **LT["props"],
            "imageId": UNKNOWN,
            "blockDeviceMappings": [
                {
                    "deviceName": "/dev/xvda",
                    "ebs": {"volumeSize": 30, "volumeType": "gp3", "encrypted": "true", "kmsKeyId": UNKNOWN},
                }
            ],
            "networkInterfaces": [{"associatePublicIpAddress": "false", "securityGroups": [UNKNOWN]}],
        },
    )
    api = svc(
        "api",
        "api",
        2.0,
        networkConfiguration={
            "subnets": [UNKNOWN, UNKNOWN],
            "securityGroups": [UNKNOWN],
            "assignPublicIp": False,
        },
    )
    qdrant = svc("qdrant", "q", 1.0, capacityProviderStrategies=[{"capacityProvider": UNKNOWN, "weight": 1}])
    del qdrant["props"]["launchType"]
    est = estimate(
        [template, ASG, VOLUME, SELECTION, td("api", "1024", "2048"), api, td("q", "512", "1024"), qdrant]
    )
    assert est.unpriced == []
    assert item(est, "api").baseline_monthly == pytest.approx(2 * X86_TASK_HOUR * H, abs=0.01)
    assert item(est, "qdrant").baseline_monthly == 0  # on the Auto Scaling group's capacity provider
    assert item(est, "qdrant-asg").baseline_monthly == pytest.approx(0.0168 * 730 + 30 * 0.08, abs=0.01)


# --- the program's own shapes ------------------------------------------------------------------


def test_the_qdrant_container_host_is_priced_whole(mocks) -> None:
    """Issue 18's host as the component registers it (instance profile, launch template, group,
    data volume, daily backups copied to a second region): nothing unpriced, the vaults keep the
    volume's snapshots and nothing else."""
    from components.backup import BackupPolicy
    from components.container_host import WwhdContainerHost, WwhdContainerHostArgs
    from tools.mocks import settle

    WwhdContainerHost(
        "qdrant-host",
        WwhdContainerHostArgs(
            cluster_name="wwhd-test",
            subnet_id="subnet-0a1b2c3d4e5f60001",
            availability_zone="us-west-2a",
            security_group_ids=["sg-0host000000000001"],
            key_arn="arn:aws:kms:us-west-2:123456789012:key/host",
            key_alias="alias/wwhd-test",
            permissions_boundary="arn:aws:iam::123456789012:policy/wwhd-workload-boundary",
            backups=BackupPolicy(
                region="us-west-2",
                key_arn="arn:aws:kms:us-west-2:123456789012:key/host",
                retention_days=30,
                copy_region="us-east-1",
            ),
        ),
    )
    settle()
    registered = [
        {
            "type": r.type,
            "name": r.name,
            "urn": r.urn,
            "inputs": r.checked_inputs or r.inputs,
            "outputs": r.outputs,
            "parent": r.parent,
            "propertyDependencies": r.property_dependencies,
        }
        for r in mocks.registrations
    ]
    est = estimate(registered)
    assert est.unpriced == []
    by_type = {}
    for i in est.items:
        by_type.setdefault(i.type.rsplit(":", 1)[-1], []).append(i.baseline_monthly)
    # t4g.small + its 30 GB gp3 root; the 20 GB gp3 data volume; its snapshots in each vault.
    assert by_type == {
        "Group": [pytest.approx(0.0168 * 730 + 30 * 0.08, abs=0.01)],
        "Volume": [pytest.approx(20 * 0.08, abs=0.01)],
        "Vault": [pytest.approx(20 * 0.05), pytest.approx(20 * 0.05)],
    }
