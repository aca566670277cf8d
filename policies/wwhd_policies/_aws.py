"""AWS type tokens and the shape knowledge several policies (and the cost model) share: ECS task
sizes and containers, subnets and route tables, security group ingress, managed policy attachments,
load balancers, log buckets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._util import KNOWN_BEFORE_CREATION, Res, Stack, as_int, as_list, is_unknown, parse_json, truthy

if TYPE_CHECKING:
    # Annotations only: this module, which the cost model reads, stays free of the SDK (see _util).
    from ._policy import Findings

EFS_FS = "aws:efs/fileSystem:FileSystem"
EFS_MOUNT_TARGET = "aws:efs/mountTarget:MountTarget"
EFS_ACCESS_POINT = "aws:efs/accessPoint:AccessPoint"
EFS_BACKUP_POLICY = "aws:efs/backupPolicy:BackupPolicy"
TASK_DEF = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
SCALING_TARGET = "aws:appautoscaling/target:Target"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE_ALARM = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
SNS_TOPIC = "aws:sns/topic:Topic"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
BUCKET_PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ACCOUNT_PAB = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
BUCKET_LOGGING = ("aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2")
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
KMS_KEY = "aws:kms/key:Key"
SECRET = "aws:secretsmanager/secret:Secret"
ECR_REPO = "aws:ecr/repository:Repository"
LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
LISTENER_RULES = ("aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule")
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
CLASSIC_LB = "aws:elb/loadBalancer:LoadBalancer"
CLASSIC_LISTENER_POLICY = "aws:elb/listenerPolicy:ListenerPolicy"
CLASSIC_LB_POLICY = "aws:elb/loadBalancerPolicy:LoadBalancerPolicy"
CLASSIC_SSL_NEGOTIATION = "aws:elb/sslNegotiationPolicy:SslNegotiationPolicy"
TARGET_GROUPS = ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup")
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUPS = (SECURITY_GROUP, DEFAULT_SECURITY_GROUP)
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
CLOUDTRAIL = "aws:cloudtrail/trail:Trail"
VPC = "aws:ec2/vpc:Vpc"
AWSX_VPC = "awsx:ec2:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
DEFAULT_ROUTE_TABLE = "aws:ec2/defaultRouteTable:DefaultRouteTable"
ROUTE_TABLES = (ROUTE_TABLE, DEFAULT_ROUTE_TABLE)
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE_ASSOC = "aws:ec2/routeTableAssociation:RouteTableAssociation"
MAIN_ROUTE_TABLE_ASSOC = "aws:ec2/mainRouteTableAssociation:MainRouteTableAssociation"
INTERNET_GATEWAY = "aws:ec2/internetGateway:InternetGateway"
BACKUP_SELECTION = "aws:backup/selection:Selection"
BACKUP_VAULT = "aws:backup/vault:Vault"
IAM_ROLE = "aws:iam/role:Role"
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY = "aws:iam/policy:Policy"
IAM_USER_POLICY = "aws:iam/userPolicy:UserPolicy"
IAM_GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"

# Every way to attach a managed policy, with the property that carries the ARN(s).
MANAGED_POLICY_ARNS: dict[str, str] = {
    IAM_ROLE: "managedPolicyArns",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "policyArn",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": "policyArn",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": "policyArn",
    "aws:iam/policyAttachment:PolicyAttachment": "policyArn",  # roles, users and groups at once
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": "policyArns",
    "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive": "policyArns",
    "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive": "policyArns",
    "aws:ssoadmin/managedPolicyAttachment:ManagedPolicyAttachment": "managedPolicyArn",
    "aws:ssoadmin/managedPolicyAttachmentsExclusive:ManagedPolicyAttachmentsExclusive": "managedPolicyArns",
}


def attached_policy_arns(r: Res) -> tuple[str, list[Any]]:
    """(property, the managed policy ARNs it attaches) for any of MANAGED_POLICY_ARNS; a list
    unknown as a whole is one unknown element."""
    prop = MANAGED_POLICY_ARNS[r.type]
    value = r.get(prop)
    return prop, [value] if is_unknown(value) else [v for v in as_list(value) if v is not None]


# What makes a reference to a bucket resolvable before creation.
BUCKET_REF_REMEDY = "pass the bucket's own output (bucket=bucket.id)"


def deps_of(stack: Stack, r: Res, key: str, types: tuple[str, ...] | None = None) -> list[Res]:
    """The resources of this stack that `r`'s property `key` depends on (optionally of `types`)."""
    found = [
        stack.by_urn[u] for u in dict.fromkeys(r.property_dependencies.get(key, ())) if u in stack.by_urn
    ]
    return found if types is None else [d for d in found if d.type in types]


