"""WwhdNetwork: the VPC (new or adopted), the security groups and the network's logs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx

from components.component import WwhdComponent
from components.nat_instance import WwhdNatInstance, WwhdNatInstanceArgs
from components.roles import service_role
from iam_document import policy_document
from stack_config import NatStrategy, NetworkConfig

TOKEN = "wwhd:index:WwhdNetwork"

ANYWHERE_V4 = "0.0.0.0/0"
ANYWHERE_V6 = "::/0"
NFS_PORT = 2049
QDRANT_PORT = 6333
POSTGRES_PORT = 5432
HTTPS_PORT = 443

# awsx's NAT gateway strategy for each ``natGateways`` value: the NAT instance replaces the
# gateways, so awsx makes none.
AWSX_NAT_STRATEGY: dict[NatStrategy, awsx.ec2.NatGatewayStrategy] = {
    "single": awsx.ec2.NatGatewayStrategy.SINGLE,
    "one-per-az": awsx.ec2.NatGatewayStrategy.ONE_PER_AZ,
    "instance": awsx.ec2.NatGatewayStrategy.NONE,
}


@dataclass(frozen=True)
class ServicePorts:
    """What an extra service's tasks must be able to reach and be reached on."""

    name: str
    """The service's short name (its group is ``<component>-svc-<name>``)."""
    port: int | None = None
    """The port the load balancer sends requests to; None for a service it does not route to."""
    efs: bool = False
    """It mounts the stack's file system (NFS to the mount targets)."""


@dataclass(frozen=True)
class WwhdNetworkArgs:
    """What the network is built from."""

    config: NetworkConfig
    """The ``wwhd:network`` section: a new VPC (default 10.0.0.0/16, 2 AZs, one NAT) or an
    existing one."""
    region: str
    """AWS region, for the S3 gateway endpoint's service name."""
    key_arn: pulumi.Input[str]
    """The stack key; encrypts the flow-log group."""
    container_port: int = 8000
    """The API's port: the only one the load balancer may reach on the tasks."""
    https: bool = True
    """The load balancer has an HTTPS listener: open 443 (without one, only 80). Default True."""
    efs: bool = True
    """The stack has a file system: create the mount targets' group. Default True."""
    api_efs: bool = True
    """The API's tasks mount the file system (SQLite, or Qdrant beside it). Default True."""
    qdrant_service: bool = False
    """Qdrant runs as its own service: create its group (6333 from the API only)."""
    qdrant_efs: bool = False
    """That service keeps its storage on the file system (NFS to the mount targets)."""
    qdrant_host: bool = False
    """It runs on a container host of its own: create the host's group (no ingress, HTTPS out
    for the ECS agent, Session Manager and image pulls)."""
    postgres: bool = False
    """The API uses RDS PostgreSQL: create the database group (5432 from the API only)."""
    flow_log_retention_days: int = 30
    """Retention of the flow-log group, in a value CloudWatch accepts."""
    services: Sequence[ServicePorts] = ()
    """The extra services (``wwhd:services``): a group each. Default: none."""
    permissions_boundary: pulumi.Input[str] | None = None
    """The permissions boundary its roles carry (the bootstrap's ``wwhd-workload-boundary``).
    Default: none."""


