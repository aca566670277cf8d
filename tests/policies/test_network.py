"""Private networking policies."""

from __future__ import annotations

import pytest
from wwhd_policies import network as net

from .conftest import UNKNOWN, R, check_resource, check_stack

VPC = R(
    "awsx:ec2:Vpc",
    "vpc",
    {
        "vpcId": "vpc-1",
        "privateSubnetIds": ["subnet-priv-a", "subnet-priv-b"],
        "publicSubnetIds": ["subnet-pub-a"],
    },
)


def _service(subnets, public_ip=False) -> R:
    return R(
        "aws:ecs/service:Service",
        "api",
        {"name": "api", "networkConfiguration": {"subnets": subnets, "assignPublicIp": public_ip}},
    )


def test_ecs_service_in_awsx_private_subnets_passes() -> None:
    assert (
        check_stack(net.ecs_service_private_networking, [VPC, _service(["subnet-priv-a", "subnet-priv-b"])])
        == []
    )


def test_ecs_service_public_ip_or_public_subnet_violates() -> None:
    found = check_stack(net.ecs_service_private_networking, [VPC, _service(["subnet-pub-a"], public_ip=True)])
    assert len(found) == 2
    assert all(u and u.endswith("::api") for _, u in found)


def test_ecs_service_subnet_outside_stack_is_unverifiable_not_passed() -> None:
    """The subnet cannot be verified, and neither can the VPC's default group it uses."""
    [(message, urn)] = check_stack(net.ecs_service_private_networking, [VPC, _service(["subnet-0abc"])])
    assert message.startswith(
        "undecided [networkConfiguration.subnets]: Service 'api': subnet subnet-0abc is not"
    )
    assert "default security group" in message and urn and urn.endswith("::api")


def test_subnet_privacy_from_route_tables() -> None:
    stack = [
        R("aws:ec2/subnet:Subnet", "s-pub", {"id": "subnet-1"}),
        R("aws:ec2/subnet:Subnet", "s-priv", {"id": "subnet-2"}),
        R(
            "aws:ec2/routeTable:RouteTable",
            "rt-pub",
            {"id": "rtb-1", "routes": [{"cidrBlock": "0.0.0.0/0", "gatewayId": "igw-1"}]},
        ),
        R("aws:ec2/routeTable:RouteTable", "rt-priv", {"id": "rtb-2"}),
        R(
            "aws:ec2/route:Route",
            "r-nat",
            {"routeTableId": "rtb-2", "natGatewayId": "nat-1", "destinationCidrBlock": "0.0.0.0/0"},
        ),
        R(
            "aws:ec2/routeTableAssociation:RouteTableAssociation",
            "a1",
            {"subnetId": "subnet-1", "routeTableId": "rtb-1"},
        ),
        R(
            "aws:ec2/routeTableAssociation:RouteTableAssociation",
            "a2",
            {"subnetId": "subnet-2", "routeTableId": "rtb-2"},
        ),
        R("aws:efs/mountTarget:MountTarget", "mt-ok", {"subnetId": "subnet-2"}),
    ]
    assert check_stack(net.efs_mount_target_private, stack) == []
    stack.append(R("aws:efs/mountTarget:MountTarget", "mt-bad", {"subnetId": "subnet-1"}))
    found = check_stack(net.efs_mount_target_private, stack)
    assert len(found) == 1 and "internet gateway" in found[0][0]


def _new_route_tables(public_gateway: str) -> list[R]:
    """Known subnets (adopted), new route tables and routes: every id of the new resources is
    the same unknown placeholder during preview, linked only through property dependencies."""
    rtb, assoc, route = (
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:ec2/route:Route",
    )
    return [
        R("aws:ec2/internetGateway:InternetGateway", "igw", {"id": UNKNOWN}),
        R("aws:ec2/subnet:Subnet", "s-pub", {"id": "subnet-1"}),
        R("aws:ec2/subnet:Subnet", "s-priv", {"id": "subnet-2"}),
        R(rtb, "rt-pub", {"id": UNKNOWN}),
        R(rtb, "rt-priv", {"id": UNKNOWN}),
        R(
            route,
            "r-igw",
            {"routeTableId": UNKNOWN, "gatewayId": public_gateway, "destinationCidrBlock": "0.0.0.0/0"},
            prop_deps={"routeTableId": ["rt-pub"], "gatewayId": ["igw"] if public_gateway == UNKNOWN else []},
        ),
        R.referencing(
            route,
            "r-nat",
            {"natGatewayId": UNKNOWN, "destinationCidrBlock": "0.0.0.0/0"},
            routeTableId="rt-priv",
        ),
        R.referencing(assoc, "a1", {"subnetId": "subnet-1"}, routeTableId="rt-pub"),
        R.referencing(assoc, "a2", {"subnetId": "subnet-2"}, routeTableId="rt-priv"),
    ]