# --- ECS tasks ----------------------------------------------------------------------------


def _gib(lowest: int, highest: int, step: int = 1) -> list[int]:
    """Memory sizes in MiB from `lowest` to `highest` GiB in `step` GiB increments, as the
    guide words them ("between 2 GB and 8 GB in 1-GB increments")."""
    return list(range(lowest * 1024, highest * 1024 + 1, step * 1024))


# Fargate task sizes (CPU units -> allowed memory MiB), from the ECS developer guide
# "Task CPU and memory" table.
FARGATE_SIZES: dict[int, list[int]] = {
    256: [512, 1024, 2048],
    512: _gib(1, 4),
    1024: _gib(2, 8),
    2048: _gib(4, 16),
    4096: _gib(8, 30),
    8192: _gib(16, 60, 4),
    16384: _gib(32, 120, 8),
}


def _in_units(value: Any, unit: str) -> int | None:
    """A number ("512", 512.0), or "<n> <unit>" in units of 1024 ("0.5 vCPU", "1 GB")."""
    if isinstance(value, str):
        m = re.fullmatch(rf"\s*([\d.]+)\s*{unit}\s*", value, re.IGNORECASE)
        if m:
            return int(float(m.group(1)) * 1024)
    return as_int(value)


def parse_cpu(value: Any) -> int | None:
    """ "512", 512.0 or "0.5 vCPU" -> CPU units."""
    return _in_units(value, "vcpu")


def parse_memory(value: Any) -> int | None:
    """ "1024", 1024.0 or "1 GB" -> MiB."""
    return _in_units(value, "gb")


def containers(
    task_def: Res, findings: Findings, judging: str = "its containers", urn: str | None = None
) -> list[dict[str, Any]] | None:
    """The task definition's container list (a JSON string in pulumi-aws), or None when it is
    unknown (reported as undecided: `judging` names the check that waits for it, default "its
    containers") or malformed
    (reported as a violation)."""
    raw = task_def.get("containerDefinitions")
    if raw is None:
        return []
    if is_unknown(raw):
        findings.cannot_decide(
            f"{task_def.label()}: the container definitions are unknown before creation, so {judging} "
            "cannot be judged",
            prop="containerDefinitions",
            remedy=KNOWN_BEFORE_CREATION.replace("build it", "build them"),
            urn=urn,
        )
        return None
    try:
        parsed = parse_json(raw)
    except ValueError as exc:
        findings.violation(f"{task_def.label()}: containerDefinitions is not valid JSON ({exc})", urn)
        return None
    if not isinstance(parsed, list):
        findings.violation(f"{task_def.label()}: containerDefinitions must be a JSON list", urn)
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
Verdict = tuple[str, str]  # (PRIVATE | PUBLIC | UNDECIDED, why)


def subnet_kind(stack: Stack, subnet_id: Any) -> Verdict:
    """Is the subnet with this id private? Private means: listed in an awsx Vpc's
    privateSubnetIds or isolatedSubnetIds, or the route table it uses (its own association, else its VPC's main route
    table) has no route to an internet gateway. A subnet this stack does not define cannot be
    verified and is UNDECIDED, never assumed private."""
    if is_unknown(subnet_id) or not isinstance(subnet_id, str):
        return UNDECIDED, "its subnet id is unknown before creation"
    idx = _subnet_index(stack)
    if subnet_id not in idx.verdicts:
        idx.verdicts[subnet_id] = _subnet_id_kind(stack, idx, subnet_id)
    return idx.verdicts[subnet_id]


def subnet_resource_kind(stack: Stack, subnet: Res) -> Verdict:
    """subnet_kind for a subnet resource of this stack (reached through the graph)."""
    idx = _subnet_index(stack)
    if subnet.urn not in idx.verdicts:
        sid = subnet.get("id")
        known = isinstance(sid, str) and not is_unknown(sid)
        idx.verdicts[subnet.urn] = (
            subnet_kind(stack, sid) if known else _route_kind(stack, idx, subnet, f"subnet '{subnet.name}'")
        )
    return idx.verdicts[subnet.urn]


