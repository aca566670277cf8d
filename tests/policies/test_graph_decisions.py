"""Issue 21, item 3 and issue 19, item 2: decide from the graph, and decide the outcome a rule
protects where its letter is unknown -- over the gRPC interface, with the ids every new resource
lacks before creation (one unknown placeholder, linked only through property dependencies)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from .conftest import UNKNOWN, R

TD = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
SG = "aws:ec2/securityGroup:SecurityGroup"
ROLE = "aws:iam/role:Role"


# --- roles -------------------------------------------------------------------------------------


def _roles_task(task_role: str, execution_role: str) -> list[R]:
    return [
        R(ROLE, "task", {"arn": UNKNOWN}),
        R(ROLE, "execution", {"arn": UNKNOWN}),
        R.referencing(TD, "api", taskRoleArn=task_role, executionRoleArn=execution_role),
    ]


def test_roles_that_depend_on_the_same_role_are_the_same_role(pack) -> None:
    [violation] = pack.run("ecs-task-role-separate", _roles_task("execution", "execution"), level="mandatory")
    assert violation.name == "api" and not violation.undecided
    assert pack.run("ecs-task-role-separate", _roles_task("task", "execution"), level="mandatory") == []


def test_a_known_role_arn_outside_the_stack_is_a_different_role(pack) -> None:
    specs = [
        R(ROLE, "execution", {"arn": UNKNOWN}),
        R.referencing(
            TD,
            "api",
            {"taskRoleArn": "arn:aws:iam::123456789012:role/existing"},
            executionRoleArn="execution",
        ),
    ]
    assert pack.run("ecs-task-role-separate", specs) == []


def test_an_attached_policy_created_by_the_stack_is_judged_by_its_name(pack) -> None:
    def attach(name: str | None) -> list[R]:
        props = {"policy": "{}"} | ({"name": name} if name else {})
        return [
            R("aws:iam/policy:Policy", "custom", {**props, "arn": UNKNOWN}),
            R.referencing(
                "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                "attach",
                {"role": "r"},
                policyArn="custom",
            ),
        ]

    assert pack.run("iam-no-admin-policies", attach(None)) == []  # autonamed: never an AWS admin name
    assert pack.run("iam-no-admin-policies", attach("wwhd-api")) == []
    [violation] = pack.run("iam-no-admin-policies", attach("AdministratorAccess"))
    assert "named AdministratorAccess" in violation.text


# --- subnets through the graph ----------------------------------------------------------------


def _network(public: bool) -> list[R]:
    """New subnets, route tables and gateways: every id unknown, linked through dependencies."""
    return [
        R("aws:ec2/vpc:Vpc", "vpc", {"id": UNKNOWN}),
        R("aws:ec2/internetGateway:InternetGateway", "igw", {"id": UNKNOWN}),
        R("aws:ec2/natGateway:NatGateway", "nat", {"id": UNKNOWN}),
        R.referencing("aws:ec2/subnet:Subnet", "subnet", {"id": UNKNOWN}, vpcId="vpc"),
        R(
            "aws:ec2/routeTable:RouteTable",
            "table",
            {
                "id": UNKNOWN,
                "routes": [{"cidrBlock": "0.0.0.0/0", "gatewayId" if public else "natGatewayId": UNKNOWN}],
            },
            prop_deps={"routes": ["igw" if public else "nat"]},
        ),
        R.referencing(
            "aws:ec2/routeTableAssociation:RouteTableAssociation",
            "assoc",
            subnetId="subnet",
            routeTableId="table",
        ),
    ]


def _service(subnet_deps: list[str], public_ip: bool = False, groups: Sequence[str] = ()) -> R:
    return R(
        SERVICE,
        "api",
        {
            "networkConfiguration": {
                "subnets": [UNKNOWN],
                "securityGroups": [UNKNOWN] * len(groups),
                "assignPublicIp": public_ip,
            }
        },
        prop_deps={"networkConfiguration": [*subnet_deps, *groups]},
    )


def _mount_target(subnet_deps: list[str], groups: Sequence[str] = ()) -> R:
    return R(
        "aws:efs/mountTarget:MountTarget",
        "mt",
        {"subnetId": UNKNOWN, "securityGroups": [UNKNOWN] * len(groups)},
        prop_deps={"subnetId": subnet_deps, "securityGroups": list(groups)},
    )


@pytest.mark.parametrize(
    ("policy", "owner"),
    [("ecs-service-private-networking", _service), ("efs-mount-target-private", _mount_target)],
)
def test_subnets_that_depend_on_subnets_reaching_an_internet_gateway_are_public(pack, policy, owner) -> None:
    [violation] = pack.run(policy, [*_network(public=True), owner(["subnet"])])
    assert (
        not violation.undecided and "public subnet" in violation.text and "internet gateway" in violation.text
    )
    assert pack.run(policy, [*_network(public=False), owner(["subnet"])]) == []


# --- the outcome where the letter is unknown: a brand-new awsx Vpc ------------------------------

AWSX = R(
    "awsx:ec2:Vpc",
    "vpc",
    {
        "vpcId": UNKNOWN,
        "privateSubnetIds": UNKNOWN,
        "publicSubnetIds": UNKNOWN,
        "natGateways": {"strategy": "Single"},
    },
)


def _closed_groups() -> list[R]:
    """The task group admits the load balancer's group only, by inline rule and by rule resource."""
    return [
        R(SG, "lb-sg", {"id": UNKNOWN}),
        R(
            SG,
            "task-sg",
            {
                "id": UNKNOWN,
                "ingress": [
                    {"protocol": "tcp", "fromPort": 8000, "toPort": 8000, "securityGroups": [UNKNOWN]}
                ],
            },
            prop_deps={"ingress": ["lb-sg"]},
        ),
        R.referencing(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "task-from-lb",
            {"ipProtocol": "tcp", "fromPort": 8000, "toPort": 8000},
            securityGroupId="task-sg",
            referencedSecurityGroupId="lb-sg",
        ),
    ]


