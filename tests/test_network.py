"""WwhdNetwork: the VPC in both modes, and who can reach which port (read from the rules)."""

from __future__ import annotations

import pytest

from components.network import WwhdNetwork, WwhdNetworkArgs
from stack_config import ExistingVpc, NetworkConfig
from tests.support import EGRESS, INGRESS, SECURITY_GROUP
from tools.mocks import RecordingMonitor, resolve, settle

KEY = "arn:aws:kms:us-west-2:123456789012:key/test"


def build(monitor: RecordingMonitor, config: NetworkConfig | None = None, **kwargs) -> WwhdNetwork:
    net = WwhdNetwork(
        "t", WwhdNetworkArgs(config=config or NetworkConfig(), region="us-west-2", key_arn=KEY, **kwargs)
    )
    settle()
    return net


def rules(monitor: RecordingMonitor, typ: str) -> set[tuple[str, int, str]]:
    """(group, port, peer) for every rule; group and peer by role name (``api``, ``lb``)."""
    role = {g.id: g.name.removeprefix("t-") for g in monitor.of_type(SECURITY_GROUP)}
    found = set()
    for r in monitor.of_type(typ):
        i = r.inputs
        assert i["fromPort"] == i["toPort"], "rules open single ports only"
        assert i["ipProtocol"] == "tcp"
        assert i.get("description"), f"{r.name} has no description"
        peer = role.get(i.get("referencedSecurityGroupId", "")) or i.get("cidrIpv4") or i.get("cidrIpv6")
        found.add((role[i["securityGroupId"]], int(i["fromPort"]), peer))
    return found


