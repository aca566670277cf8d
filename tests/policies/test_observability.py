"""Issue 21, item 5: what the most used public packs check and this one did not -- load balancer
access logs (mandatory in prod-grade stacks), TLS policies older than the TLS 1.3 family, S3 server
access logging on buckets that hold data, RDS Performance Insights -- over the gRPC interface, on
current type names (aws:lb/*, aws:alb/*) and standalone security group rules."""

from __future__ import annotations

import pytest

from .conftest import UNKNOWN, R
from .grpc_pack import STACK

LB_TYPES = ["aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"]
LISTENER_TYPES = ["aws:lb/listener:Listener", "aws:alb/listener:Listener"]


# --- load balancer access logs -----------------------------------------------------------------


@pytest.mark.parametrize("typ", LB_TYPES)
def test_alb_access_logs_in_prod_grade_stacks(pack, typ: str) -> None:
    [violation] = pack.run("lb-access-logs", [R(typ, "alb", {})])
    assert violation.level == "mandatory" and "no access logs" in violation.text
    # accessLogs.enabled defaults to false on an ALB, even with a bucket.
    [off] = pack.run("lb-access-logs", [R(typ, "alb", {"accessLogs": {"bucket": "logs"}})])
    assert "an ALB's default is off" in off.text
    assert (
        pack.run("lb-access-logs", [R(typ, "alb", {"accessLogs": {"bucket": UNKNOWN, "enabled": True}})])
        == []
    )


def test_access_logs_are_required_only_in_the_listed_stacks(pack) -> None:
    alb = R("aws:lb/loadBalancer:LoadBalancer", "alb", {})
    assert pack.run("lb-access-logs", [alb], config={"stacks": ["staging"]}) == []
    assert pack.run("lb-access-logs", [alb], config={"stacks": [STACK]})


def test_network_load_balancers_are_not_asked_for_access_logs(pack) -> None:
    nlb = R("aws:lb/loadBalancer:LoadBalancer", "nlb", {"loadBalancerType": "network"})
    assert pack.run("lb-access-logs", [nlb]) == []


# --- TLS 1.3 policies ------------------------------------------------------------------------


@pytest.mark.parametrize("typ", LISTENER_TYPES)
@pytest.mark.parametrize(
    ("props", "flagged"),
    [
        ({"protocol": "HTTPS", "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06"}, False),
        ({"protocol": "HTTPS", "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"}, False),
        ({"protocol": "TLS", "sslPolicy": "ELBSecurityPolicy-TLS13-1-3-2021-06"}, False),
        ({"protocol": "HTTPS", "sslPolicy": "ELBSecurityPolicy-TLS-1-2-2017-01"}, True),
        ({"protocol": "TLS", "sslPolicy": "ELBSecurityPolicy-FS-1-2-Res-2020-10"}, True),
        ({"protocol": "HTTPS"}, True),  # the API default ELBSecurityPolicy-2016-08
        ({"protocol": "HTTP"}, False),
    ],
)
def test_tls_policies_older_than_the_tls13_family_are_flagged(
    pack, typ: str, props: dict, flagged: bool
) -> None:
    found = pack.run("lb-tls13-policy", [R(typ, "listener", {"port": 443, **props})])
    assert bool(found) is flagged
    assert all(f.level == "advisory" and "older than the TLS 1.3 family" in f.text for f in found)


def test_a_classic_load_balancer_terminating_tls_has_no_tls13(pack) -> None:
    https = {"lbPort": 443, "lbProtocol": "https", "instancePort": 80, "instanceProtocol": "http"}
    [flagged] = pack.run(
        "lb-tls13-policy", [R("aws:elb/loadBalancer:LoadBalancer", "clb", {"listeners": [https]})]
    )
    assert "no TLS 1.3" in flagged.text
    tcp = {"lbPort": 443, "lbProtocol": "tcp", "instancePort": 443, "instanceProtocol": "tcp"}
    assert (
        pack.run("lb-tls13-policy", [R("aws:elb/loadBalancer:LoadBalancer", "clb", {"listeners": [tcp]})])
        == []
    )


# --- S3 server access logging ------------------------------------------------------------------


def test_buckets_that_hold_data_have_server_access_logging(pack) -> None:
    docs = R("aws:s3/bucket:Bucket", "docs", {"bucket": UNKNOWN})
    logs = R("aws:s3/bucket:Bucket", "logs", {"bucket": UNKNOWN})
    found = pack.run("s3-bucket-access-logging", [docs, logs])
    assert sorted(f.name for f in found) == ["docs", "logs"] and {f.level for f in found} == {"advisory"}
    logging = R.referencing(
        "aws:s3/bucketLogging:BucketLogging",
        "docs-logging",
        {"targetPrefix": "s3/docs/"},
        bucket="docs",
        targetBucket="logs",
    )
    # The target of the logging is a log bucket, not user data: nothing else to flag.
    assert pack.run("s3-bucket-access-logging", [docs, logs, logging]) == []