def _open_rule() -> R:
    return R.referencing(
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "task-open",
        {"ipProtocol": "tcp", "fromPort": 8000, "toPort": 8000, "cidrIpv4": "0.0.0.0/0"},
        securityGroupId="task-sg",
    )


@pytest.mark.parametrize(
    ("policy", "owner"),
    [("ecs-service-private-networking", _service), ("efs-mount-target-private", _mount_target)],
)
def test_no_public_ip_and_closed_groups_are_private_enough_whatever_the_subnet(pack, policy, owner) -> None:
    assert pack.run(policy, [AWSX, *_closed_groups(), owner(["vpc"], groups=["task-sg"])]) == []


@pytest.mark.parametrize(
    ("policy", "owner"),
    [("ecs-service-private-networking", _service), ("efs-mount-target-private", _mount_target)],
)
def test_a_group_open_to_the_internet_leaves_an_unknown_subnet_undecided(pack, policy, owner) -> None:
    [undecided] = pack.run(
        policy, [AWSX, *_closed_groups(), _open_rule(), owner(["vpc"], groups=["task-sg"])]
    )
    assert undecided.undecided and undecided.level == "mandatory"
    assert "awsx Vpc 'vpc'" in undecided.text
    assert (
        "SecurityGroupIngressRule 'task-open' admits internet traffic into SecurityGroup 'task-sg'"
        in undecided.text
    )


def test_a_public_ip_is_a_violation_whatever_the_subnet(pack) -> None:
    found = pack.run(
        "ecs-service-private-networking",
        [AWSX, *_closed_groups(), _service(["vpc"], public_ip=True, groups=["task-sg"])],
    )
    assert [f.text for f in found] == ["Service 'api' assigns public IPs to its tasks."]


def test_the_vpcs_default_group_is_unverifiable_unless_the_stack_manages_it(pack) -> None:
    [undecided] = pack.run("ecs-service-private-networking", [AWSX, _service(["vpc"])])
    assert "default security group, which this stack does not manage" in undecided.text
    default = R(
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "default", {"vpcId": UNKNOWN, "ingress": []}
    )
    assert pack.run("ecs-service-private-networking", [AWSX, default, _service(["vpc"])]) == []


