"""AWS type tokens and the shape knowledge several policies share (ECS containers, subnets)."""

from __future__ import annotations

from typing import Any

from ._util import Findings, Res, Stack, as_list, is_unknown, parse_json, truthy

EFS_FS = "aws:efs/fileSystem:FileSystem"
EFS_MOUNT_TARGET = "aws:efs/mountTarget:MountTarget"
EFS_ACCESS_POINT = "aws:efs/accessPoint:AccessPoint"
EFS_BACKUP_POLICY = "aws:efs/backupPolicy:BackupPolicy"
TASK_DEF = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
SCALING_TARGET = "aws:appautoscaling/target:Target"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SNS_TOPIC = "aws:sns/topic:Topic"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
BUCKET_PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
RDS_INSTANCE = "aws:rds/instance:Instance"
KMS_KEY = "aws:kms/key:Key"
SECRET = "aws:secretsmanager/secret:Secret"
ECR_REPO = "aws:ecr/repository:Repository"
LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
TARGET_GROUPS = ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup")
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
VPC = "aws:ec2/vpc:Vpc"
AWSX_VPC = "awsx:ec2:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE_ASSOC = "aws:ec2/routeTableAssociation:RouteTableAssociation"
INTERNET_GATEWAY = "aws:ec2/internetGateway:InternetGateway"
BACKUP_SELECTION = "aws:backup/selection:Selection"
BACKUP_VAULT = "aws:backup/vault:Vault"
IAM_ROLE = "aws:iam/role:Role"
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY = "aws:iam/policy:Policy"
IAM_USER_POLICY = "aws:iam/userPolicy:UserPolicy"
IAM_GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
IAM_ATTACHMENTS = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
)


def containers(task_def: Res, findings: Findings) -> list[dict[str, Any]] | None:
    """The task definition's container list (a JSON string in pulumi-aws), or None when it is
    unknown (reported as undecided) or malformed (reported as a violation)."""
    raw = task_def.get("containerDefinitions")
    if raw is None:
        return []
    if is_unknown(raw):
        findings.cannot_decide(f"{task_def.label()}: containerDefinitions is unknown during preview")
        return None
    try:
        parsed = parse_json(raw)
    except ValueError as exc:
        findings.violation(f"{task_def.label()}: containerDefinitions is not valid JSON ({exc})")
        return None
    if not isinstance(parsed, list):
        findings.violation(f"{task_def.label()}: containerDefinitions must be a JSON list")
        return None
    return [c for c in parsed if isinstance(c, dict)]


def efs_volumes(task_def: Res) -> list[dict[str, Any]]:
    return [
        v
        for v in as_list(task_def.get("volumes"))
        if isinstance(v, dict) and isinstance(v.get("efsVolumeConfiguration"), dict)
    ]


def service_name(service: Res) -> str | None:
    name = service.get("name")
    return name if isinstance(name, str) and not is_unknown(name) else None


def task_definition_of(stack: Stack, service: Res) -> list[Res] | None:
    return stack.resolve(service, "taskDefinition", service.get("taskDefinition"), (TASK_DEF,))


def scaling_targets_of(stack: Stack, service: Res) -> tuple[list[Res], list[Res]]:
    """Autoscaling targets for an ECS service: (matched, undecidable).

    resourceId is "service/<cluster>/<service>"; an unknown resourceId falls back to the
    engine's dependency graph (the target depends on the service)."""
    idx = stack.memo("scaling-targets", lambda: _ScalingIndex(stack))
    name = service_name(service)
    if name is not None:
        matched = idx.by_service_name.get(name, [])
    else:
        matched = idx.by_dep_service_id.get(service.urn, [])
    matched = stack.ordered([*matched, *idx.by_dep_unknown_id.get(service.urn, [])])
    return matched, list(idx.undecided)


class _ScalingIndex:
    """The stack's autoscaling targets by what they can match, so each service is one look-up."""

    def __init__(self, stack: Stack) -> None:
        # Known resourceId "service/<cluster>/<name>": by <name>.
        self.by_service_name: dict[str, list[Res]] = {}
        # Known resourceId "service/...", for services whose name is unknown: by dependency urn.
        self.by_dep_service_id: dict[str, list[Res]] = {}
        # Unknown resourceId: by dependency urn.
        self.by_dep_unknown_id: dict[str, list[Res]] = {}
        # Unknown resourceId and no dependencies: undecidable for every service.
        self.undecided: list[Res] = []
        for target in stack.of_type(SCALING_TARGET):
            rid = target.get("resourceId")
            deps = dict.fromkeys(_deps(target, "resourceId"))
            if isinstance(rid, str) and not is_unknown(rid):
                parts = rid.split("/")
                if parts[0] != "service":
                    continue
                if len(parts) == 3:
                    self.by_service_name.setdefault(parts[2], []).append(target)
                for urn in deps:
                    self.by_dep_service_id.setdefault(urn, []).append(target)
                continue
            for urn in deps:
                self.by_dep_unknown_id.setdefault(urn, []).append(target)
            if not deps:
                ns = target.get("serviceNamespace")
                if ns in (None, "ecs") or is_unknown(ns):
                    self.undecided.append(target)


def _deps(res: Res, key: str) -> list[str]:
    return res.property_dependencies.get(key, []) or res.dependencies


# --- subnets -------------------------------------------------------------------------------

PRIVATE, PUBLIC, UNDECIDED = "private", "public", "undecided"


