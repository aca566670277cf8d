"""Cost levers, the cost of a change, and the price table builder.

Savings are written out from the unit prices (see test_cost_model), never read back from the
model; the model's rounding of each item to cents allows a cent or two of difference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wwhd_policies.cost_model import advise, compare, estimate, load_prices
from wwhd_policies.cost_model.advice import one_class_down, one_fargate_step_down
from wwhd_policies.cost_model.build_prices import dump_prices, main, parse_karpenter, parse_offer
from wwhd_policies.cost_model.model import PRICES_FILE

from .test_cost_model import X86_TASK_HOUR, res, scaling, svc, td

H = 730
ARM_TASK_HOUR = 1 * 0.03238 + 2 * 0.00356
CENTS = 0.02

API = [td("api", "1024", "2048"), svc("api", "api", 2.0), scaling("api", 4.0)]
VPC = res(
    "awsx:ec2:Vpc",
    "vpc",
    {"privateSubnetIds": ["a", "b"]},
    inputs={"numberOfAvailabilityZones": 2, "natGateways": {"strategy": "OnePerAz"}},
)
DB = res(
    "aws:rds/instance:Instance",
    "db",
    {"instanceClass": "db.t4g.medium", "multiAz": True, "allocatedStorage": 20.0, "engine": "postgres"},
)
ENDPOINT = res(
    "aws:ec2/vpcEndpoint:VpcEndpoint", "ecr", {"vpcEndpointType": "Interface", "subnetIds": ["a", "b"]}
)


def levers(resources, **kw):
    return {lever.id: lever for lever in advise(resources, **kw)}


def test_fargate_levers_graviton_spot_and_right_sizing() -> None:
    found = levers(API)
    graviton = found["graviton"]
    assert graviton.baseline_saving_monthly == pytest.approx(
        2 * (X86_TASK_HOUR - ARM_TASK_HOUR) * H, abs=CENTS
    )
    assert graviton.peak_saving_monthly == pytest.approx(4 * (X86_TASK_HOUR - ARM_TASK_HOUR) * H, abs=CENTS)
    spot = found["fargate-spot"]
    # One task stays on-demand; the others run on Spot at 70% off.
    assert spot.baseline_saving_monthly == pytest.approx(1 * 0.70 * X86_TASK_HOUR * H, abs=CENTS)
    assert spot.peak_saving_monthly == pytest.approx(3 * 0.70 * X86_TASK_HOUR * H, abs=CENTS)
    smaller = found["right-size"]
    half_task_hour = 0.5 * 0.04048 + 1 * 0.004445
    assert smaller.baseline_saving_monthly == pytest.approx(
        2 * (X86_TASK_HOUR - half_task_hour) * H, abs=CENTS
    )
    # The saving shows on the service's item; the lever says so and what the item becomes.
    assert graviton.resources == [
        {
            "urn": "urn:api",
            "name": "api",
            "baselineSaving": graviton.baseline_saving_monthly,
            "peakSaving": graviton.peak_saving_monthly,
            "after": "2 task(s) baseline, 4 at peak; 1 vCPU/2 GB arm64 = $0.03950/task-hour",
        }
    ]
    assert "0.5 vCPU/1 GB" in smaller.resources[0]["after"]


def test_nat_levers_single_gateway_and_nat_instances() -> None:
    found = levers([VPC], usage={"natGbPerMonth": 20})
    # The GB processed stay the same; one gateway and its elastic IP go.
    assert found["single-nat"].baseline_saving_monthly == pytest.approx(1 * (0.045 + 0.005) * H, abs=CENTS)
    gateways = 2 * (0.045 + 0.005) * H + 20 * 0.045
    instances = 2 * (0.0042 * H + 8 * 0.08 + 0.005 * H)  # t4g.nano + 8 GB gp3 + its elastic IP
    assert found["nat-instance"].baseline_saving_monthly == pytest.approx(gateways - instances, abs=CENTS)
    assert "egress" in found["single-nat"].trade_off


def test_explicit_nat_gateways_keep_one_and_drop_the_others_eips() -> None:
    resources = [
        res("aws:ec2/eip:Eip", "eip-a", {"id": "eipalloc-a"}),
        res("aws:ec2/eip:Eip", "eip-b", {"id": "eipalloc-b"}),
        res("aws:ec2/natGateway:NatGateway", "nat-a", {"allocationId": "eipalloc-a"}),
        res("aws:ec2/natGateway:NatGateway", "nat-b", {"allocationId": "eipalloc-b"}),
    ]
    found = levers(resources, usage={"natGbPerMonth": 0})
    assert found["single-nat"].baseline_saving_monthly == pytest.approx((0.045 + 0.005) * H, abs=CENTS)


def test_rds_levers_single_az_and_one_class_down() -> None:
    found = levers([DB])
    assert found["rds-single-az"].baseline_saving_monthly == pytest.approx(0.065 * H + 20 * 0.115, abs=CENTS)
    # Multi-AZ bills both instances: the step down saves twice the hourly difference.
    assert found["rds-smaller"].baseline_saving_monthly == pytest.approx(2 * (0.065 - 0.032) * H, abs=CENTS)


def test_a_change_the_model_cannot_price_is_left_out_of_the_lever() -> None:
    tiny = res("aws:rds/instance:Instance", "tiny", {**DB["props"], "instanceClass": "db.t4g.micro"})
    # db.t4g.nano is not in the price table: no made-up saving, and no lever for it alone.
    assert "rds-smaller" not in levers([tiny])
    lever = levers([tiny, DB])["rds-smaller"]
    assert [r["name"] for r in lever.resources] == ["db"]
    assert lever.baseline_saving_monthly == pytest.approx(2 * (0.065 - 0.032) * H, abs=CENTS)


def test_one_lever_per_kind_with_each_resources_share() -> None:
    other = [td("w", "2048", "4096"), svc("w", "w", 1.0)]
    lever = levers([*API, *other])["graviton"]
    shares = {r["name"]: r["baselineSaving"] for r in lever.resources}
    per_vcpu_gb = (0.04048 - 0.03238, 0.004445 - 0.00356)
    assert shares["api"] == pytest.approx(2 * (1 * per_vcpu_gb[0] + 2 * per_vcpu_gb[1]) * H, abs=CENTS)
    assert shares["w"] == pytest.approx(1 * (2 * per_vcpu_gb[0] + 4 * per_vcpu_gb[1]) * H, abs=CENTS)
    assert lever.baseline_saving_monthly == pytest.approx(sum(shares.values()), abs=CENTS)


def test_interface_endpoints_in_one_az() -> None:
    found = levers([ENDPOINT])
    assert found["endpoints-one-az"].baseline_saving_monthly == pytest.approx(1 * 0.01 * H, abs=CENTS)


def test_levers_are_sorted_by_saving_and_in_the_estimate_json() -> None:
    est = estimate([*API, VPC, DB, ENDPOINT], advice=True)
    assert est.advice is not None
    savings = [lever.baseline_saving_monthly for lever in est.advice]
    assert savings == sorted(savings, reverse=True) and len(savings) == 8
    data = json.loads(json.dumps(est.to_dict()))
    first = data["advice"][0]
    assert set(first) == {
        "id",
        "title",
        "baselineSavingMonthly",
        "peakSavingMonthly",
        "resources",
        "tradeOff",
    }
    assert first["baselineSavingMonthly"] == savings[0]


def test_step_helpers() -> None:
    assert one_fargate_step_down(2048, 4096) == (1024, 2048)
    assert one_fargate_step_down(512, 1024) == (256, 512)
    assert one_fargate_step_down(256, 512) is None
    assert one_class_down("db.m7g.2xlarge") == "db.m7g.xlarge"
    assert one_class_down("db.t4g.nano") is None


# --- the cost of a change --------------------------------------------------------------------


def test_compare_reports_changed_added_removed_and_totals() -> None:
    before = estimate([*API, res("aws:secretsmanager/secret:Secret", "old")]).to_dict()
    after = estimate(
        [
            td("api", "1024", "2048"),
            svc("api", "api", 3.0),
            scaling("api", 4.0),
            res("aws:kms/key:Key", "key"),
        ]
    ).to_dict()
    diff = compare({"cost": before}, after)  # a preview's whole --json document works too
    rows = {c["name"]: c for c in diff["changes"]}
    assert rows["api"]["status"] == "changed"
    assert rows["api"]["baselineDelta"] == pytest.approx(1 * X86_TASK_HOUR * H, abs=CENTS)
    assert rows["api"]["peakDelta"] == 0
    assert rows["key"]["status"] == "added" and rows["key"]["baselineDelta"] == 1.0
    assert rows["old"]["status"] == "removed" and rows["old"]["baselineDelta"] == -0.40
    assert diff["baselineDelta"] == pytest.approx(X86_TASK_HOUR * H + 1.0 - 0.40, abs=CENTS)
    assert diff["changes"][0]["name"] == "api"  # biggest change first
    assert diff["notes"] == []


def test_compare_lists_resources_that_became_unpriced() -> None:
    before = estimate([res("aws:kms/key:Key", "key")]).to_dict()
    after = estimate([res("aws:kms/key:Key", "key"), res("aws:sqs/queue:Queue", "queue")]).to_dict()
    diff = compare(before, after)
    assert diff["changes"] == [] and diff["baselineDelta"] == 0
    assert [u["name"] for u in diff["unpricedAdded"]] == ["queue"]
    assert "unpriced" in diff["notes"][0]


# --- the price table builder -----------------------------------------------------------------

KARPENTER = """// generated at 2026-01-02T03:04:05Z for us-east-1
var InitialOnDemandPricesAWS = map[string]map[ec2types.InstanceType]float64{
\t// us-east-1
\t"us-east-1": {
\t\t// t4g family
\t\t"t4g.nano": 0.004200, "t4g.small": 0.016800,
\t},
\t"us-west-2": {
\t\t"m7g.large": 0.081600,
\t},
}
"""


def _product(sku: str, family: str, **attributes: str) -> dict:
    return {"sku": sku, "productFamily": family, "attributes": attributes}


def _db_instance(sku: str, instance: str, engine: str, deployment: str, license_model: str) -> dict:
    return _product(
        sku,
        "Database Instance",
        regionCode="us-west-2",
        instanceType=instance,
        databaseEngine=engine,
        deploymentOption=deployment,
        licenseModel=license_model,
    )


def _hourly(usd: str) -> dict:
    return {"t": {"priceDimensions": {"d": {"unit": "Hrs", "pricePerUnit": {"USD": usd}}}}}


def test_parse_karpenter_table() -> None:
    stamp, regions = parse_karpenter(KARPENTER)
    assert stamp == "2026-01-02T03:04:05Z"
    assert regions == {
        "us-east-1": {"t4g.nano": 0.0042, "t4g.small": 0.0168},
        "us-west-2": {"m7g.large": 0.0816},
    }


def test_parse_offer_files_keeps_linux_shared_and_license_included_rates() -> None:
    rds = {
        "offerCode": "AmazonRDS",
        "products": {
            "A": _db_instance("A", "db.t4g.medium", "PostgreSQL", "Single-AZ", "No license required"),
            "B": _db_instance("B", "db.t4g.medium", "PostgreSQL", "Multi-AZ", "No license required"),
            "C": _db_instance("C", "db.m5.large", "Oracle", "Single-AZ", "Bring your own license"),
            "D": _product("D", "Database Storage", regionCode="us-west-2"),
        },
        "terms": {
            "OnDemand": {"A": _hourly("0.065"), "B": _hourly("0.13"), "C": _hourly("0.2"), "D": _hourly("1")}
        },
    }
    assert parse_offer(rds) == {
        "us-west-2": {
            "rds.postgres.instanceHour": {"db.t4g.medium": 0.065},
            "rds.postgres.multiAz.instanceHour": {"db.t4g.medium": 0.13},
        }
    }
    linux = {
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
    }
    ec2 = {
        "offerCode": "AmazonEC2",
        "products": {
            "L": _product("L", "Compute Instance", regionCode="us-west-2", instanceType="m7g.large", **linux),
            "W": _product(
                "W",
                "Compute Instance",
                regionCode="us-west-2",
                instanceType="m7g.large",
                **{**linux, "operatingSystem": "Windows"},
            ),
        },
        "terms": {"OnDemand": {"L": _hourly("0.0816"), "W": _hourly("0.2")}},
    }
    assert parse_offer(ec2) == {"us-west-2": {"ec2.linux.instanceHour": {"m7g.large": 0.0816}}}
    cache = {
        "offerCode": "AmazonElastiCache",
        "products": {
            "R": _product(
                "R",
                "Cache Instance",
                regionCode="us-east-1",
                instanceType="cache.t4g.micro",
                cacheEngine="Redis",
            )
        },
        "terms": {"OnDemand": {"R": _hourly("0.016")}},
    }
    assert parse_offer(cache) == {"us-east-1": {"elasticache.redis.nodeHour": {"cache.t4g.micro": 0.016}}}


def test_builder_rewrites_only_the_regions_of_the_file(tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"currency": "USD", "regions": {"us-west-2": {}}}))
    source = tmp_path / "pricing.go"
    source.write_text(KARPENTER)
    assert main(["--karpenter", str(source), "--karpenter-version", "v9.9.9", "--prices", str(prices)]) == 0
    written = json.loads(prices.read_text())
    table = written["regions"]["us-west-2"]["ec2.linux.instanceHour"]
    assert table["classes"] == {"m7g.large": 0.0816}
    assert (
        table["read"] == "2026-01-02"
        and "v9.9.9" in table["source"]
        and "2026-01-02T03:04:05Z" in table["source"]
    )
    assert "us-east-1" not in written["regions"]


def test_committed_table_is_in_the_builders_format() -> None:
    text = PRICES_FILE.read_text()
    assert dump_prices(json.loads(text)) == text
    assert json.loads(dump_prices(load_prices())) == load_prices()