def test_an_awsx_vpc_whose_subnets_are_all_private_decides_by_the_letter(pack) -> None:
    """Under the engine an awsx Vpc has its subnets as descendants: all private decides."""
    children = [
        R("aws:ec2/vpc:Vpc", "vpc-vpc", {"id": UNKNOWN}, parent="vpc"),
        R(
            "aws:ec2/subnet:Subnet",
            "vpc-private-1",
            {"id": UNKNOWN, "vpcId": UNKNOWN},
            parent="vpc-vpc",
            prop_deps={"vpcId": ["vpc-vpc"]},
        ),
    ]
    open_group = R(
        SG,
        "open",
        {
            "id": UNKNOWN,
            "ingress": [{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}],
        },
    )
    # Even with an open group: every subnet the service can land in is private (only the local route).
    assert (
        pack.run(
            "ecs-service-private-networking",
            [AWSX, *children, open_group, _service(["vpc"], groups=["open"])],
        )
        == []
    )


def test_a_route_to_a_new_nat_gateway_is_not_an_internet_gateway(pack) -> None:
    specs = [
        R("aws:ec2/natGateway:NatGateway", "nat", {"id": UNKNOWN}),
        R("aws:ec2/subnet:Subnet", "subnet", {"id": "subnet-1"}),
        R("aws:ec2/routeTable:RouteTable", "table", {"id": UNKNOWN}),
        R.referencing("aws:ec2/route:Route", "egress", routeTableId="table", gatewayId="nat"),
        R.referencing(
            "aws:ec2/routeTableAssociation:RouteTableAssociation",
            "assoc",
            {"subnetId": "subnet-1"},
            routeTableId="table",
        ),
        R("aws:efs/mountTarget:MountTarget", "mt", {"subnetId": "subnet-1"}),
    ]
    assert pack.run("efs-mount-target-private", specs) == []


def test_a_flow_log_on_a_new_vpc_is_matched_through_the_graph(pack) -> None:
    specs = [
        R("aws:ec2/vpc:Vpc", "vpc", {"id": UNKNOWN}),
        R.referencing("aws:ec2/flowLog:FlowLog", "flow", vpcId="vpc"),
    ]
    assert pack.run("vpc-flow-logs-enabled", specs) == []
    other = R("aws:ec2/vpc:Vpc", "other", {"id": UNKNOWN})
    [violation] = pack.run("vpc-flow-logs-enabled", [*specs, other])
    assert violation.name == "other" and not violation.undecided


@pytest.mark.parametrize(
    ("policy", "owner"),
    [("ecs-service-private-networking", _service), ("efs-mount-target-private", _mount_target)],
)
def test_an_awsx_vpc_that_declares_no_public_subnet_places_privately(pack, policy, owner) -> None:
    """Seen without its children, an awsx Vpc's subnetSpecs say what it creates: with no Public
    spec, whatever subnet the owner lands in is private, even behind an open group. A Public spec,
    or no specs (awsx's default makes public subnets), leaves it undecided."""

    def vpc(specs: object) -> R:
        return R(
            "awsx:ec2:Vpc", "vpc", {"vpcId": UNKNOWN, "isolatedSubnetIds": UNKNOWN, "subnetSpecs": specs}
        )

    isolated = [{"type": "Isolated", "name": "a"}, {"type": "Private", "name": "b"}]
    rest = [*_closed_groups(), _open_rule(), owner(["vpc"], groups=["task-sg"])]
    assert pack.run(policy, [vpc(isolated), *rest]) == []
    for specs in ([*isolated, {"type": "Public"}], UNKNOWN, [{"type": UNKNOWN}]):
        [undecided] = pack.run(policy, [vpc(specs), *rest])
        assert undecided.undecided and "awsx Vpc 'vpc'" in undecided.text, specs