def test_log_destinations_and_legacy_inline_logging_need_no_access_logs(pack) -> None:
    alb_logs = R("aws:s3/bucket:Bucket", "alb-logs", {"bucket": "wwhd-alb-logs"})
    alb = R(
        "aws:lb/loadBalancer:LoadBalancer",
        "alb",
        {"accessLogs": {"bucket": "wwhd-alb-logs", "enabled": True}},
    )
    flow_logs = R(
        "aws:s3/bucket:Bucket", "flow-logs", {"bucket": "wwhd-flow", "arn": "arn:aws:s3:::wwhd-flow"}
    )
    flow = R(
        "aws:ec2/flowLog:FlowLog",
        "flow",
        {"logDestinationType": "s3", "logDestination": "arn:aws:s3:::wwhd-flow/vpc/"},
    )
    inline = R(
        "aws:s3/bucketV2:BucketV2", "old", {"bucket": "old", "logging": {"targetBucket": "wwhd-alb-logs"}}
    )
    assert pack.run("s3-bucket-access-logging", [alb_logs, alb, flow_logs, flow, inline]) == []


# --- RDS Performance Insights -----------------------------------------------------------------


def test_rds_instances_run_with_performance_insights(pack) -> None:
    db = {"engine": "postgres", "instanceClass": "db.t4g.medium"}
    [violation] = pack.run("rds-performance-insights", [R("aws:rds/instance:Instance", "db", db)])
    assert violation.level == "advisory" and "unset: RDS leaves it off" in violation.text
    enabled = R("aws:rds/instance:Instance", "db", {**db, "performanceInsightsEnabled": True})
    assert pack.run("rds-performance-insights", [enabled]) == []
    advanced = R("aws:rds/instance:Instance", "db", {**db, "databaseInsightsMode": "advanced"})
    assert pack.run("rds-performance-insights", [advanced]) == []


def test_classes_without_performance_insights_are_not_flagged(pack) -> None:
    small = R("aws:rds/instance:Instance", "db", {"engine": "mysql", "instanceClass": "db.t3.micro"})
    assert pack.run("rds-performance-insights", [small]) == []
    # PostgreSQL supports it on every class.
    assert pack.run(
        "rds-performance-insights",
        [R("aws:rds/instance:Instance", "db", {"engine": "postgres", "instanceClass": "db.t3.micro"})],
    )


def test_aurora_instances_take_their_clusters_setting(pack) -> None:
    def aurora(cluster_flag: bool | None) -> list[R]:
        cluster = {"engine": "aurora-postgresql", "arn": UNKNOWN} | (
            {"performanceInsightsEnabled": cluster_flag} if cluster_flag is not None else {}
        )
        return [
            R("aws:rds/cluster:Cluster", "aurora", cluster),
            R.referencing(
                "aws:rds/clusterInstance:ClusterInstance",
                "aurora-1",
                {"instanceClass": "db.r6g.large", "engine": "aurora-postgresql"},
                clusterIdentifier="aurora",
            ),
        ]

    assert pack.run("rds-performance-insights", aurora(True)) == []
    [violation] = pack.run("rds-performance-insights", aurora(None))
    assert violation.name == "aurora-1"
    multi_az = R(
        "aws:rds/cluster:Cluster", "maz", {"engine": "postgres", "dbClusterInstanceClass": "db.m6gd.large"}
    )
    [violation] = pack.run("rds-performance-insights", [multi_az])
    assert violation.name == "maz"


# --- standalone security group rules -----------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        R.referencing(
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            "ssh",
            {"type": "ingress", "protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]},
            securityGroupId="task-sg",
        ),
        R.referencing(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "ssh",
            {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv6": "::/0"},
            securityGroupId="task-sg",
        ),
    ],
    ids=["SecurityGroupRule", "SecurityGroupIngressRule"],
)
def test_standalone_rules_open_to_the_internet_violate(pack, rule: R) -> None:
    group = R("aws:ec2/securityGroup:SecurityGroup", "task-sg", {"id": UNKNOWN})
    [violation] = pack.run("security-group-no-public-ingress", [group, rule])
    assert violation.name == "ssh" and "port 22" in violation.text


def test_the_default_security_group_is_read_too(pack) -> None:
    default = R(
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "default",
        {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]},
    )
    [violation] = pack.run("security-group-no-public-ingress", [default])
    assert "all ports" in violation.text


def test_a_standalone_rule_with_an_unknown_cidr_is_undecided_naming_it(pack) -> None:
    rule = R(
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "from-vpn",
        {"securityGroupId": "sg-1", "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": UNKNOWN},
    )
    [undecided] = pack.run("security-group-no-public-ingress", [rule])
    assert undecided.text.startswith("undecided [cidrIpv4]: SecurityGroupIngressRule 'from-vpn': ")