@pytest.mark.parametrize("public_gateway", ["igw-1", UNKNOWN])
def test_unknown_route_table_ids_do_not_mix_tables(public_gateway: str) -> None:
    """The private table's routes are its own, not every route whose table id is unknown; a
    route to a new internet gateway is recognised through its dependency."""
    stack = _new_route_tables(public_gateway)
    ok = R("aws:efs/mountTarget:MountTarget", "mt-ok", {"subnetId": "subnet-2"})
    assert check_stack(net.efs_mount_target_private, [*stack, ok]) == []
    bad = R("aws:efs/mountTarget:MountTarget", "mt-bad", {"subnetId": "subnet-1"})
    found = check_stack(net.efs_mount_target_private, [*stack, bad])
    assert len(found) == 1 and "internet gateway" in found[0][0]


def test_efs_mount_target_unknown_subnet_is_undecided() -> None:
    [(message, _)] = check_stack(
        net.efs_mount_target_private,
        [VPC, R("aws:efs/mountTarget:MountTarget", "mt", {"subnetId": UNKNOWN})],
    )
    assert message.startswith("undecided [subnetId]: MountTarget 'mt': ")


SG = "aws:ec2/securityGroup:SecurityGroup"
LB = "aws:lb/loadBalancer:LoadBalancer"
OPEN_443 = {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}


def test_public_ingress_allowed_on_lb_group_ports() -> None:
    stack = [
        R(SG, "alb-sg", {"id": "sg-alb", "ingress": [OPEN_443, {**OPEN_443, "fromPort": 80, "toPort": 80}]}),
        R(LB, "alb", {"securityGroups": ["sg-alb"]}),
        R(
            SG,
            "task-sg",
            {
                "id": "sg-task",
                "ingress": [
                    {"protocol": "tcp", "fromPort": 8000, "toPort": 8000, "securityGroups": ["sg-alb"]}
                ],
            },
        ),
    ]
    assert check_stack(net.security_group_no_public_ingress, stack) == []


def test_public_ingress_on_non_lb_group_or_other_port_violates() -> None:
    stack = [
        R(SG, "alb-sg", {"id": "sg-alb"}),
        R(LB, "alb", {"securityGroups": ["sg-alb"]}),
        R(SG, "task-sg", {"id": "sg-task"}),
        # Written three ways: the separate rule resources of pulumi-aws 7 too.
        R(
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            "ssh",
            {
                "type": "ingress",
                "securityGroupId": "sg-alb",
                "protocol": "tcp",
                "fromPort": 22,
                "toPort": 22,
                "cidrBlocks": ["0.0.0.0/0"],
            },
        ),
        R(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "task-443",
            {
                "securityGroupId": "sg-task",
                "ipProtocol": "tcp",
                "fromPort": 443,
                "toPort": 443,
                "cidrIpv6": "::/0",
            },
        ),
        R(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "all",
            {"securityGroupId": "sg-alb", "ipProtocol": "-1", "cidrIpv4": "0.0.0.0/0"},
        ),
    ]
    found = check_stack(net.security_group_no_public_ingress, stack)
    assert sorted(u.rsplit("::", 1)[1] for _, u in found if u) == ["all", "ssh", "task-443"]


def test_public_ingress_lb_group_resolved_through_graph_when_id_unknown() -> None:
    stack = [
        R(SG, "alb-sg", {"id": UNKNOWN}),
        R(LB, "alb", {"securityGroups": [UNKNOWN]}, prop_deps={"securityGroups": ["alb-sg"]}),
        R.referencing(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "https",
            {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "0.0.0.0/0"},
            securityGroupId="alb-sg",
        ),
    ]
    assert check_stack(net.security_group_no_public_ingress, stack) == []


def test_public_ingress_allowed_ports_configurable() -> None:
    stack = [
        R(SG, "alb-sg", {"id": "sg-alb", "ingress": [OPEN_443]}),
        R(LB, "alb", {"securityGroups": ["sg-alb"]}),
    ]
    assert check_stack(net.security_group_no_public_ingress, stack, {"allowedPorts": [80]})


def test_rds_not_public() -> None:
    rds = "aws:rds/instance:Instance"
    assert check_resource(net.rds_not_public, rds, {"publiclyAccessible": False}) == []
    assert check_resource(net.rds_not_public, rds, {"publiclyAccessible": True})
    [message] = check_resource(net.rds_not_public, rds, {"publiclyAccessible": UNKNOWN})
    assert message.startswith("undecided [publiclyAccessible]: ")


def test_vpc_flow_logs_enabled() -> None:
    flow = R("aws:ec2/flowLog:FlowLog", "flow", {"vpcId": "vpc-1", "trafficType": "ALL"})
    assert check_stack(net.vpc_flow_logs_enabled, [VPC, flow]) == []
    assert check_stack(net.vpc_flow_logs_enabled, [VPC])


def test_alb_drop_invalid_headers() -> None:
    assert check_resource(net.alb_drop_invalid_headers, LB, {"dropInvalidHeaderFields": True}) == []
    assert check_resource(net.alb_drop_invalid_headers, LB, {"internal": False})