def placement(stack: Stack, owner: Res, key: str, subnets: Any) -> Verdict:
    """Where `owner` (a service, a mount target) lands, from its subnets (`owner`'s property `key`):
    PUBLIC when one is public, PRIVATE when all are, else UNDECIDED. Ids unknown before creation
    are judged through `owner`'s property dependencies on subnets of this stack."""
    values = [subnets] if is_unknown(subnets) else as_list(subnets)
    verdicts = [subnet_kind(stack, v) for v in values if isinstance(v, str) and not is_unknown(v)]
    if any(is_unknown(v) or not isinstance(v, str) for v in values):
        verdicts.append(_dependency_kind(stack, owner, key))
    for kind in (PUBLIC, UNDECIDED):
        for verdict in verdicts:
            if verdict[0] == kind:
                return verdict
    return PRIVATE, "; ".join(why for _, why in verdicts) or "no subnets"


def _dependency_kind(stack: Stack, owner: Res, key: str) -> Verdict:
    deps = deps_of(stack, owner, key, (SUBNET, AWSX_VPC))
    if not deps:
        return UNDECIDED, "its subnet ids are unknown before creation and depend on no subnet of this stack"
    verdicts: list[Verdict] = []
    idx = _subnet_index(stack)
    for dep in deps:
        if dep.type == SUBNET:
            verdicts.append(subnet_resource_kind(stack, dep))
            continue
        # An awsx Vpc: opaque offline; under the engine its subnets are its descendants. Which
        # of them `owner` uses is unknown, so only "all private" decides.
        children = idx.awsx_subnets(dep)
        if children and all(subnet_resource_kind(stack, c)[0] == PRIVATE for c in children):
            verdicts.append((PRIVATE, f"every subnet of awsx Vpc '{dep.name}' is private"))
        elif not children and _declares_no_public_subnet(dep):
            # Seen without its children (a preview), the Vpc's own inputs still say what it
            # creates: awsx makes only the subnets subnetSpecs lists.
            verdicts.append((PRIVATE, f"awsx Vpc '{dep.name}' declares no public subnet (subnetSpecs)"))
        else:
            verdicts.append(
                (
                    UNDECIDED,
                    f"its subnet ids come from awsx Vpc '{dep.name}' and are unknown before creation, "
                    "so which of its subnets it uses cannot be told",
                )
            )
    for kind in (PUBLIC, UNDECIDED):
        for verdict in verdicts:
            if verdict[0] == kind:
                return verdict
    return PRIVATE, "; ".join(why for _, why in verdicts)


def _declares_no_public_subnet(vpc: Res) -> bool:
    """The awsx Vpc lists its subnets (subnetSpecs), every type known and none Public. Without
    subnetSpecs awsx creates public and private subnets in each AZ."""
    specs = vpc.get("subnetSpecs")
    if is_unknown(specs) or not isinstance(specs, list) or not specs:
        return False
    types = [spec.get("type") if isinstance(spec, dict) else None for spec in specs]
    return all(isinstance(t, str) and not is_unknown(t) and t.lower() != "public" for t in types)


# An awsx Vpc's subnet id outputs: (output, verdict, what the message calls it), private lists first.
_AWSX_SUBNET_LISTS = (
    ("privateSubnetIds", PRIVATE, PRIVATE),
    ("isolatedSubnetIds", PRIVATE, "isolated"),
    ("publicSubnetIds", PUBLIC, PUBLIC),
)