class WwhdNetwork(WwhdComponent[WwhdNetworkArgs], token=TOKEN):
    """Where everything runs: public subnets for the load balancer only, private subnets
    (out through NAT) for tasks, file system mount targets and the database.

    Security groups carry no inline rules: each rule is a standalone
    ``aws.vpc.SecurityGroupIngressRule``/``EgressRule`` with a description, so one rule can
    change without replacing the group, and a group with no egress rule sends nothing.
    """

    vpc_id: pulumi.Output[str]
    """Id of the VPC."""
    public_subnet_ids: pulumi.Output[Sequence[str]]
    """Subnets of the load balancer."""
    private_subnet_ids: pulumi.Output[Sequence[str]]
    """Subnets of tasks, mount targets and the database."""
    private_subnet_count: int
    """How many private subnets there are, known before they exist (one mount target each)."""
    private_subnet_azs: pulumi.Output[list[str]]
    """The Availability Zone of each private subnet, in order, known before they exist."""
    lb_security_group_id: pulumi.Output[str]
    """Load balancer: 80 and 443 from anywhere, out to the API port only."""
    api_security_group_id: pulumi.Output[str]
    """API tasks: the app port from the load balancer only."""
    efs_security_group_id: pulumi.Output[str] | None
    """EFS mount targets: NFS from the task groups that mount (``efs`` only)."""
    qdrant_security_group_id: pulumi.Output[str] | None
    """Qdrant service: 6333 from the API only (``qdrant_service`` only)."""
    qdrant_host_security_group_id: pulumi.Output[str] | None
    """Qdrant's container host: no ingress, HTTPS out (``qdrant_host`` only)."""
    db_security_group_id: pulumi.Output[str] | None
    """Database: 5432 from the API only (``postgres`` only)."""
    service_security_group_ids: dict[str, pulumi.Output[str]]
    """Extra services by name: their port from the load balancer only."""
    nat_instance_id: pulumi.Output[str] | None
    """The NAT instance (``natGateways: instance`` only), for Session Manager."""

    def _build(self, name: str, args: WwhdNetworkArgs) -> None:
        cfg = args.config

        self.private_subnet_count = (
            len(cfg.existing_vpc.private_subnet_ids)
            if cfg.existing_vpc is not None
            else cfg.availability_zones
        )
        if cfg.existing_vpc is not None:
            self.private_subnet_azs = pulumi.Output.all(
                *[
                    aws.ec2.get_subnet_output(id=s, opts=self._invoke).availability_zone
                    for s in cfg.existing_vpc.private_subnet_ids
                ]
            )
        else:
            # awsx spreads its subnets over the region's first available AZs, in this order.
            count = cfg.availability_zones
            self.private_subnet_azs = aws.get_availability_zones_output(
                state="available", opts=self._invoke
            ).names.apply(lambda names: list(names[:count]))
        vpc: awsx.ec2.Vpc | None = None
        if cfg.existing_vpc is not None:
            self.vpc_id = pulumi.Output.from_input(cfg.existing_vpc.vpc_id)
            self.public_subnet_ids = pulumi.Output.from_input(cfg.existing_vpc.public_subnet_ids)
            self.private_subnet_ids = pulumi.Output.from_input(cfg.existing_vpc.private_subnet_ids)
            route_table_ids: pulumi.Input[list[str]] = list(cfg.existing_vpc.private_route_table_ids)
        else:
            vpc = awsx.ec2.Vpc(
                f"{name}-vpc",
                cidr_block=cfg.cidr,
                number_of_availability_zones=cfg.availability_zones,
                availability_zone_cidr_mask=cfg.az_cidr_mask,
                subnet_strategy=awsx.ec2.SubnetAllocationStrategy.AUTO,
                subnet_specs=[
                    awsx.ec2.SubnetSpecArgs(type=awsx.ec2.SubnetType.PUBLIC, cidr_mask=cfg.subnet_mask),
                    awsx.ec2.SubnetSpecArgs(type=awsx.ec2.SubnetType.PRIVATE, cidr_mask=cfg.subnet_mask),
                ],
                nat_gateways=awsx.ec2.NatGatewayConfigurationArgs(
                    strategy=AWSX_NAT_STRATEGY[cfg.nat_gateways]
                ),
                enable_dns_hostnames=True,
                enable_dns_support=True,
                opts=self._child,
            )
            self.vpc_id = vpc.vpc_id
            self.public_subnet_ids = vpc.public_subnet_ids
            self.private_subnet_ids = vpc.private_subnet_ids
            # awsx creates the route tables as its children; gateway endpoints need their ids.
            route_table_ids = vpc.route_tables.apply(
                lambda tables: pulumi.Output.all(*[t.id for t in tables or []])
            )

        # Image layers come from S3: a gateway endpoint (free) keeps them off the NAT's bill.
        if cfg.existing_vpc is None or cfg.existing_vpc.private_route_table_ids:
            aws.ec2.VpcEndpoint(
                f"{name}-s3",
                vpc_id=self.vpc_id,
                service_name=f"com.amazonaws.{args.region}.s3",
                vpc_endpoint_type="Gateway",
                route_table_ids=route_table_ids,
                opts=self._child,
            )

        if cfg.flow_logs:
            self._flow_logs(name, args)

        self.nat_instance_id = None
        if vpc is not None and cfg.nat_gateways == "instance":
            # Forwarded packets pass the instance's group both ways: in from the VPC on the one
            # port tasks send to (HTTPS; nothing in the stack sends plain HTTP out), out to the
            # internet on the same. Its own package downloads and Session Manager are HTTPS too.
            nat_group = self._group(
                name, "nat", "W.W.H.D. NAT instance: HTTPS from the VPC, out to the internet"
            )
            self._rule(
                "ingress", f"{name}-nat-from-vpc", nat_group, HTTPS_PORT, "HTTPS from the VPC", cidr=cfg.cidr
            )
            self._rule(
                "egress",
                f"{name}-nat-https",
                nat_group,
                HTTPS_PORT,
                "HTTPS to the internet",
                cidr=ANYWHERE_V4,
            )
            nat = WwhdNatInstance(
                f"{name}-nat",
                WwhdNatInstanceArgs(
                    vpc=vpc,
                    vpc_cidr=cfg.cidr,
                    private_subnet_count=self.private_subnet_count,
                    security_group_id=nat_group.id,
                    region=args.region,
                    instance_type=cfg.nat_instance_type,
                    permissions_boundary=args.permissions_boundary,
                ),
                opts=self._child,
            )
            self.nat_instance_id = nat.instance_id

        # Every rule follows from what the stack has: a port is open only while something
        # listens on it, NFS only for tasks that mount the file system.
        lb = self._group(name, "lb", "W.W.H.D. load balancer: HTTP and HTTPS from the internet")
        api = self._group(name, "api", "W.W.H.D. API tasks: the app port from the load balancer")
        efs = self._group(name, "efs", "W.W.H.D. EFS mount targets: NFS from the tasks") if args.efs else None
        qdrant = (
            self._group(name, "qdrant", "W.W.H.D. Qdrant: 6333 from the API") if args.qdrant_service else None
        )
        host = (
            self._group(name, "qdrant-host", "W.W.H.D. Qdrant container host: no ingress")
            if args.qdrant_host
            else None
        )
        db = self._group(name, "db", "W.W.H.D. PostgreSQL: 5432 from the API") if args.postgres else None

        for port in (80, HTTPS_PORT) if args.https else (80,):
            for family, cidr in (("v4", ANYWHERE_V4), ("v6", ANYWHERE_V6)):
                self._rule("ingress",
                    f"{name}-lb-{port}-{family}", lb, port, f"HTTP{'S' if port == HTTPS_PORT else ''} from the internet",
                    cidr=cidr,
                )  # fmt: skip
        self._rule("egress", f"{name}-lb-to-api", lb, args.container_port, "to the API tasks", group=api)

        self._rule(
            "ingress", f"{name}-api-from-lb", api, args.container_port, "from the load balancer", group=lb
        )
        # Under awsvpc the task's own ENI pulls images, fetches secrets and ships logs, and the
        # API calls OpenAI: HTTPS out (through the NAT, or the S3 endpoint for image layers).
        self._rule(
            "egress", f"{name}-api-https", api, HTTPS_PORT, "HTTPS to AWS APIs and OpenAI", cidr=ANYWHERE_V4
        )

        def mounts(label: str, source: aws.ec2.SecurityGroup, who: str) -> None:
            assert efs is not None, f"{who} mounts the file system, but the stack has none"
            self._rule("egress", f"{name}-{label}-to-efs", source, NFS_PORT, "NFS to EFS", group=efs)
            self._rule("ingress", f"{name}-efs-from-{label}", efs, NFS_PORT, f"NFS from {who}", group=source)

        if args.api_efs:
            mounts("api", api, "the API tasks")

        def serves(
            server: aws.ec2.SecurityGroup,
            label: str,
            port: int,
            from_client: str,
            to_server: str,
            client: aws.ec2.SecurityGroup = api,
            client_label: str = "api",
        ) -> None:
            # Both groups are the stack's own: the port is opened on each side, ingress to the
            # server and egress from the client, each naming the other group.
            self._rule(
                "ingress", f"{name}-{label}-from-{client_label}", server, port, from_client, group=client
            )
            self._rule("egress", f"{name}-{client_label}-to-{label}", client, port, to_server, group=server)

        if qdrant is not None:
            serves(qdrant, "qdrant", QDRANT_PORT, "Qdrant from the API tasks", "to the Qdrant service")
            if not args.qdrant_host:
                # On Fargate the task's own ENI pulls the image and ships its logs; on a
                # container host the ECS agent and Docker do that through the host's.
                self._rule(
                    "egress",
                    f"{name}-qdrant-https",
                    qdrant,
                    HTTPS_PORT,
                    "HTTPS to pull the image and ship logs",
                    cidr=ANYWHERE_V4,
                )
            if args.qdrant_efs:
                mounts("qdrant", qdrant, "the Qdrant service")
        if host is not None:
            self._rule(
                "egress",
                f"{name}-qdrant-host-https",
                host,
                HTTPS_PORT,
                "HTTPS to ECS, Session Manager, EC2 and CloudWatch",
                cidr=ANYWHERE_V4,
            )
        if db is not None:
            serves(db, "db", POSTGRES_PORT, "PostgreSQL from the API tasks", "to PostgreSQL")

        self.service_security_group_ids = {}
        for svc in args.services:
            group = self._group(name, f"svc-{svc.name}", f"W.W.H.D. {svc.name} tasks")
            if svc.port is not None:
                serves(
                    group,
                    f"svc-{svc.name}",
                    svc.port,
                    "from the load balancer",
                    f"to the {svc.name} tasks",
                    client=lb,
                    client_label="lb",
                )
            self._rule(
                "egress",
                f"{name}-svc-{svc.name}-https",
                group,
                HTTPS_PORT,
                "HTTPS to AWS APIs and the internet",
                cidr=ANYWHERE_V4,
            )
            if svc.efs:
                mounts(f"svc-{svc.name}", group, f"the {svc.name} tasks")
            self.service_security_group_ids[svc.name] = group.id

        self.lb_security_group_id = lb.id
        self.api_security_group_id = api.id
        self.efs_security_group_id = efs.id if efs is not None else None
        self.qdrant_security_group_id = qdrant.id if qdrant is not None else None
        self.qdrant_host_security_group_id = host.id if host is not None else None
        self.db_security_group_id = db.id if db is not None else None

    def _group(self, name: str, role: str, description: str) -> aws.ec2.SecurityGroup:
        return aws.ec2.SecurityGroup(
            f"{name}-{role}",
            vpc_id=self.vpc_id,
            description=description,
            tags={"Name": f"{name}-{role}"},
            opts=self._child,
        )

    def _rule(
        self,
        direction: Literal["ingress", "egress"],
        rule: str,
        group_of: aws.ec2.SecurityGroup,
        port: int,
        description: str,
        *,
        cidr: str | None = None,
        group: aws.ec2.SecurityGroup | None = None,
    ) -> None:
        """One TCP port of ``group_of`` opened from (ingress) or to (egress) a CIDR or a group."""
        resource = (
            aws.vpc.SecurityGroupIngressRule if direction == "ingress" else aws.vpc.SecurityGroupEgressRule
        )
        resource(
            rule,
            security_group_id=group_of.id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=description,
            cidr_ipv4=cidr if cidr and ":" not in cidr else None,
            cidr_ipv6=cidr if cidr and ":" in cidr else None,
            referenced_security_group_id=group.id if group is not None else None,
            opts=self._child,
        )

    def _flow_logs(self, name: str, args: WwhdNetworkArgs) -> None:
        """Every accepted and rejected flow into a KMS-encrypted group that expires."""
        group_name = f"/wwhd/{pulumi.get_stack()}/vpc-flow-logs"
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=group_name,
            retention_in_days=args.flow_log_retention_days,
            kms_key_id=args.key_arn,
            opts=self._child,
        )
        identity = aws.get_caller_identity_output(opts=self._invoke)
        group_arn = identity.account_id.apply(
            lambda account: f"arn:aws:logs:{args.region}:{account}:log-group:{group_name}"
        )
        role = service_role(
            f"{name}-flow-logs",
            principal="vpc-flow-logs.amazonaws.com",
            description="Lets VPC Flow Logs deliver to this stack's flow-log group",
            boundary=args.permissions_boundary,
            opts=self._child,
            # Confused-deputy guard: only flow logs of this account.
            source_account=identity.account_id,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            # The group's ARN formed from its name: a new stack's document is judged whole.
            policy=group_arn.apply(
                lambda arn: json.dumps(
                    policy_document(
                        {
                            "Effect": "Allow",
                            "Action": [
                                "logs:CreateLogStream",
                                "logs:DescribeLogStreams",
                                "logs:PutLogEvents",
                            ],
                            "Resource": [arn, f"{arn}:*"],
                        },
                        {
                            # DescribeLogGroups has no resource-level scope.
                            "Effect": "Allow",
                            "Action": "logs:DescribeLogGroups",
                            "Resource": "*",
                        },
                    )
                )
            ),
            opts=self._child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc_id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            opts=self._child,
        )
