"""Cost model arithmetic against hand-computed figures (730 h/month, us-west-2 prices)."""

from __future__ import annotations

import json

import pytest
from wwhd_policies.cost_model import DEFAULT_USAGE, estimate, load_prices
from wwhd_policies.cost_model.model import split_spot

from .conftest import UNKNOWN

H = 730
NO_USAGE = {
    k: 0 for k in ("natGbPerMonth", "albLcu", "efsGbStored", "logIngestGbPerGroup", "logStoredGbPerGroup")
}


def td(name: str, cpu: str, mem: str, arch: str = "X86_64") -> dict:
    return {
        "type": "aws:ecs/taskDefinition:TaskDefinition",
        "name": name,
        "urn": f"urn:td:{name}",
        "props": {
            "arn": f"arn:aws:ecs:us-west-2:1:task-definition/{name}:1",
            "cpu": cpu,
            "memory": mem,
            "runtimePlatform": {"cpuArchitecture": arch, "operatingSystemFamily": "LINUX"},
        },
    }


def svc(name: str, td_name: str, desired, **extra) -> dict:
    props = {
        "name": name,
        "desiredCount": desired,
        "taskDefinition": f"arn:aws:ecs:us-west-2:1:task-definition/{td_name}:1",
    }
    return {"type": "aws:ecs/service:Service", "name": name, "urn": f"urn:svc:{name}", "props": props | extra}


def scaling(service: str, maximum: float) -> dict:
    return {
        "type": "aws:appautoscaling/target:Target",
        "name": f"{service}-target",
        "props": {"resourceId": f"service/wwhd/{service}", "maxCapacity": maximum, "minCapacity": 1.0},
    }


def item(est, name: str):
    return next(i for i in est.items if i.name == name)


def test_fargate_baseline_and_peak_split() -> None:
    est = estimate([td("api", "1024", "2048"), svc("api", "api", 2.0), scaling("api", 4.0)], usage=NO_USAGE)
    per_task_hour = 1 * 0.04048 + 2 * 0.004445
    assert item(est, "api").baseline_monthly == pytest.approx(2 * per_task_hour * H, abs=0.01)
    assert item(est, "api").peak_monthly == pytest.approx(4 * per_task_hour * H, abs=0.01)
    assert est.baseline_monthly == pytest.approx(72.08, abs=0.01)
    assert est.peak_monthly == pytest.approx(144.16, abs=0.01)


def test_arm64_and_spot_pricing() -> None:
    strategies = [
        {"capacityProvider": "FARGATE", "base": 1.0, "weight": 0.0},
        {"capacityProvider": "FARGATE_SPOT", "base": 0.0, "weight": 1.0},
    ]
    est = estimate(
        [td("w", "1024", "2048", "ARM64"), svc("w", "w", 3.0, capacityProviderStrategies=strategies)],
        usage=NO_USAGE,
    )
    arm_hour = 0.03238 + 2 * 0.00356
    # 1 on-demand task (base), 2 on Spot at 70% off.
    assert item(est, "w").baseline_monthly == pytest.approx((1 + 2 * 0.3) * arm_hour * H, abs=0.01)
    assert split_spot(
        4, [{"capacityProvider": "FARGATE", "weight": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 3}]
    ) == (
        1.0,
        3.0,
    )


def test_alb_nat_and_public_ipv4() -> None:
    resources = [
        {
            "type": "aws:lb/loadBalancer:LoadBalancer",
            "name": "alb",
            "props": {"subnets": ["a", "b"], "internal": False},
        },
        {"type": "aws:lb/loadBalancer:LoadBalancer", "name": "internal", "props": {"internal": True}},
        {
            "type": "awsx:ec2:Vpc",
            "name": "vpc",
            "inputs": {"numberOfAvailabilityZones": 2, "natGateways": {"strategy": "Single"}},
            "props": {"privateSubnetIds": ["p1", "p2"]},
        },
    ]
    est = estimate(resources, usage={"albLcu": 1, "natGbPerMonth": 100})
    assert item(est, "alb").baseline_monthly == pytest.approx(H * (0.0225 + 0.008) + 2 * 0.005 * H, abs=0.01)
    assert item(est, "internal").baseline_monthly == pytest.approx(H * (0.0225 + 0.008), abs=0.01)
    assert item(est, "vpc").baseline_monthly == pytest.approx(H * (0.045 + 0.005) + 100 * 0.045, abs=0.01)