class _SubnetIndex:
    """Subnets, route tables, their associations, routes and gateways by the values that link them."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.verdicts: dict[str, Verdict] = {}
        # subnet id -> verdict from the first awsx Vpc listing it (private list first).
        self.awsx: dict[str, Verdict] = {}
        for vpc in stack.of_type(AWSX_VPC):
            # An isolated subnet routes nowhere outside the VPC: private, like a private one.
            for key, kind, what in _AWSX_SUBNET_LISTS:
                for s in as_list(vpc.get(key)):
                    if isinstance(s, str) and not is_unknown(s):
                        self.awsx.setdefault(s, (kind, f"{what} subnet of awsx Vpc '{vpc.name}'"))
        # id, arn or urn -> first subnet carrying it.
        self.subnets: dict[str, Res] = {}
        for subnet in stack.of_type(SUBNET):
            for v in (subnet.get("id"), subnet.get("arn"), subnet.urn):
                if isinstance(v, str) and not is_unknown(v):
                    self.subnets.setdefault(v, subnet)
        self.assocs = _Links(stack, stack.of_type(ROUTE_TABLE_ASSOC), "subnetId")
        self.main_assocs = _Links(stack, stack.of_type(MAIN_ROUTE_TABLE_ASSOC), "vpcId")
        self.default_tables = _Links(stack, stack.of_type(DEFAULT_ROUTE_TABLE), "defaultRouteTableId")
        self.routes = _Links(stack, stack.of_type(ROUTE), "routeTableId")
        self.igw_ids = {
            g.get("id")
            for g in stack.of_type(INTERNET_GATEWAY)
            if isinstance(g.get("id"), str) and not is_unknown(g.get("id"))
        }
        self._awsx_subnets: dict[str, list[Res]] = {}

    def awsx_subnets(self, vpc: Res) -> list[Res]:
        """The subnets among an awsx Vpc's descendants (none offline, where it is opaque)."""
        if vpc.urn not in self._awsx_subnets:
            found: list[Res] = []
            todo = [vpc.urn]
            while todo:
                for child in self.stack.children_of(todo.pop()):
                    todo.append(child.urn)
                    if child.type == SUBNET:
                        found.append(child)
            self._awsx_subnets[vpc.urn] = self.stack.ordered(found)
        return self._awsx_subnets[vpc.urn]


def _subnet_index(stack: Stack) -> _SubnetIndex:
    return stack.memo("subnets", lambda: _SubnetIndex(stack))


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
        if value is None or is_unknown(value):
            return self.stack.ordered(list(self.by_dep.get(urn, ())))
        try:
            found = list(self.by_value.get(value, ()))
        except TypeError:  # an unhashable value (a list or map) matches only by equality
            found = [r for rs in self.by_value.values() for r in rs if r.get(self.key) == value]
        found += [r for r in self.unhashable if r.get(self.key) == value]
        found += self.by_dep.get(urn, ())
        return self.stack.ordered(found)


def _subnet_id_kind(stack: Stack, idx: _SubnetIndex, subnet_id: str) -> Verdict:
    if subnet_id in idx.awsx:
        return idx.awsx[subnet_id]
    subnet = idx.subnets.get(subnet_id)
    if subnet is None:
        return (
            UNDECIDED,
            f"subnet {subnet_id} is not defined in this stack, so its route table cannot be verified",
        )
    return _route_kind(stack, idx, subnet, f"subnet {subnet_id}")


def _tables_of(stack: Stack, associations: list[Res]) -> list[Res] | None:
    """The route tables these (main) route table associations name; None when one is not in this stack."""
    tables: list[Res] = []
    for assoc in associations:
        found = stack.resolve(assoc, "routeTableId", assoc.get("routeTableId"), ROUTE_TABLES)
        if not found:
            return None
        tables.extend(found)
    return tables


def _route_kind(stack: Stack, idx: _SubnetIndex, subnet: Res, name: str) -> Verdict:
    """Judge a subnet by the route table it uses: its own association, else its VPC's main table."""
    tables = _tables_of(stack, idx.assocs.linked(subnet.get("id"), subnet.urn))
    if tables is None:
        return UNDECIDED, f"{name}: its route table is not in this stack"
    if tables:
        return _tables_kind(stack, idx, tables, [], name, "its route table")
    return _main_table_kind(stack, idx, subnet, name)