def subnet_kind(stack: Stack, subnet_id: Any) -> tuple[str, str]:
    """Is a subnet private? Returns (PRIVATE | PUBLIC | UNDECIDED, why).

    Private means: listed in an awsx Vpc's privateSubnetIds, or its route table (explicit
    association) has no route to an internet gateway. A subnet this stack does not define
    cannot be verified and is UNDECIDED, never assumed private."""
    if is_unknown(subnet_id) or not isinstance(subnet_id, str):
        return UNDECIDED, "subnet id is unknown during preview"
    idx = stack.memo("subnets", lambda: _SubnetIndex(stack))
    if subnet_id not in idx.verdicts:
        idx.verdicts[subnet_id] = _subnet_kind(stack, idx, subnet_id)
    return idx.verdicts[subnet_id]


class _SubnetIndex:
    """Subnets, route table associations, routes and gateways by the values that link them."""

    def __init__(self, stack: Stack) -> None:
        self.verdicts: dict[str, tuple[str, str]] = {}
        # subnet id -> verdict from the first awsx Vpc listing it (private list first).
        self.awsx: dict[str, tuple[str, str]] = {}
        for vpc in stack.of_type(AWSX_VPC):
            for key, kind in (("privateSubnetIds", PRIVATE), ("publicSubnetIds", PUBLIC)):
                for s in as_list(vpc.get(key)):
                    if isinstance(s, str):
                        self.awsx.setdefault(s, (kind, f"{kind} subnet of awsx Vpc '{vpc.name}'"))
        # id, arn or urn -> first subnet carrying it.
        self.subnets: dict[str, Res] = {}
        for subnet in stack.of_type(SUBNET):
            for v in (subnet.get("id"), subnet.get("arn"), subnet.urn):
                if isinstance(v, str):
                    self.subnets.setdefault(v, subnet)
        self.assocs = _Links(stack, stack.of_type(ROUTE_TABLE_ASSOC), "subnetId")
        self.routes = _Links(stack, stack.of_type(ROUTE), "routeTableId")
        self.igw_ids = {
            g.get("id")
            for g in stack.of_type(INTERNET_GATEWAY)
            if isinstance(g.get("id"), str) and not is_unknown(g.get("id"))
        }


class _Links:
    """Resources of one type by the value of `key` and by the urns in its property dependencies,
    so "every r with r[key] == value or urn in r's dependencies for key" is a look-up."""

    def __init__(self, stack: Stack, resources: list[Res], key: str) -> None:
        self.stack = stack
        self.by_value: dict[Any, list[Res]] = {}
        self.unhashable: list[Res] = []
        self.by_dep: dict[str, list[Res]] = {}
        self.key = key
        for r in resources:
            v = r.get(key)
            # Every not-yet-known id reads as the same placeholder: indexing it would link all
            # of them to each other (a private subnet to the public table's routes). Unknown
            # values link only through property dependencies.
            if not is_unknown(v):
                try:
                    self.by_value.setdefault(v, []).append(r)
                except TypeError:
                    self.unhashable.append(r)
            for urn in dict.fromkeys(r.property_dependencies.get(key, [])):
                self.by_dep.setdefault(urn, []).append(r)

    def linked(self, value: Any, urn: str) -> list[Res]:
        if is_unknown(value):
            return self.stack.ordered(list(self.by_dep.get(urn, ())))
        try:
            found = list(self.by_value.get(value, ()))
        except TypeError:  # an unhashable value (a list or map) matches only by equality
            found = [r for rs in self.by_value.values() for r in rs if r.get(self.key) == value]
        found += [r for r in self.unhashable if r.get(self.key) == value]
        found += self.by_dep.get(urn, ())
        return self.stack.ordered(found)


def _subnet_kind(stack: Stack, idx: _SubnetIndex, subnet_id: str) -> tuple[str, str]:
    if subnet_id in idx.awsx:
        return idx.awsx[subnet_id]
    subnet = idx.subnets.get(subnet_id)
    if subnet is None:
        return UNDECIDED, f"subnet {subnet_id} is not defined in this stack, so it cannot be verified"
    sid = subnet.get("id") or subnet_id
    tables: list[Res] = []
    for assoc in idx.assocs.linked(sid, subnet.urn):
        found = stack.resolve(assoc, "routeTableId", assoc.get("routeTableId"), (ROUTE_TABLE,))
        if found:
            tables.extend(found)
        else:
            return UNDECIDED, f"subnet {subnet_id}: its route table is not in this stack"
    if not tables:
        if truthy(subnet.get("mapPublicIpOnLaunch")):
            return PUBLIC, f"subnet {subnet_id} maps public IPs on launch"
        return UNDECIDED, f"subnet {subnet_id} has no explicit route table association (uses the main table)"
    for table in tables:
        # Inline routes have no dependencies of their own; aws.ec2.Route resources do.
        routes: list[tuple[dict[str, Any], Res | None]] = [
            (r, None) for r in as_list(table.get("routes")) if isinstance(r, dict)
        ]
        routes += [(r.props, r) for r in idx.routes.linked(table.get("id"), table.urn)]
        for route, resource in routes:
            gw = route.get("gatewayId")
            if is_unknown(gw):
                if resource is not None and stack.resolve(resource, "gatewayId", gw, (INTERNET_GATEWAY,)):
                    return PUBLIC, f"subnet {subnet_id} routes to an internet gateway of this stack"
                return UNDECIDED, f"subnet {subnet_id}: a route's gatewayId is unknown during preview"
            if isinstance(gw, str) and (gw.startswith("igw-") or gw in idx.igw_ids):
                return PUBLIC, f"subnet {subnet_id} routes to internet gateway {gw}"
    return PRIVATE, f"subnet {subnet_id} has no route to an internet gateway"