def test_awsx_vpc_priced_from_children_when_present_never_both() -> None:
    vpc_urn = "urn:vpc"
    resources = [
        {
            "type": "awsx:ec2:Vpc",
            "name": "vpc",
            "urn": vpc_urn,
            "inputs": {"natGateways": {"strategy": "OnePerAz"}},
        },
        {"type": "aws:ec2/natGateway:NatGateway", "name": "nat-1", "parent": vpc_urn, "props": {}},
        {"type": "aws:ec2/eip:Eip", "name": "eip-1", "parent": vpc_urn, "props": {}},
        {"type": "aws:ec2/subnet:Subnet", "name": "s1", "parent": vpc_urn, "props": {}},
    ]
    est = estimate(resources, usage={"natGbPerMonth": 0})
    assert sorted(i.name for i in est.items) == ["eip-1", "nat-1"]
    assert est.baseline_monthly == pytest.approx(H * 0.045 + H * 0.005, abs=0.01)
    assert est.unpriced == []


def test_rds_multi_az() -> None:
    db = {
        "type": "aws:rds/instance:Instance",
        "name": "db",
        "props": {
            "instanceClass": "db.t4g.medium",
            "multiAz": True,
            "allocatedStorage": 20.0,
            "engine": "postgres",
        },
    }
    est = estimate([db])
    assert est.baseline_monthly == pytest.approx(2 * (0.065 * H + 20 * 0.115), abs=0.01)


def test_unpriced_types_and_unknown_values_are_listed_not_zero() -> None:
    resources = [
        {"type": "aws:elasticache/cluster:Cluster", "name": "redis", "props": {}},
        {"type": "aws:ec2/securityGroup:SecurityGroup", "name": "sg", "props": {}},
        {"type": "aws:iam/role:Role", "name": "role", "props": {}},
        td("api", "512", "1024"),
        svc("api", "api", UNKNOWN),
        {"type": "aws:rds/instance:Instance", "name": "big", "props": {"instanceClass": "db.x2g.16xlarge"}},
    ]
    est = estimate(resources)
    reasons = {u["name"]: u["reason"] for u in est.unpriced}
    assert set(reasons) == {"redis", "api", "big"}
    assert "unknown during preview" in reasons["api"]
    assert est.items == [] and est.baseline_monthly == 0


def test_unknown_region_prices_nothing() -> None:
    est = estimate([{"type": "aws:kms/key:Key", "name": "k", "props": {}}], region="eu-north-9")
    assert est.items == [] and est.unpriced[0]["reason"].startswith("no prices for region")


def test_result_is_json_with_the_agreed_keys() -> None:
    est = estimate(
        [{"type": "aws:kms/key:Key", "name": "k", "props": {}}, {"type": "aws:sns/topic:Topic", "name": "t"}]
    )
    data = json.loads(json.dumps(est.to_dict()))
    assert {"currency", "baselineMonthly", "peakMonthly", "items", "unpriced"} <= set(data)
    assert data["currency"] == "USD" and data["baselineMonthly"] == 1.0
    assert data["items"][0]["peakMonthly"] == 1.0


def test_every_price_records_unit_source_and_date() -> None:
    prices = load_prices()
    assert prices["hoursPerMonth"] == 730
    for key, entry in prices["regions"]["us-west-2"].items():
        assert {"unit", "source", "read"} <= set(entry), key
        # A figure nobody read from a price list must not carry a date that says otherwise.
        recalled = entry["source"].startswith("recalled:")
        assert (entry["read"] is None) is recalled, key
    assert set(DEFAULT_USAGE) >= {"natGbPerMonth", "albLcu", "efsGbStored", "logIngestGbPerGroup"}


def test_cloud_map_and_random_values() -> None:
    resources = [
        {"type": "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace", "name": "ns", "props": {}},
        {"type": "aws:servicediscovery/service:Service", "name": "qdrant", "props": {}},
        {"type": "random:index/randomPassword:RandomPassword", "name": "jwt", "props": {}},
    ]
    est = estimate(resources)
    assert est.unpriced == []
    assert item(est, "ns").baseline_monthly == pytest.approx(0.50)
    assert item(est, "qdrant").baseline_monthly == pytest.approx(0.10)
    assert {i.name for i in est.items} == {"ns", "qdrant"}