def test_new_vpc_uses_awsx_with_config(mocks: RecordingMonitor) -> None:
    net = build(mocks, NetworkConfig(availability_zones=3, nat_gateways="one-per-az"))
    vpc = mocks.one("awsx:ec2:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.0.0.0/16"
    assert vpc.inputs["numberOfAvailabilityZones"] == 3
    assert vpc.inputs["natGateways"] == {"strategy": "OnePerAz"}
    assert vpc.inputs["enableDnsHostnames"] is True
    assert {s["type"] for s in vpc.inputs["subnetSpecs"]} == {"Public", "Private"}
    assert resolve(net.private_subnet_ids) == vpc.outputs["privateSubnetIds"]
    assert resolve(net.vpc_id) == vpc.outputs["vpcId"]


def test_single_nat_by_default(mocks: RecordingMonitor) -> None:
    build(mocks)
    assert mocks.one("awsx:ec2:Vpc").inputs["natGateways"] == {"strategy": "Single"}


def test_existing_vpc_is_adopted_not_created(mocks: RecordingMonitor) -> None:
    existing = ExistingVpc(
        vpc_id="vpc-7b44bd03",
        public_subnet_ids=["subnet-677d281e", "subnet-5498bc0e"],
        private_subnet_ids=["subnet-18ddaa53", "subnet-18ddaa54"],
    )
    net = build(mocks, NetworkConfig(existing_vpc=existing))
    assert mocks.of_type("awsx:ec2:Vpc") == []
    assert mocks.of_type("aws:ec2/vpc:Vpc") == []
    assert resolve(net.vpc_id) == "vpc-7b44bd03"
    assert resolve(net.private_subnet_ids) == ["subnet-18ddaa53", "subnet-18ddaa54"]
    assert {g.inputs["vpcId"] for g in mocks.of_type(SECURITY_GROUP)} == {"vpc-7b44bd03"}
    # Without the private route tables no gateway endpoint can be attached.
    assert mocks.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") == []


def test_existing_vpc_gets_s3_endpoint_on_given_route_tables(mocks: RecordingMonitor) -> None:
    existing = ExistingVpc(
        vpc_id="vpc-7b44bd03",
        public_subnet_ids=["subnet-677d281e", "subnet-5498bc0e"],
        private_subnet_ids=["subnet-18ddaa53", "subnet-18ddaa54"],
        private_route_table_ids=["rtb-0a1b2c3d"],
    )
    build(mocks, NetworkConfig(existing_vpc=existing))
    endpoint = mocks.one("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["routeTableIds"] == ["rtb-0a1b2c3d"]


def test_s3_gateway_endpoint(mocks: RecordingMonitor) -> None:
    build(mocks)
    endpoint = mocks.one("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["serviceName"] == "com.amazonaws.us-west-2.s3"
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"


def test_reachability_sqlite_sidecar(mocks: RecordingMonitor) -> None:
    """Dev topology: internet -> lb (80/443) -> api (8000) -> efs (2049); nothing else."""
    build(mocks)
    assert rules(mocks, INGRESS) == {
        ("lb", 80, "0.0.0.0/0"),
        ("lb", 80, "::/0"),
        ("lb", 443, "0.0.0.0/0"),
        ("lb", 443, "::/0"),
        ("api", 8000, "lb"),
        ("efs", 2049, "api"),
    }
    assert rules(mocks, EGRESS) == {
        ("lb", 8000, "api"),
        ("api", 443, "0.0.0.0/0"),
        ("api", 2049, "efs"),
    }
    assert {g.name for g in mocks.of_type(SECURITY_GROUP)} == {"t-lb", "t-api", "t-efs"}


def test_reachability_postgres_and_qdrant_service(mocks: RecordingMonitor) -> None:
    build(mocks, qdrant_service=True, qdrant_efs=True, postgres=True)
    ingress = rules(mocks, INGRESS)
    assert {r for r in ingress if r[0] == "qdrant"} == {("qdrant", 6333, "api")}
    assert {r for r in ingress if r[0] == "db"} == {("db", 5432, "api")}
    assert {r for r in ingress if r[0] == "efs"} == {("efs", 2049, "api"), ("efs", 2049, "qdrant")}
    # Only the load balancer is open to the internet.
    assert {r[0] for r in ingress if r[2] in ("0.0.0.0/0", "::/0")} == {"lb"}
    egress = rules(mocks, EGRESS)
    assert ("api", 6333, "qdrant") in egress and ("api", 5432, "db") in egress
    # The database and the file system initiate nothing.
    assert not {r for r in egress if r[0] in ("db", "efs")}


def test_security_groups_have_no_inline_rules(mocks: RecordingMonitor) -> None:
    build(mocks, qdrant_service=True, qdrant_efs=True, postgres=True)
    for group in mocks.of_type(SECURITY_GROUP):
        assert "ingress" not in group.inputs and "egress" not in group.inputs, group.name
        assert group.inputs["description"]


@pytest.mark.parametrize("enabled", [True, False])
def test_flow_logs(mocks: RecordingMonitor, enabled: bool) -> None:
    build(mocks, NetworkConfig(flow_logs=enabled), flow_log_retention_days=30)
    logs = mocks.of_type("aws:ec2/flowLog:FlowLog")
    if not enabled:
        assert logs == [] and mocks.of_type("aws:cloudwatch/logGroup:LogGroup") == []
        return
    group = mocks.one("aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["kmsKeyId"] == KEY and group.inputs["retentionInDays"] == 30
    assert logs[0].inputs["logDestination"] == group.outputs["arn"]
    assert logs[0].inputs["trafficType"] == "ALL"


def test_children_are_parented_to_the_component(mocks: RecordingMonitor) -> None:
    build(mocks, NetworkConfig(flow_logs=True), qdrant_service=True, qdrant_efs=True, postgres=True)
    component = mocks.one("wwhd:index:WwhdNetwork")
    for r in mocks.registrations:
        if r is not component and r.type != "pulumi:pulumi:Stack":
            assert r.parent == component.urn, r.name


# --- NAT: gateways or an instance -----------------------------------------------------------------


@pytest.mark.parametrize(("strategy", "awsx_strategy"), [("single", "Single"), ("one-per-az", "OnePerAz")])
def test_gateway_strategies_build_no_nat_instance(
    mocks: RecordingMonitor, strategy: str, awsx_strategy: str
) -> None:
    net = build(mocks, NetworkConfig(nat_gateways=strategy))  # type: ignore[arg-type]
    assert mocks.one("awsx:ec2:Vpc").inputs["natGateways"] == {"strategy": awsx_strategy}
    assert (
        mocks.of_type("wwhd:index:WwhdNatInstance") == [] and mocks.of_type("aws:ec2/instance:Instance") == []
    )
    assert mocks.of_type("aws:ec2/route:Route") == [] and net.nat_instance_id is None
    assert "t-nat" not in {g.name for g in mocks.of_type(SECURITY_GROUP)}


def test_nat_instance_replaces_the_gateways(mocks: RecordingMonitor) -> None:
    build(mocks, NetworkConfig(nat_gateways="instance"))
    assert mocks.one("awsx:ec2:Vpc").inputs["natGateways"] == {"strategy": "None"}
    assert mocks.one("wwhd:index:WwhdNatInstance").parent == mocks.one("wwhd:index:WwhdNetwork").urn


def test_nat_instance_group_admits_https_from_the_vpc_range_only(mocks: RecordingMonitor) -> None:
    build(mocks, NetworkConfig(nat_gateways="instance", cidr="10.20.0.0/16"))
    assert {r for r in rules(mocks, INGRESS) if r[0] == "nat"} == {("nat", 443, "10.20.0.0/16")}
    assert {r for r in rules(mocks, EGRESS) if r[0] == "nat"} == {("nat", 443, "0.0.0.0/0")}
    nat_group = mocks.one(SECURITY_GROUP, "t-nat")
    assert mocks.one("aws:ec2/instance:Instance").inputs["vpcSecurityGroupIds"] == [nat_group.outputs["id"]]
    # The tasks' own rules are what they were: the instance opens no other path.
    assert ("api", 443, "0.0.0.0/0") in rules(mocks, EGRESS)