def _main_table_kind(stack: Stack, idx: _SubnetIndex, subnet: Res, name: str) -> Verdict:
    """A subnet without an association of its own uses its VPC's main route table: the table a
    MainRouteTableAssociation names, else the VPC's default table (only the local route, plus
    what aws.ec2.DefaultRouteTable or aws.ec2.Route resources of this stack add to it)."""
    vpcs = stack.resolve(subnet, "vpcId", subnet.get("vpcId"), (VPC,))
    if not vpcs:
        if truthy(subnet.get("mapPublicIpOnLaunch")):
            return PUBLIC, f"{name} maps public IPs on launch"
        return UNDECIDED, (
            f"{name} has no route table association of its own and its VPC is not in this stack, "
            "so the main route table it uses cannot be verified"
        )
    vpc = vpcs[0]
    where = f"the main route table of VPC '{vpc.name}'"
    tables = _tables_of(stack, idx.main_assocs.linked(vpc.get("id"), vpc.urn))
    if tables is None:
        return UNDECIDED, f"{name}: {where} is not in this stack"
    if tables:
        return _tables_kind(stack, idx, tables, [], name, where)
    # Routes added to the VPC's own main table: by its id, or (unknown ids) by depending on the VPC,
    # whose only route table outputs are mainRouteTableId and defaultRouteTableId.
    defaults = idx.default_tables.linked(vpc.get("defaultRouteTableId"), vpc.urn)
    extra = [
        *idx.routes.linked(vpc.get("mainRouteTableId"), vpc.urn),
        *idx.routes.linked(vpc.get("defaultRouteTableId"), vpc.urn),
    ]
    return _tables_kind(stack, idx, defaults, stack.ordered(extra), name, where)


def _tables_kind(
    stack: Stack, idx: _SubnetIndex, tables: list[Res], extra_routes: list[Res], name: str, where: str
) -> Verdict:
    # (route, the resource whose property dependencies explain it, that property)
    routes: list[tuple[dict[str, Any], Res, str]] = [(r.props, r, "gatewayId") for r in extra_routes]
    for table in tables:
        # Inline routes have no dependencies of their own: the table's "routes" entry covers them.
        routes += [(r, table, "routes") for r in as_list(table.get("routes")) if isinstance(r, dict)]
        routes += [(r.props, r, "gatewayId") for r in idx.routes.linked(table.get("id"), table.urn)]
    for route, source, key in routes:
        gw = route.get("gatewayId")
        if is_unknown(gw):
            deps = deps_of(stack, source, key)
            if any(d.type == INTERNET_GATEWAY for d in deps):
                return PUBLIC, f"{name}: {where} routes to an internet gateway of this stack"
            # Only a resource of this stack makes a value unknown at preview: when it depends on
            # AWS resources none of which is an internet gateway, the gateway is not one either.
            if deps and all(d.type.startswith("aws:") for d in deps):
                continue
            return UNDECIDED, f"{name}: a route's gatewayId in {where} is unknown before creation"
        if isinstance(gw, str) and (gw.startswith("igw-") or gw in idx.igw_ids):
            return PUBLIC, f"{name}: {where} routes to internet gateway {gw}"
    return PRIVATE, f"{name}: {where} has no route to an internet gateway"


# --- security group ingress ------------------------------------------------------------------

OPEN_CIDRS = ("0.0.0.0/0", "::/0")


@dataclass
class Ingress:
    """One ingress rule, wherever it is declared (inline in a group, or a rule resource)."""

    owner: Res  # the resource declaring it: the group itself, or the rule resource
    label: str
    prop: str  # where its CIDRs are: "ingress" (inline), "cidrBlocks" or "cidrIpv4" (rule resources)
    rule: dict[str, Any]  # protocol, fromPort, toPort
    open: bool | None  # admits 0.0.0.0/0 or ::/0; None while that is unknown
    groups: list[Res] | None  # the group(s) it belongs to; None when they cannot be resolved
    group_ref: Any  # the group reference as written (an id), for groups outside this stack


def _open(*cidrs: Any) -> bool | None:
    if any(is_unknown(c) for c in cidrs):
        return None
    return any(c in OPEN_CIDRS for value in cidrs for c in as_list(value) if isinstance(c, str))


