"""Issue 21, item 1: every way to say the same thing is judged the same, over the gRPC interface.

Listener rules as well as default actions; every way to attach a managed policy; the Classic Load
Balancer under the HTTPS-only and logging rules; Aurora under the RDS rules; a subnet without a
route table association of its own judged through its VPC's main route table; an awsx Vpc's
isolated subnets as private as its private ones."""

from __future__ import annotations

import pytest

from .conftest import UNKNOWN, R

LB = "aws:lb/loadBalancer:LoadBalancer"
CLASSIC = "aws:elb/loadBalancer:LoadBalancer"
REDIRECT = {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
FORWARD = {"type": "forward", "targetGroupArn": "arn:tg"}


# --- listener rules --------------------------------------------------------------------------


def _port80(listener_type: str, rule_type: str, actions: list[dict], *, by_graph: bool = False) -> list[R]:
    listener = R(
        listener_type,
        "http",
        {
            "arn": UNKNOWN if by_graph else "arn:listener/http",
            "port": 80,
            "protocol": "HTTP",
            "defaultActions": [REDIRECT],
        },
    )
    rule = R(
        rule_type,
        "api-rule",
        {"listenerArn": UNKNOWN if by_graph else "arn:listener/http", "priority": 10, "actions": actions},
        prop_deps={"listenerArn": ["http"]} if by_graph else None,
    )
    return [listener, rule]


@pytest.mark.parametrize(
    ("listener_type", "rule_type"),
    [
        ("aws:lb/listener:Listener", "aws:lb/listenerRule:ListenerRule"),
        ("aws:alb/listener:Listener", "aws:alb/listenerRule:ListenerRule"),
    ],
)
@pytest.mark.parametrize("by_graph", [False, True])
def test_a_forwarding_rule_on_a_redirecting_http_listener_is_plain_http(
    pack, listener_type: str, rule_type: str, by_graph: bool
) -> None:
    found = pack.run("alb-https-only", _port80(listener_type, rule_type, [FORWARD], by_graph=by_graph))
    [violation] = found
    assert violation.level == "mandatory" and violation.name == "api-rule"
    assert "forward action" in violation.text and "port 80" in violation.text
    assert pack.run("alb-https-only", _port80(listener_type, rule_type, [REDIRECT], by_graph=by_graph)) == []


def test_a_forwarding_rule_on_an_https_listener_is_fine(pack) -> None:
    listener = R(
        "aws:lb/listener:Listener",
        "https",
        {
            "arn": "arn:listener/https",
            "port": 443,
            "protocol": "HTTPS",
            "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
        },
    )
    rule = R(
        "aws:lb/listenerRule:ListenerRule", "r", {"listenerArn": "arn:listener/https", "actions": [FORWARD]}
    )
    assert pack.run("alb-https-only", [listener, rule]) == []


def test_an_unset_listener_protocol_is_awss_http(pack) -> None:
    listener = R("aws:lb/listener:Listener", "l", {"port": 8080, "defaultActions": [FORWARD]})
    [violation] = pack.run("alb-https-only", [listener])
    assert "serves plain HTTP on port 8080" in violation.text
    # ...except on a network load balancer, which has no HTTP default.
    nlb = R(LB, "nlb", {"arn": "arn:nlb", "loadBalancerType": "network"})
    tcp = R(
        "aws:lb/listener:Listener",
        "l",
        {"port": 8080, "loadBalancerArn": "arn:nlb", "defaultActions": [FORWARD]},
    )
    assert pack.run("alb-https-only", [nlb, tcp]) == []


# --- managed policy attachments ----------------------------------------------------------------

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
ECS_EXEC = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
ATTACHMENTS = [
    ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", {"role": "r"}, "policyArn", False),
    ("aws:iam/userPolicyAttachment:UserPolicyAttachment", {"user": "u"}, "policyArn", False),
    ("aws:iam/groupPolicyAttachment:GroupPolicyAttachment", {"group": "g"}, "policyArn", False),
    (
        "aws:iam/policyAttachment:PolicyAttachment",
        {"roles": ["r"], "users": ["u"], "groups": ["g"]},
        "policyArn",
        False,
    ),
    (
        "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
        {"roleName": "r"},
        "policyArns",
        True,
    ),
    (
        "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive",
        {"userName": "u"},
        "policyArns",
        True,
    ),
    (
        "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive",
        {"groupName": "g"},
        "policyArns",
        True,
    ),
    ("aws:iam/role:Role", {"assumeRolePolicy": "{}"}, "managedPolicyArns", True),
    (
        "aws:ssoadmin/managedPolicyAttachment:ManagedPolicyAttachment",
        {"permissionSetArn": "ps"},
        "managedPolicyArn",
        False,
    ),
    (
        "aws:ssoadmin/managedPolicyAttachmentsExclusive:ManagedPolicyAttachmentsExclusive",
        {"permissionSetArn": "ps"},
        "managedPolicyArns",
        True,
    ),
]


@pytest.mark.parametrize(
    ("typ", "props", "key", "is_list"), ATTACHMENTS, ids=[a[0].rsplit(":", 1)[1] for a in ATTACHMENTS]
)
def test_every_way_to_attach_an_admin_policy_violates(
    pack, typ: str, props: dict, key: str, is_list: bool
) -> None:
    def attach(arn: str) -> list[R]:
        return [R(typ, "attach", {**props, key: [ECS_EXEC, arn] if is_list else arn})]

    [violation] = pack.run("iam-no-admin-policies", attach(ADMIN))
    assert violation.level == "mandatory" and "AdministratorAccess" in violation.text
    assert pack.run("iam-no-admin-policies", attach(ECS_EXEC)) == []


# --- the Classic Load Balancer ---------------------------------------------------------------


def _classic(*listeners: dict, **props: object) -> R:
    return R(CLASSIC, "clb", {"name": "wwhd-clb", "listeners": list(listeners), **props})


HTTPS_443 = {
    "lbPort": 443,
    "lbProtocol": "https",
    "instancePort": 8000,
    "instanceProtocol": "http",
    "sslCertificateId": "arn:c",
}


def test_a_classic_http_listener_serves_plain_http(pack) -> None:
    http = {"lbPort": 80, "lbProtocol": "http", "instancePort": 8000, "instanceProtocol": "http"}
    [violation] = pack.run("alb-https-only", [_classic(http)])
    assert "cannot redirect" in violation.text and violation.name == "clb"
    assert pack.run("alb-https-only", [_classic(http)], config={"allowPlainHttpStacks": ["prod"]}) == []


def test_a_classic_https_listener_without_a_negotiation_policy_allows_tls_10(pack) -> None:
    [violation] = pack.run("alb-https-only", [_classic(HTTPS_443)])
    assert "TLS 1.0" in violation.text and "ELBSecurityPolicy-2016-08" in violation.text


@pytest.mark.parametrize(
    ("attributes", "passes"),
    [
        ([{"name": "Reference-Security-Policy", "value": "ELBSecurityPolicy-TLS-1-2-2017-01"}], True),
        ([{"name": "Reference-Security-Policy", "value": "ELBSecurityPolicy-2016-08"}], False),
        ([{"name": "Protocol-TLSv1.2", "value": "true"}, {"name": "Protocol-TLSv1", "value": "false"}], True),
        ([{"name": "Protocol-TLSv1.2", "value": "true"}, {"name": "Protocol-TLSv1", "value": "true"}], False),
    ],
)
def test_classic_tls_from_its_negotiation_policy(pack, attributes: list[dict], passes: bool) -> None:
    # aws.elb.SslNegotiationPolicy, naming the load balancer by an output unknown before creation.
    negotiation = R.referencing(
        "aws:elb/sslNegotiationPolicy:SslNegotiationPolicy",
        "tls",
        {"lbPort": 443, "attributes": attributes},
        loadBalancer="clb",
    )
    assert (pack.run("alb-https-only", [_classic(HTTPS_443), negotiation]) == []) is passes
    # aws.elb.LoadBalancerPolicy attached by aws.elb.ListenerPolicy.
    policy = R(
        "aws:elb/loadBalancerPolicy:LoadBalancerPolicy",
        "tls-policy",
        {
            "loadBalancerName": "wwhd-clb",
            "policyName": "wwhd-tls",
            "policyTypeName": "SSLNegotiationPolicyType",
            "policyAttributes": attributes,
        },
    )
    attach = R(
        "aws:elb/listenerPolicy:ListenerPolicy",
        "attach",
        {"loadBalancerName": "wwhd-clb", "loadBalancerPort": 443, "policyNames": ["wwhd-tls"]},
    )
    assert (pack.run("alb-https-only", [_classic(HTTPS_443), policy, attach]) == []) is passes


def test_classic_access_logs(pack) -> None:
    [violation] = pack.run("lb-access-logs", [_classic(HTTPS_443)])
    assert "no access logs" in violation.text
    # A Classic Load Balancer's accessLogs.enabled defaults to true (an ALB's to false).
    assert pack.run("lb-access-logs", [_classic(HTTPS_443, accessLogs={"bucket": "logs"})]) == []
    [off] = pack.run("lb-access-logs", [_classic(HTTPS_443, accessLogs={"bucket": "logs", "enabled": False})])
    assert "enabled=false" in off.text


def test_classic_security_groups_front_the_internet(pack) -> None:
    group = R(
        "aws:ec2/securityGroup:SecurityGroup",
        "clb-sg",
        {
            "id": UNKNOWN,
            "ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}],
        },
    )
    clb = _classic(HTTPS_443, securityGroups=[UNKNOWN])
    clb.prop_deps = {"securityGroups": ["clb-sg"]}
    assert pack.run("security-group-no-public-ingress", [group, clb]) == []
    [violation] = pack.run("security-group-no-public-ingress", [group])
    assert "not attached to a load balancer" in violation.text


# --- Aurora ------------------------------------------------------------------------------------

CLUSTER = "aws:rds/cluster:Cluster"
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"


def test_aurora_cluster_storage_encrypted_with_a_customer_key(pack) -> None:
    [violation] = pack.run("rds-encrypted", [R(CLUSTER, "aurora", {"engine": "aurora-postgresql"})])
    assert "not encrypted" in violation.text
    good = R(
        CLUSTER, "aurora", {"engine": "aurora-postgresql", "storageEncrypted": True, "kmsKeyId": UNKNOWN}
    )
    assert pack.run("rds-encrypted", [good]) == []


@pytest.mark.parametrize("typ", [CLUSTER_INSTANCE, CLUSTER])
def test_aurora_public_access(pack, typ: str) -> None:
    [violation] = pack.run("rds-not-public", [R(typ, "db", {"publiclyAccessible": True})])
    assert "publicly accessible" in violation.text
    assert (
        pack.run("rds-not-public", [R(typ, "db", {"instanceClass": "db.r6g.large"})]) == []
    )  # AWS default: false


def test_aurora_backup_retention_defaults_to_one_day(pack) -> None:
    [violation] = pack.run("rds-backup-retention", [R(CLUSTER, "aurora", {"engine": "aurora-postgresql"})])
    assert "1 day (unset: the RDS default)" in violation.text
    assert pack.run("rds-backup-retention", [R(CLUSTER, "aurora", {"backupRetentionPeriod": 7})]) == []


def test_aurora_cluster_protected_from_deletion(pack) -> None:
    [violation] = pack.run("stateful-resources-protected", [R(CLUSTER, "aurora", {})])
    assert "deletion_protection=True" in violation.text and violation.level == "advisory"
    assert (
        pack.run("stateful-resources-protected", [R(CLUSTER, "aurora", {"deletionProtection": True})]) == []
    )
    assert pack.run("stateful-resources-protected", [R(CLUSTER, "aurora", {}, protect=True)]) == []


# --- the VPC's main route table ----------------------------------------------------------------


def _subnet_without_association(*extra: R) -> list[R]:
    return [
        R(
            "aws:ec2/vpc:Vpc",
            "vpc",
            {"id": "vpc-1", "mainRouteTableId": "rtb-main", "defaultRouteTableId": "rtb-main"},
        ),
        R("aws:ec2/internetGateway:InternetGateway", "igw", {"id": "igw-1", "vpcId": "vpc-1"}),
        R("aws:ec2/subnet:Subnet", "subnet", {"id": "subnet-1", "vpcId": "vpc-1"}),
        *extra,
        R("aws:efs/mountTarget:MountTarget", "mt", {"subnetId": "subnet-1"}),
    ]


def test_a_subnet_without_association_uses_the_vpcs_own_main_table(pack) -> None:
    # Only the local route: private.
    assert pack.run("efs-mount-target-private", _subnet_without_association()) == []
    # A route the stack adds to the main table, by its id or (unknown) through the VPC.
    for route in (
        R("aws:ec2/route:Route", "default", {"routeTableId": "rtb-main", "gatewayId": "igw-1"}),
        R.referencing("aws:ec2/route:Route", "default", routeTableId="vpc", gatewayId="igw"),
        R(
            "aws:ec2/defaultRouteTable:DefaultRouteTable",
            "main",
            {"defaultRouteTableId": "rtb-main", "routes": [{"cidrBlock": "0.0.0.0/0", "gatewayId": "igw-1"}]},
        ),
    ):
        [violation] = pack.run("efs-mount-target-private", _subnet_without_association(route))
        assert "main route table of VPC 'vpc'" in violation.text and "internet gateway" in violation.text


def test_a_main_route_table_association_names_the_main_table(pack) -> None:
    public = R(
        "aws:ec2/routeTable:RouteTable",
        "public",
        {"id": "rtb-pub", "routes": [{"cidrBlock": "0.0.0.0/0", "gatewayId": "igw-1"}]},
    )
    private = R("aws:ec2/routeTable:RouteTable", "private", {"id": "rtb-priv"})

    def main(table: str) -> R:
        return R(
            "aws:ec2/mainRouteTableAssociation:MainRouteTableAssociation",
            "main",
            {"vpcId": "vpc-1", "routeTableId": table},
        )

    [violation] = pack.run(
        "efs-mount-target-private", _subnet_without_association(public, private, main("rtb-pub"))
    )
    assert "main route table" in violation.text
    assert (
        pack.run("efs-mount-target-private", _subnet_without_association(public, private, main("rtb-priv")))
        == []
    )


def test_a_subnet_of_a_vpc_outside_the_stack_is_undecided(pack) -> None:
    specs = [
        R("aws:ec2/subnet:Subnet", "subnet", {"id": "subnet-1", "vpcId": "vpc-elsewhere"}),
        R(
            "aws:ec2/securityGroup:SecurityGroup",
            "sg",
            {
                "id": "sg-1",
                "ingress": [
                    {"protocol": "tcp", "fromPort": 2049, "toPort": 2049, "cidrBlocks": ["0.0.0.0/0"]}
                ],
            },
        ),
        R("aws:efs/mountTarget:MountTarget", "mt", {"subnetId": "subnet-1", "securityGroups": ["sg-1"]}),
    ]
    [undecided] = pack.run("efs-mount-target-private", specs)
    assert undecided.undecided and undecided.level == "mandatory"
    assert (
        "its VPC is not in this stack" in undecided.text
        and "SecurityGroup 'sg' admits internet traffic" in undecided.text
    )


# --- an awsx Vpc's isolated subnets ------------------------------------------------------------

AWSX_VPC = R(
    "awsx:ec2:Vpc",
    "vpc",
    {
        "vpcId": "vpc-1",
        "publicSubnetIds": ["subnet-pub"],
        "privateSubnetIds": [],
        "isolatedSubnetIds": ["subnet-iso"],
    },
)
# What lands in a subnet, by policy: an instance, a service's tasks, an EFS mount target.
PLACED = {
    "ec2-private-subnets": lambda subnet: R("aws:ec2/instance:Instance", "box", {"subnetId": subnet}),
    "ecs-service-private-networking": lambda subnet: R(
        "aws:ecs/service:Service",
        "svc",
        {"networkConfiguration": {"subnets": [subnet], "securityGroups": []}},
    ),
    "efs-mount-target-private": lambda subnet: R(
        "aws:efs/mountTarget:MountTarget", "mt", {"subnetId": subnet}
    ),
}


@pytest.mark.parametrize("policy", sorted(PLACED))
def test_an_isolated_subnet_of_an_awsx_vpc_is_private_and_a_public_one_is_not(pack, policy: str) -> None:
    """An isolated subnet (isolatedSubnetIds) routes nowhere outside its VPC: as private as a private one."""
    assert pack.run(policy, [AWSX_VPC, PLACED[policy]("subnet-iso")]) == []
    [violation] = pack.run(policy, [AWSX_VPC, PLACED[policy]("subnet-pub")])
    assert "public subnet of awsx Vpc 'vpc'" in violation.text and not violation.undecided