class _IngressIndex:
    def __init__(self, stack: Stack) -> None:
        self.rules: list[Ingress] = []
        for sg in stack.of_type(*SECURITY_GROUPS):
            ingress = sg.get("ingress")
            if is_unknown(ingress):
                self.rules.append(Ingress(sg, sg.label(), "ingress", {}, None, [sg], None))
                continue
            for rule in as_list(ingress):
                if isinstance(rule, dict):
                    opened = _open(rule.get("cidrBlocks"), rule.get("ipv6CidrBlocks"))
                    self.rules.append(Ingress(sg, sg.label(), "ingress", rule, opened, [sg], None))
        for r in stack.of_type(SG_RULE):
            kind = r.get("type")
            if kind != "ingress" and not is_unknown(kind):
                continue
            opened = _open(r.get("cidrBlocks"), r.get("ipv6CidrBlocks"))
            self.rules.append(
                self._standalone(stack, r, "cidrBlocks", r.props, None if is_unknown(kind) else opened)
            )
        for r in stack.of_type(SG_INGRESS_RULE):
            rule = {"protocol": r.get("ipProtocol"), "fromPort": r.get("fromPort"), "toPort": r.get("toPort")}
            opened = _open(r.get("cidrIpv4"), r.get("cidrIpv6"))
            self.rules.append(self._standalone(stack, r, "cidrIpv4", rule, opened))
        self.by_group: dict[str, list[Ingress]] = {}
        self.unresolved: list[Ingress] = []
        for ing in self.rules:
            if ing.groups is None:
                self.unresolved.append(ing)
            for g in ing.groups or ():
                self.by_group.setdefault(g.urn, []).append(ing)

    @staticmethod
    def _standalone(stack: Stack, r: Res, prop: str, rule: dict[str, Any], opened: bool | None) -> Ingress:
        ref = r.get("securityGroupId")
        groups = stack.resolve(r, "securityGroupId", ref, SECURITY_GROUPS)
        return Ingress(r, r.label(), prop, rule, opened, groups, ref)


def ingress_rules(stack: Stack) -> list[Ingress]:
    """Every ingress rule of the stack: inline in (default) security groups, aws.ec2.SecurityGroupRule
    and aws.vpc.SecurityGroupIngressRule resources."""
    return stack.memo("ingress", lambda: _IngressIndex(stack)).rules


def internet_ingress(stack: Stack, group: Res) -> tuple[list[Ingress], list[Ingress]]:
    """(rules that admit internet traffic into `group`, rules that might: an unknown CIDR, or an
    open rule whose group cannot be resolved)."""
    idx: _IngressIndex = stack.memo("ingress", lambda: _IngressIndex(stack))
    mine = idx.by_group.get(group.urn, [])
    unsure = [i for i in mine if i.open is None]
    unsure += [i for i in idx.unresolved if i.open is not False]
    return [i for i in mine if i.open], unsure


def security_groups_of(stack: Stack, owner: Res, key: str, refs: Any) -> tuple[list[Res], list[str]]:
    """The security groups `owner` uses (its property `key` holds `refs`): (groups of this stack,
    why some cannot be resolved). No groups at all means the VPC's default group."""
    values = [refs] if is_unknown(refs) else as_list(refs)
    groups: list[Res] = []
    missing: list[str] = []
    for v in values:
        if is_unknown(v):
            continue
        found = stack.resolve(owner, key, v, SECURITY_GROUPS) if isinstance(v, str) else None
        if found:
            groups += found
        else:
            missing.append(f"security group {v} is not in this stack")
    if any(is_unknown(v) for v in values):
        found = deps_of(stack, owner, key, SECURITY_GROUPS)
        if found:
            groups += found
        else:
            missing.append(
                "its security group ids are unknown before creation and depend on no group of this stack"
            )
    if not values:
        # AWS attaches the VPC's default group: verifiable only where this stack manages it.
        groups = stack.of_type(DEFAULT_SECURITY_GROUP)
        if not groups:
            missing.append("it uses its VPC's default security group, which this stack does not manage")
    return stack.ordered(groups), missing


# What makes a placement decidable before creation.
PLACEMENT_REMEDY = (
    "give it subnets known before creation (subnets of this stack, an awsx Vpc's privateSubnetIds), "
    "or let its security groups admit only other security groups"
)
# `public_ip` for a resource whose public IP, unset, is its subnet's auto-assign setting (EC2).
SUBNET_DECIDES = object()


def judge_placement(
    stack: Stack,
    owner: Res,
    subnets: tuple[str, Any],
    groups: tuple[str, Any] | None,
    public_ip: Any,
    out: Findings,
    groups_owner: Res | None = None,
) -> None:
    """Private subnets are the letter of the rule; not reachable from the internet is what it
    protects. Where the subnets cannot be judged (unknown before creation, outside the stack), a
    resource without a public IP whose security groups admit no internet traffic is unreachable
    from the internet whatever subnet it lands in: that decides it. `subnets` and `groups` are
    (property, value) of the owner (of `groups_owner` for the groups, when another resource, a
    launch template, holds them; None when that resource is not in this stack); `public_ip` is the
    owner's request, or SUBNET_DECIDES."""
    kind, why = placement(stack, owner, subnets[0], subnets[1])
    if kind == PUBLIC:
        out.violation(f"{owner.label()} is placed in a public subnet ({why}).", owner.urn)
        return
    if kind == PRIVATE or (public_ip is not SUBNET_DECIDES and truthy(public_ip)):
        return  # a public IP is reported on its own
    blockers: list[str] = []
    if public_ip is SUBNET_DECIDES:
        blockers.append("whether it gets a public IP is up to its subnet's auto-assign setting")
    elif is_unknown(public_ip):
        blockers.append("whether it gets a public IP is unknown before creation")
    if groups is None:
        found, missing = [], ["its launch settings, which name its security groups, are not in this stack"]
    else:
        found, missing = security_groups_of(stack, groups_owner or owner, groups[0], groups[1])
    blockers += missing
    for group in found:
        opened, unsure = internet_ingress(stack, group)
        blockers += [
            f"{group.label()} admits internet traffic"
            if i.owner is group
            else f"{i.label} admits internet traffic into {group.label()}"
            for i in opened
        ]
        blockers += [f"{i.label} may admit internet traffic (unknown before creation)" for i in unsure]
    if blockers:
        out.cannot_decide(
            f"{owner.label()}: {why}, and {'; '.join(dict.fromkeys(blockers))}, so whether it is reachable "
            "from the internet cannot be judged",
            prop=subnets[0] if subnets[0] != "networkConfiguration" else "networkConfiguration.subnets",
            remedy=PLACEMENT_REMEDY,
            urn=owner.urn,
        )


# --- load balancers ---------------------------------------------------------------------------


def load_balancer_of(stack: Stack, listener: Res) -> list[Res] | None:
    return stack.resolve(listener, "loadBalancerArn", listener.get("loadBalancerArn"), LOAD_BALANCERS)


def listener_protocol(stack: Stack, listener: Res) -> Any:
    """The listener's protocol; unset means AWS's default HTTP, except on network and gateway load
    balancers of this stack (None: no HTTP default there)."""
    protocol = listener.get("protocol")
    if protocol is not None:
        return protocol.upper() if isinstance(protocol, str) and not is_unknown(protocol) else protocol
    for lb in load_balancer_of(stack, listener) or ():
        if lb.get("loadBalancerType", "application") in ("network", "gateway"):
            return None
    return "HTTP"


def _bucket_name_of_arn(value: Any) -> Any:
    """arn:aws:s3:::name/prefix -> name (flow log destinations are ARNs)."""
    if isinstance(value, str) and value.startswith("arn:") and ":s3:::" in value:
        return value.split(":::", 1)[1].split("/", 1)[0]
    return value


def log_buckets(stack: Stack) -> set[str]:
    """URNs of the buckets this stack delivers logs into: load balancer access logs, S3 server
    access logs, VPC flow logs and CloudTrail. They hold logs, not user data, and AWS's log
    delivery dictates their encryption (ALB and Classic access logs: SSE-S3 only)."""

    def build() -> set[str]:
        found: set[str] = set()

        def add(r: Res, key: str, value: Any) -> None:
            for b in stack.resolve(r, key, _bucket_name_of_arn(value), BUCKETS) or ():
                found.add(b.urn)

        for lb in stack.of_type(*LOAD_BALANCERS, CLASSIC_LB):
            logs = lb.get("accessLogs")
            if isinstance(logs, dict) or is_unknown(logs):
                add(lb, "accessLogs", logs.get("bucket") if isinstance(logs, dict) else logs)
        for r in stack.of_type(*BUCKET_LOGGING):
            add(r, "targetBucket", r.get("targetBucket"))
        for r in stack.of_type(FLOW_LOG):
            if r.get("logDestinationType") == "s3":
                add(r, "logDestination", r.get("logDestination"))
        for r in stack.of_type(CLOUDTRAIL):
            add(r, "s3BucketName", r.get("s3BucketName"))
        return found

    return stack.memo("log-buckets", build)
