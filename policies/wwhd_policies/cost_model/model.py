"""Estimate a stack's monthly AWS bill at the baseline (desired counts) and at the peak
(autoscaling maximums), from resource types and properties alone.

Input: a list of resources, each either a mapping ``{"type", "name", "urn", "props" | "inputs" |
"outputs", "parent", "dependencies", "propertyDependencies"}`` (what an offline preview records)
or a pulumi_policy ``PolicyResource`` (what a stack policy gets). Output: a ``CostEstimate``
whose ``to_dict()`` is JSON with ``currency, region, baselineMonthly, peakMonthly, items,
unpriced, assumptions, prices, advice``.

Rules:
- Prices are data (prices.json): every figure used is listed in ``prices`` with its source and
  date, and the region it came from when the stack's region borrowed it (see prices.json
  ``fallbacks``).
- Usage the resources do not say (GB through NAT, GB stored, LCUs) comes from ``usage`` with
  documented defaults (DEFAULT_USAGE).
- A property the program leaves unset is priced at the value AWS (or the provider) applies:
  an ECS service's desiredCount 0, an Auto Scaling group's desired capacity its minimum, an EBS
  volume's type gp2, an RDS instance's storage gp3 (io1 when it sets iops).
- Nothing is counted as zero silently: a resource the model cannot price is listed in
  ``unpriced`` with ``kind`` "unpriced" (the model has no price for it: a type, class or option
  missing from the table) or "unknown" (a value it needs is not known yet, as before a
  deployment, with the ``property``); free types are known as free.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .. import _aws as aws
from .. import _ec2 as ec2
from .._util import (
    Res,
    Stack,
    as_float,
    as_int,
    as_list,
    contains_unknown,
    is_unknown,
    plain,
    truthy,
)

PRICES_FILE = Path(__file__).with_name("prices.json")
EC2_TABLE = "ec2.linux.instanceHour"

DEFAULT_USAGE: dict[str, float] = {
    # Total GB per month through all NAT gateways (image pulls, LLM API calls, OS updates).
    "natGbPerMonth": 20.0,
    # Average Load Balancer Capacity Units per ALB (a quiet API uses well under 1).
    "albLcu": 1.0,
    # GB stored per EFS file system (SQLite + Qdrant data).
    "efsGbStored": 5.0,
    # GB of backups kept per AWS Backup vault of everything but EBS volumes of this stack (EFS
    # recovery points): EBS recovery points are priced from the volumes' sizes.
    "backupGbPerVault": 10.0,
    # GB ingested per month and GB kept, per CloudWatch log group.
    "logIngestGbPerGroup": 1.0,
    "logStoredGbPerGroup": 2.0,
    # GB of VPC flow log records per month, per flow log.
    "flowLogGbPerMonth": 2.0,
    # Storage of an RDS instance that does not say allocatedStorage (a replica or a restore).
    "rdsStorageGbDefault": 20.0,
    # GB per ECR repository and per S3 bucket.
    "ecrGbPerRepo": 2.0,
    # GB of upstream images an ECR pull-through cache rule keeps in the repositories it creates
    # (a few pinned tags of one or two images, as the Qdrant and collector images are).
    "ecrCachedGbPerRule": 1.0,
    "s3GbPerBucket": 1.0,
    # GB per month through each interface VPC endpoint.
    "vpcEndpointGbPerMonth": 1.0,
    # Availability zones assumed for an internet-facing ALB whose subnets are unknown.
    "defaultAzs": 2.0,
    # Tasks registered in each Cloud Map service (the Qdrant service is a singleton).
    "cloudMapInstancesPerService": 1.0,
    # Root volume of an instance that maps none (the ECS-optimized AMIs' root volume is 30 GB).
    "amiRootVolumeGb": 30.0,
    # Snapshot GB kept per provisioned GB of a backed-up EBS volume. Snapshots are incremental:
    # the first holds the blocks written, later ones the blocks changed; 1.0 assumes a volume
    # written full once and little daily change within the retention.
    "ebsSnapshotGbPerVolumeGb": 1.0,
    # Aurora (Standard) storage per cluster and millions of I/O requests per month.
    "auroraStorageGb": 10.0,
    "auroraIoMillionPerMonth": 10.0,
}

# Types that cost nothing by themselves (their cost, if any, is usage priced elsewhere).
FREE_TYPES = frozenset(
    {
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/securityGroupRule:SecurityGroupRule",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/vpc:Vpc",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/route:Route",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:ec2/mainRouteTableAssociation:MainRouteTableAssociation",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "aws:ec2/defaultRouteTable:DefaultRouteTable",
        "aws:ec2/defaultNetworkAcl:DefaultNetworkAcl",
        "aws:ec2/networkAcl:NetworkAcl",
        "aws:ec2/networkAclRule:NetworkAclRule",
        "aws:ec2/eipAssociation:EipAssociation",
        "aws:ecs/cluster:Cluster",
        "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders",
        "aws:ecs/taskDefinition:TaskDefinition",
        "aws:appautoscaling/target:Target",
        "aws:appautoscaling/policy:Policy",
        "aws:lb/listener:Listener",
        "aws:lb/listenerRule:ListenerRule",
        "aws:lb/targetGroup:TargetGroup",
        "aws:lb/targetGroupAttachment:TargetGroupAttachment",
        "aws:alb/listener:Listener",
        "aws:alb/targetGroup:TargetGroup",
        "aws:efs/mountTarget:MountTarget",
        "aws:efs/accessPoint:AccessPoint",
        "aws:efs/backupPolicy:BackupPolicy",
        "aws:efs/fileSystemPolicy:FileSystemPolicy",
        "aws:backup/plan:Plan",
        "aws:backup/selection:Selection",
        "aws:backup/vaultPolicy:VaultPolicy",
        "aws:backup/vaultNotifications:VaultNotifications",
        "aws:kms/alias:Alias",
        "aws:secretsmanager/secretVersion:SecretVersion",
        "aws:secretsmanager/secretPolicy:SecretPolicy",
        "aws:sns/topic:Topic",
        "aws:sns/topicSubscription:TopicSubscription",
        "aws:sns/topicPolicy:TopicPolicy",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketVersioningV2:BucketVersioningV2",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        "aws:ecr/repositoryPolicy:RepositoryPolicy",
        "aws:rds/subnetGroup:SubnetGroup",
        "aws:rds/parameterGroup:ParameterGroup",
        "aws:rds/optionGroup:OptionGroup",
        "aws:acm/certificate:Certificate",
        "aws:acm/certificateValidation:CertificateValidation",
        "aws:route53/record:Record",
        "aws:cloudwatch/logStream:LogStream",
        "aws:cloudwatch/logResourcePolicy:LogResourcePolicy",
        "aws:cloudwatch/logMetricFilter:LogMetricFilter",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/eventTarget:EventTarget",
        "aws:xray/samplingRule:SamplingRule",
        "aws:xray/group:Group",
        # EC2 launch settings and scaling: the instances they start are priced on the group.
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:ec2/launchConfiguration:LaunchConfiguration",
        "aws:ec2/volumeAttachment:VolumeAttachment",
        "aws:ec2/keyPair:KeyPair",
        "aws:ec2/placementGroup:PlacementGroup",
        "aws:ec2/vpcEndpointRouteTableAssociation:VpcEndpointRouteTableAssociation",
        "aws:autoscaling/policy:Policy",
        "aws:autoscaling/attachment:Attachment",
        "aws:autoscaling/lifecycleHook:LifecycleHook",
        "aws:autoscaling/schedule:Schedule",
        "aws:autoscaling/notification:Notification",
        "aws:ecs/capacityProvider:CapacityProvider",
        # Snapshots a DLM policy keeps are priced on the volumes it targets.
        "aws:dlm/lifecyclePolicy:LifecyclePolicy",
        "aws:backup/vaultLockConfiguration:VaultLockConfiguration",
        "aws:rds/clusterParameterGroup:ClusterParameterGroup",
        "aws:elasticache/subnetGroup:SubnetGroup",
        "aws:elasticache/parameterGroup:ParameterGroup",
        "aws:servicediscovery/httpNamespace:HttpNamespace",
        "aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter",
        "aws:lb/listenerCertificate:ListenerCertificate",
        "aws:kms/grant:Grant",
        # Network interfaces cost nothing; a public address on one is priced as its Eip.
        "aws:ec2/networkInterface:NetworkInterface",
        "aws:ec2/networkInterfaceAttachment:NetworkInterfaceAttachment",
        # The repositories a creation template shapes are created by pull-through cache rules
        # (priced there) or by pushes to a new name (billed as repositories of this stack are).
        "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate",
    }
)
# random: values computed by the engine, no cloud resource behind them.
FREE_PREFIXES = ("aws:iam/", "pulumi:providers:", "random:")
FREE_EXACT_PACKAGES = ("pulumi:pulumi:Stack",)
CLOUD_PACKAGES = ("aws", "awsx", "aws-native")

# Flat monthly charges: type -> (price key, detail).
_FLAT = {
    aws.KMS_KEY: ("kms.keyMonth", "customer managed key"),
    "aws:kms/replicaKey:ReplicaKey": ("kms.keyMonth", "customer managed key"),
    aws.SECRET: ("secretsmanager.secretMonth", "secret"),
    aws.METRIC_ALARM: ("cloudwatch.alarmMonth", "standard metric alarm"),
    "aws:cloudwatch/compositeAlarm:CompositeAlarm": ("cloudwatch.compositeAlarmMonth", "composite alarm"),
    "aws:cloudwatch/dashboard:Dashboard": ("cloudwatch.dashboardMonth", "dashboard"),
    "aws:route53/zone:Zone": ("route53.hostedZoneMonth", "hosted zone"),
    # A Cloud Map DNS namespace is a Route 53 private hosted zone, billed as one.
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": (
        "route53.hostedZoneMonth",
        "Cloud Map namespace (private hosted zone)",
    ),
}
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
EIP = "aws:ec2/eip:Eip"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
ECS_CLUSTER = "aws:ecs/cluster:Cluster"
CLUSTER_CAPACITY_PROVIDERS = "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
CACHE_CLUSTER = "aws:elasticache/cluster:Cluster"
CACHE_REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_SERVERLESS = "aws:elasticache/serverlessCache:ServerlessCache"
FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
SSM_PARAMETER = "aws:ssm/parameter:Parameter"
PULL_THROUGH_CACHE_RULE = "aws:ecr/pullThroughCacheRule:PullThroughCacheRule"
BACKUP_PLAN = "aws:backup/plan:Plan"
# Parameter Store's standard tier holds values up to 4 KB without policies; Intelligent-Tiering
# makes a parameter advanced past either.
SSM_STANDARD_MAX_BYTES = 4096


def rds_table(engine: str, multi_az: bool = False) -> str:
    """The prices.json key of an RDS engine's class table (USD per instance-hour)."""
    return f"rds.{engine}{'.multiAz' if multi_az else ''}.instanceHour"


def elasticache_table(engine: str) -> str:
    return f"elasticache.{engine}.nodeHour"


def _camel_case(fields: list[tuple[str, Any]]) -> dict[str, Any]:
    """`asdict`'s dict_factory for the JSON documents: a field `baseline_monthly` is the key
    `baselineMonthly` (the keys of plain dicts within are kept as they are)."""
    return {_camel(name): value for name, value in fields}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


@dataclass
class CostItem:
    urn: str
    name: str
    type: str
    baseline_monthly: float
    peak_monthly: float
    detail: str


@dataclass
class Lever:
    """A change to the stack's own resources that lowers its bill, priced by re-estimating a
    modified copy: `baseline_saving_monthly`/`peak_saving_monthly` are the differences in monthly
    totals, and `resources` says where they come from, one entry per resource whose price moved
    ``{urn, name, baselineSaving, peakSaving, after}`` (`after`: its item's detail in the copy)."""

    id: str
    title: str
    baseline_saving_monthly: float
    peak_saving_monthly: float
    resources: list[dict[str, Any]]
    trade_off: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, camelCase keys (`_camel_case`)."""
        return asdict(self, dict_factory=_camel_case)


@dataclass
class CostEstimate:
    currency: str
    region: str
    baseline_monthly: float
    peak_monthly: float
    items: list[CostItem] = field(default_factory=list)
    unpriced: list[dict[str, str]] = field(default_factory=list)
    assumptions: dict[str, Any] = field(default_factory=dict)
    # price key -> {"region", "source", "read"} for every figure the estimate used.
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Levers sorted by saving, or None when advice was not asked for (see estimate()).
    advice: list[Lever] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, camelCase keys (see the module docstring), items and levers alike."""
        return asdict(self, dict_factory=_camel_case)

    def top_items(self, n: int = 5, peak: bool = False) -> list[CostItem]:
        key = (lambda i: i.peak_monthly) if peak else (lambda i: i.baseline_monthly)
        return sorted(self.items, key=key, reverse=True)[:n]


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def load_prices(path: str | Path = PRICES_FILE) -> dict[str, Any]:
    return _load(str(path))


class _UnpricedError(Exception):
    """Raised inside a pricer: the model has no price for this resource (kind "unpriced")."""


class _UnknownError(Exception):
    """Raised inside a pricer: a value the price depends on is not known yet (kind "unknown")."""

    def __init__(self, prop: str) -> None:
        super().__init__(f"{prop} is not known yet")
        self.prop = prop


def _strategies(r: Res, key: str) -> list[dict[str, Any]]:
    """An ECS capacity provider strategy list. A provider name not known yet is the name of a
    capacity provider this deployment creates (an Auto Scaling group's): FARGATE and
    FARGATE_SPOT are always written out, so such a provider counts as EC2 capacity."""
    raw = r.get(key)
    if is_unknown(raw):
        raise _UnknownError(key)
    strategies = [s for s in as_list(raw) if isinstance(s, dict)]
    if any(is_unknown(s.get("base")) or is_unknown(s.get("weight")) for s in strategies):
        raise _UnknownError(key)
    return strategies


def _known(r: Res, key: str, default: Any = None) -> Any:
    """r[key], or `default` when unset; raises _UnknownError when the value is not known yet."""
    value = r.get(key)
    if contains_unknown(value):
        raise _UnknownError(key)
    return default if value is None else value


@dataclass
class _Launch:
    """What one instance of an Auto Scaling group (or one EC2 instance) is made of."""

    instance_type: str
    # (volume type, GB, IOPS, MiB/s, size assumed from usage)
    volumes: list[tuple[str, float, float | None, float | None, bool]]
    public_ip: bool | None  # None: the program does not say; the subnet decides


class _Pricer:
    def __init__(self, stack: Stack, prices: Mapping[str, Any], region: str, usage: dict[str, float]) -> None:
        self.stack = stack
        self.region = region
        self.hours = float(prices.get("hoursPerMonth", 730))
        regions = prices.get("regions", {})
        self.table: dict[str, Any] = regions.get(region, {})
        fallback = (prices.get("fallbacks") or {}).get(region) or {}
        self.fallback_region: str | None = fallback.get("from")
        self.fallback: dict[str, Any] = regions.get(self.fallback_region, {}) if self.fallback_region else {}
        self.usage = usage
        self.items: list[CostItem] = []
        self.unpriced: list[dict[str, str]] = []
        self.used: dict[str, dict[str, Any]] = {}
        self._backups: _Backups | None = None

    # --- price look-ups ---------------------------------------------------------------------

    def _entry(self, key: str) -> dict[str, Any] | None:
        region, entry = self.region, self.table.get(key)
        if entry is None and self.fallback_region:
            region, entry = self.fallback_region, self.fallback.get(key)
        if not isinstance(entry, dict):
            return None
        self.used[key] = {"region": region, "source": entry.get("source"), "read": entry.get("read")}
        return entry

    def price(self, key: str) -> float:
        entry = self._entry(key)
        if entry is None or "usd" not in entry:
            raise _UnpricedError(f"no price '{key}' in prices.json for {self.region}")
        return float(entry["usd"])

    def rate(self, key: str, klass: str) -> float:
        """The hourly rate of an instance/node class from a class table."""
        entry = self._entry(key)
        classes = entry.get("classes") if entry else None
        if not isinstance(classes, dict) or klass not in classes:
            raise _UnpricedError(f"{klass} is not in the price table '{key}' for {self.region}")
        return float(classes[klass])

    def add(self, r: Res, baseline: float, peak: float | None, detail: str, suffix: str = "") -> None:
        self.items.append(
            CostItem(
                urn=r.urn,
                name=r.name + suffix,
                type=r.type,
                baseline_monthly=round(baseline, 2),
                peak_monthly=round(baseline if peak is None else peak, 2),
                detail=detail,
            )
        )

    def skip(self, r: Res, reason: str, kind: str = "unpriced", prop: str | None = None) -> None:
        entry = {"urn": r.urn, "name": r.name, "type": r.type, "reason": reason, "kind": kind}
        if prop:
            entry["property"] = prop
        self.unpriced.append(entry)

    def flat(self, r: Res) -> None:
        key, detail = _FLAT[r.type]
        self.add(r, self.price(key), None, detail)

    # --- ECS ------------------------------------------------------------------------------

    def _cluster_default_strategy(self, svc: Res) -> list[dict[str, Any]] | None:
        """The default capacity provider strategy of the service's cluster: [] when the cluster
        has none (AWS then uses the EC2 launch type), None when the cluster is not in the stack."""
        clusters = self.stack.resolve(svc, "cluster", svc.get("cluster"), (ECS_CLUSTER,))
        if not clusters:
            return None
        cluster = clusters[0]
        for ccp in self.stack.of_type(CLUSTER_CAPACITY_PROVIDERS):
            name = ccp.get("clusterName")
            if cluster.urn in ccp.property_dependencies.get("clusterName", []) or (
                isinstance(name, str) and not is_unknown(name) and name == cluster.get("name")
            ):
                return _strategies(ccp, "defaultCapacityProviderStrategies")
        return []

    def service(self, r: Res) -> None:
        strategies = _strategies(r, "capacityProviderStrategies")
        launch = _known(r, "launchType")
        if _known(r, "schedulingStrategy") == "DAEMON":
            launch = "EC2"  # one task per container instance; Fargate has no daemon services
        how = ""
        tds = aws.task_definition_of(self.stack, r)
        if not strategies and launch is None:
            default = self._cluster_default_strategy(r)
            compat = tds[0].get("requiresCompatibilities") if tds else None
            if default:
                strategies, how = default, "cluster's default strategy; "
            elif isinstance(compat, list) and compat == ["FARGATE"]:
                # Whatever the cluster says, such a task runs only on Fargate: priced on-demand.
                launch, how = "FARGATE", "no launch type, Fargate-only task definition: on-demand; "
            elif default is None:
                raise _UnpricedError("its cluster is not in this stack, so its launch type is not known")
            else:
                launch = "EC2"  # AWS's launch type when nothing says otherwise
        if launch in ("EC2", "EXTERNAL"):
            self.add(
                r, 0.0, None, f"{launch} launch type: its tasks run on container instances, priced there"
            )
            return
        if strategies and not any(s.get("capacityProvider") in FARGATE_PROVIDERS for s in strategies):
            self.add(
                r,
                0.0,
                None,
                f"{how}EC2 capacity providers: its tasks run on container instances, priced there",
            )
            return
        if not tds:
            raise _UnpricedError("its task definition is not in this stack")
        td = tds[0]
        cpu, mem = _known(td, "cpu"), _known(td, "memory")
        vcpu_units, mem_mib = aws.parse_cpu(cpu), aws.parse_memory(mem)
        if not vcpu_units or not mem_mib:
            raise _UnpricedError("its task definition has no task-level cpu/memory")
        platform = _known(td, "runtimePlatform", {})
        arch = "arm64" if str(platform.get("cpuArchitecture") or "X86_64").upper() == "ARM64" else "x86_64"
        vcpu, gb = vcpu_units / 1024, mem_mib / 1024
        task_hour = vcpu * self.price(f"fargate.{arch}.vcpuHour") + gb * self.price(f"fargate.{arch}.gbHour")
        # pulumi-aws sends desiredCount 0 when the program leaves it unset (REPLICA services).
        desired = as_int(_known(r, "desiredCount", 0)) or 0
        targets, _ = aws.scaling_targets_of(self.stack, r)
        maxes = [as_int(_known(t, "maxCapacity")) for t in targets]
        peak_tasks = max([desired, *[m for m in maxes if m is not None]])
        discount = self.price("fargate.spotDiscount")
        # Only assignPublicIp matters here: subnets and groups are unknown on a new stack.
        net = r.get("networkConfiguration")
        public = net.get("assignPublicIp") if isinstance(net, dict) else net
        if is_unknown(public):
            raise _UnknownError("networkConfiguration.assignPublicIp")
        ip_hour = self.price("publicIpv4.hour") if truthy(public) else 0.0

        def monthly(tasks: int) -> tuple[float, float, float]:
            on_demand, spot, ec2 = split_capacity(tasks, strategies)
            fargate = on_demand + spot
            cost = (
                on_demand + spot * (1 - discount)
            ) * task_hour * self.hours + fargate * ip_hour * self.hours
            return cost, spot, ec2

        base, base_spot, base_ec2 = monthly(desired)
        peak, peak_spot, peak_ec2 = monthly(peak_tasks)
        detail = (
            f"{how}{desired} task(s) baseline, {peak_tasks} at peak; {vcpu:g} vCPU/{gb:g} GB {arch} "
            f"= ${task_hour:.5f}/task-hour"
            + (
                f"; {base_spot:g} baseline / {peak_spot:g} peak on Fargate Spot (-{discount:.0%})"
                if peak_spot
                else ""
            )
            + (f"; {base_ec2:g} / {peak_ec2:g} on EC2 capacity providers, priced there" if peak_ec2 else "")
            + ("; + public IPv4 per task" if ip_hour else "")
        )
        self.add(r, base, peak, detail)

    # --- load balancing and networking ----------------------------------------------------

    def load_balancer(self, r: Res) -> None:
        kind = _known(r, "loadBalancerType", "application")
        if kind != "application":
            raise _UnpricedError(f"{kind} load balancers are not in prices.json")
        lcu = self.usage["albLcu"]
        cost = self.hours * (self.price("alb.hour") + lcu * self.price("alb.lcuHour"))
        detail = f"ALB hours + {lcu:g} LCU"
        if not truthy(_known(r, "internal", False)):
            subnets = r.get("subnets")
            azs, how = self.az_count(r, "subnets" if subnets is not None else "subnetMappings")
            detail += f" + {azs} public IPv4 ({how})"
            cost += azs * self.price("publicIpv4.hour") * self.hours
        self.add(r, cost, None, detail)

    def az_count(self, r: Res, key: str) -> tuple[int, str]:
        """How many AZs the subnets in `r[key]` span, and how that was read. While the subnet ids
        are unknown, the awsx Vpc they come from (a property dependency) says how many AZs it
        has; without one the count is the `defaultAzs` usage assumption, and the detail says so."""
        value = r.get(key)
        if not contains_unknown(value) and as_list(value):
            return len(as_list(value)), "one per subnet"
        for urn in r.property_dependencies.get(key, []):
            vpc = self.stack.by_urn.get(urn)
            if vpc is not None and vpc.type == aws.AWSX_VPC:
                # awsx creates subnets in numberOfAvailabilityZones AZs (3 by default).
                azs = as_int(vpc.get("numberOfAvailabilityZones")) or 3
                return azs, f"one per AZ of {vpc.name}"
        return int(self.usage["defaultAzs"]), "AZ count assumed"

    def nat_gateway(self, r: Res, share_gb: float) -> None:
        cost = self.hours * self.price("nat.hour") + share_gb * self.price("nat.gbProcessed")
        detail = f"NAT hours + {share_gb:g} GB processed"
        if r.get("connectivityType") == "private":
            detail += " (private NAT)"
        self.add(r, cost, None, detail)

    def eip(self, r: Res) -> None:
        self.add(r, self.hours * self.price("publicIpv4.hour"), None, "public IPv4 address")

    def awsx_vpc(self, r: Res, share_gb: float, nat_count: int, azs: int, how: str) -> None:
        cost = nat_count * self.hours * (self.price("nat.hour") + self.price("publicIpv4.hour"))
        cost += share_gb * nat_count * self.price("nat.gbProcessed")
        self.add(
            r,
            cost,
            None,
            f"{nat_count} NAT gateway(s) + elastic IP(s) from inputs ({how}; {azs} AZs), "
            f"{share_gb * nat_count:g} GB processed",
        )

    def vpc_endpoint(self, r: Res) -> None:
        kind = _known(r, "vpcEndpointType", "Gateway")
        if kind == "Gateway":
            self.add(r, 0.0, None, "gateway endpoint (free)")
            return
        if kind != "Interface":
            raise _UnpricedError(f"{kind} endpoints are not in prices.json")
        azs, how = self.az_count(r, "subnetIds")
        gb = self.usage["vpcEndpointGbPerMonth"]
        cost = azs * self.hours * self.price("vpcEndpoint.interfaceHourPerAz") + gb * self.price(
            "vpcEndpoint.gbProcessed"
        )
        self.add(r, cost, None, f"interface endpoint in {azs} AZs ({how}) + {gb:g} GB")

    # --- storage --------------------------------------------------------------------------

    def efs(self, r: Res) -> None:
        gb = self.usage["efsGbStored"]
        if _known(r, "throughputMode") == "provisioned":
            raise _UnpricedError("provisioned throughput is not in prices.json")
        self.add(r, gb * self.price("efs.standardGbMonth"), None, f"{gb:g} GB Standard")

    def volume_month(
        self, vtype: str, gb: float, iops: float | None, mibps: float | None
    ) -> tuple[float, str]:
        """Monthly price and label of one EBS volume."""
        label = f"{gb:g} GB {vtype}"
        if vtype == "gp3":
            # 3,000 IOPS and 125 MiB/s come with every gp3 volume; more is charged.
            extra_iops = max(0.0, (iops or 3000) - 3000)
            extra_mibps = max(0.0, (mibps or 125) - 125)
            cost = gb * self.price("ebs.gp3GbMonth")
            if extra_iops:
                cost += extra_iops * self.price("ebs.gp3IopsMonth")
                label += f" + {extra_iops:g} IOPS"
            if extra_mibps:
                cost += extra_mibps * self.price("ebs.gp3MibpsMonth")
                label += f" + {extra_mibps:g} MiB/s"
            return cost, label
        if vtype in ("io1", "io2"):
            if not iops:
                raise _UnpricedError(f"{vtype} volume without iops")
            cost = gb * self.price(f"ebs.{vtype}GbMonth") + iops * self.price(f"ebs.{vtype}IopsMonth")
            return cost, f"{label} + {iops:g} IOPS"
        if vtype in ("gp2", "st1", "sc1", "standard"):
            return gb * self.price(f"ebs.{vtype}GbMonth"), label
        raise _UnpricedError(f"volume type {vtype} is not in prices.json")

    def backups(self) -> _Backups:
        if self._backups is None:
            self._backups = _Backups(self.stack)
        return self._backups

    def ebs_volume(self, r: Res) -> None:
        size = as_float(_known(r, "size"))
        if size is None:
            raise _UnpricedError(
                "its size comes from a snapshot" if r.get("snapshotId") else "it has no size"
            )
        # CreateVolume's default type is gp2.
        vtype = str(_known(r, "type", "gp2"))
        cost, label = self.volume_month(
            vtype, size, as_float(_known(r, "iops")), as_float(_known(r, "throughput"))
        )
        backups = self.backups()
        vaults = backups.vaults_holding(r)
        if vaults:
            label += " (recovery points priced on vault " + ", ".join(f"'{v.name}'" for v in vaults) + ")"
        self.add(r, cost, None, label)
        covered = backups.coverage.covers(r)
        if vaults or covered is False:
            return
        gb = size * self.usage["ebsSnapshotGbPerVolumeGb"]
        why = (
            "kept by its backup plan or DLM policy"
            if covered
            else "assumed: whether a backup selection picks it is not known yet"
        )
        self.add(
            r, gb * self.price("ebs.snapshotGbMonth"), None, f"{gb:g} GB of snapshots ({why})", " snapshots"
        )

    def backup_vault(self, r: Res) -> None:
        """What a vault keeps: the snapshots of the EBS volumes of this stack its plans back up
        (or copy into it), from their sizes; anything else (EFS file systems, what a selection
        picks by tag) the `backupGbPerVault` assumption, as is a vault no plan of this stack uses."""
        backups = self.backups()
        volumes, other = backups.contents(r)
        cost, parts = 0.0, []
        if other is not False:
            gb = self.usage["backupGbPerVault"]
            cost += gb * self.price("backup.efsWarmGbMonth")
            parts.append(
                f"{gb:g} GB of backups" + ("" if other else " (assumed: no plan of this stack uses it)")
            )
        for volume in volumes:
            size = as_float(volume.get("size"))
            if size is None or is_unknown(volume.get("size")):
                continue  # the volume itself is unpriced, and says why
            gb = size * self.usage["ebsSnapshotGbPerVolumeGb"]
            cost += gb * self.price("ebs.snapshotGbMonth")
            parts.append(f"{gb:g} GB of snapshots of {volume.label()}")
        self.add(r, cost, None, " + ".join(parts) or "no recovery points")

    def ssm_parameter(self, r: Res) -> None:
        """Standard parameters are free; advanced ones are billed per parameter-month."""
        tier = _known(r, "tier", "Standard")
        if tier == "Intelligent-Tiering":
            value = _known(r, "value", "")
            big = len(str(value).encode()) > SSM_STANDARD_MAX_BYTES
            tier = "Advanced" if big or _known(r, "policies") else "Standard"
        if tier == "Advanced":
            self.add(r, self.price("ssm.advancedParameterMonth"), None, "advanced parameter")
        elif tier != "Standard":
            raise _UnpricedError(f"tier {tier} is not in prices.json")

    # --- EC2 ------------------------------------------------------------------------------

    def _volume(self, ebs: Mapping[str, Any] | None) -> tuple[str, float, float | None, float | None, bool]:
        """(type, GB, IOPS, MiB/s, size assumed) of one EBS device; None is the AMI's root volume."""
        ebs = ebs or {}
        for key in ("volumeSize", "volumeType", "iops", "throughput"):
            if is_unknown(ebs.get(key)):
                raise _UnknownError(f"block device {key}")
        size = as_float(ebs.get("volumeSize"))
        return (
            # The AMI's root volume (ECS-optimized AMIs: gp3); a mapping that names no type
            # gets the block device default, gp2.
            str(ebs.get("volumeType") or ("gp2" if ebs else "gp3")),
            size if size is not None else self.usage["amiRootVolumeGb"],
            as_float(ebs.get("iops")),
            as_float(ebs.get("throughput")),
            size is None,
        )

    def launch_of(self, r: Res) -> _Launch:
        """Instance type, volumes and public IP request of an instance, launch template or
        launch configuration (the devices and IP requests as the compute policies read them)."""
        devices = ec2.block_devices(r)
        requests = ec2.public_ip_requests(r)
        if devices is None or contains_unknown(requests):
            raise _UnknownError("blockDeviceMappings" if devices is None else "associatePublicIpAddress")
        public = truthy(requests[0]) if requests and requests[0] is not None else None
        itype = _known(r, "instanceType")
        says_nothing = all(d.ebs is None for d in devices)
        if r.type == ec2.INSTANCE and r.get("launchTemplate") and (itype is None or says_nothing):
            # What the instance does not say, its launch template does.
            inherited = self.launch_of(self._template_of(r))
            return _Launch(
                str(itype or inherited.instance_type),
                inherited.volumes if says_nothing else [self._volume(d.ebs) for d in devices],
                inherited.public_ip if public is None else public,
            )
        if not itype:
            raise _UnpricedError("no instance type")
        return _Launch(str(itype), [self._volume(d.ebs) for d in devices], public)

    def _template_of(self, r: Res) -> Res:
        # An id still unknown resolves through the engine's property dependencies.
        found = self.stack.resolve(r, "launchTemplate", ec2.template_ref(r), (ec2.LAUNCH_TEMPLATE,))
        if not found:
            raise _UnpricedError("its launch template is not in this stack")
        return found[0]

    def instance_month(self, launch: _Launch, subnets: list[Any]) -> tuple[float, str]:
        """Monthly price of one instance (hours, volumes, public IPv4) and its description."""
        cost = self.rate(EC2_TABLE, launch.instance_type) * self.hours
        parts = [launch.instance_type]
        for vtype, gb, iops, mibps, assumed in launch.volumes:
            vol_cost, label = self.volume_month(vtype, gb, iops, mibps)
            cost += vol_cost
            parts.append(label + (" (size assumed from the AMI)" if assumed else ""))
        public = launch.public_ip
        if public is None:
            kinds = {aws.subnet_kind(self.stack, s)[0] for s in subnets}
            public = kinds != {aws.PRIVATE}
            if public:
                parts.append("public IPv4 (assumed: its subnet's auto-assign setting is not visible)")
        elif public:
            parts.append("public IPv4")
        if public:
            cost += self.price("publicIpv4.hour") * self.hours
        return cost, " + ".join(parts)

    def instance(self, r: Res) -> None:
        if _known(r, "instanceMarketOptions") or _known(r, "tenancy", "default") != "default":
            raise _UnpricedError("Spot and dedicated instances are not in prices.json")
        cost, detail = self.instance_month(self.launch_of(r), [r.get("subnetId")])
        self.add(r, cost, None, detail)

    def autoscaling_group(self, r: Res) -> None:
        if r.get("mixedInstancesPolicy"):
            raise _UnpricedError("mixed instances policies (several types, Spot) are not modelled")
        minimum = as_int(_known(r, "minSize", 0)) or 0
        # An unset desired capacity starts at the group's minimum.
        desired = as_int(_known(r, "desiredCapacity", minimum)) or 0
        peak = max(desired, as_int(_known(r, "maxSize", desired)) or 0)
        if r.get("launchConfiguration"):
            found = self.stack.resolve(
                r, "launchConfiguration", r.get("launchConfiguration"), (ec2.LAUNCH_CONFIGURATION,)
            )
            if not found:
                raise _UnpricedError("its launch configuration is not in this stack")
            source = found[0]
        else:
            source = self._template_of(r)
        # Subnets matter only when the launch settings leave the public IP to them.
        per_instance, detail = self.instance_month(
            self.launch_of(source), as_list(r.get("vpcZoneIdentifiers"))
        )
        self.add(
            r,
            desired * per_instance,
            peak * per_instance,
            f"{desired} instance(s) baseline, {peak} at peak, each {detail} = ${per_instance:,.2f}/month",
        )

    # --- databases and caches -------------------------------------------------------------

    def rds(self, r: Res) -> None:
        engine = _known(r, "engine")
        if engine is None:
            raise _UnpricedError("its engine comes from a source database or snapshot")
        klass = _known(r, "instanceClass")
        if not klass:
            raise _UnpricedError("no instance class")
        multi = truthy(_known(r, "multiAz", False))
        factor = 1.0
        try:
            hourly = self.rate(rds_table(engine, multi), klass)
        except _UnpricedError:
            if not multi:
                raise
            # No Multi-AZ table: a Multi-AZ instance deployment bills the standby like the primary.
            hourly = self.rate(rds_table(engine), klass)
            factor = self.price("rds.multiAzFactor")
        iops = as_float(_known(r, "iops"))
        # CreateDBInstance's default storage: io1 when iops is given, gp3 otherwise.
        storage_type = _known(r, "storageType", "io1" if iops else "gp3")
        if storage_type not in ("gp2", "gp3"):
            raise _UnpricedError(f"{storage_type} storage is not in prices.json")
        allocated = as_float(_known(r, "allocatedStorage"))
        gb = allocated if allocated is not None else self.usage["rdsStorageGbDefault"]
        included_iops, included_mibps = (3000, 125) if gb < 400 else (12000, 500)
        throughput = as_float(_known(r, "storageThroughput"))
        if storage_type == "gp3" and ((iops or 0) > included_iops or (throughput or 0) > included_mibps):
            raise _UnpricedError("gp3 IOPS or throughput above the included baseline are not in prices.json")
        storage_factor = 2.0 if multi else 1.0
        cost = factor * hourly * self.hours + storage_factor * gb * self.price("rds.gp3GbMonth")
        secret_cost, secret = self.master_user_secret(r)
        self.add(
            r,
            cost + secret_cost,
            None,
            f"{klass} {engine} {'Multi-AZ' if multi else 'Single-AZ'} + {gb:g} GB {storage_type}"
            + ("" if allocated is not None else " (size assumed)")
            + secret,
        )

    def master_user_secret(self, r: Res) -> tuple[float, str]:
        """The Secrets Manager secret RDS creates and rotates for manageMasterUserPassword: billed
        per month like any secret, though no aws.secretsmanager.Secret of the stack stands for it."""
        if not truthy(_known(r, "manageMasterUserPassword", False)):
            return 0.0, ""
        return self.price("secretsmanager.secretMonth"), " + its RDS-managed master user secret"

    def aurora_cluster(self, r: Res) -> None:
        engine = str(_known(r, "engine", ""))
        if not engine.startswith("aurora"):
            raise _UnpricedError(f"Multi-AZ DB clusters ({engine or 'no engine'}) are not in prices.json")
        if _known(r, "storageType") == "aurora-iopt1":
            raise _UnpricedError("Aurora I/O-Optimized is not in prices.json")
        gb, io = self.usage["auroraStorageGb"], self.usage["auroraIoMillionPerMonth"]
        cost = gb * self.price("aurora.storageGbMonth") + io * self.price("aurora.ioMillion")
        secret_cost, secret = self.master_user_secret(r)
        self.add(
            r,
            cost + secret_cost,
            None,
            f"{gb:g} GB Aurora storage + {io:g} million I/O requests (instances priced apart)" + secret,
        )

    def aurora_instance(self, r: Res) -> None:
        klass = _known(r, "instanceClass")
        engine = _known(r, "engine")
        if not klass or not engine:
            raise _UnpricedError("no instance class or engine")
        if klass != "db.serverless":
            self.add(r, self.rate(rds_table(engine), klass) * self.hours, None, f"{klass} {engine}")
            return
        clusters = self.stack.resolve(r, "clusterIdentifier", r.get("clusterIdentifier"), (RDS_CLUSTER,))
        if not clusters:
            raise _UnpricedError("its cluster (and so its capacity range) is not in this stack")
        scaling = _known(clusters[0], "serverlessv2ScalingConfiguration", {})
        low, high = as_float(scaling.get("minCapacity")), as_float(scaling.get("maxCapacity"))
        if low is None or high is None:
            raise _UnpricedError("its cluster sets no Serverless v2 capacity range")
        acu = self.price("aurora.acuHour") * self.hours
        self.add(r, low * acu, high * acu, f"Serverless v2, {low:g} ACU baseline, {high:g} at peak")

    def cache_cluster(self, r: Res) -> None:
        if r.get("replicationGroupId") is not None:
            self.add(r, 0.0, None, "node of a replication group, priced there")
            return
        engine, node = _known(r, "engine"), _known(r, "nodeType")
        if not engine or not node:
            raise _UnpricedError("no engine or node type")
        nodes = as_int(_known(r, "numCacheNodes", 1)) or 1
        self.add(
            r,
            nodes * self.rate(elasticache_table(engine), node) * self.hours,
            None,
            f"{nodes} x {node} {engine}",
        )

    def cache_replication_group(self, r: Res) -> None:
        engine, node = str(_known(r, "engine", "redis")), _known(r, "nodeType")
        if not node:
            raise _UnpricedError("no node type")
        shards = as_int(_known(r, "numNodeGroups"))
        if shards:
            nodes = shards * (1 + (as_int(_known(r, "replicasPerNodeGroup", 0)) or 0))
        else:
            nodes = as_int(_known(r, "numCacheClusters", 1)) or 1
        self.add(
            r,
            nodes * self.rate(elasticache_table(engine), node) * self.hours,
            None,
            f"{nodes} x {node} {engine}",
        )

    # --- logs -----------------------------------------------------------------------------

    def log_group(self, r: Res, flow_log_targets: set[str]) -> None:
        stored = self.usage["logStoredGbPerGroup"]
        cost = stored * self.price("cloudwatch.logStorageGbMonth")
        detail = f"{stored:g} GB stored"
        if r.get("arn") in flow_log_targets or r.urn in flow_log_targets:
            detail += " (ingestion priced with its flow log)"
        else:
            ingest = self.usage["logIngestGbPerGroup"]
            cost += ingest * self.price("cloudwatch.logIngestGb")
            detail = f"{ingest:g} GB ingested + " + detail
        self.add(r, cost, None, detail)


class _Backups:
    """Which AWS Backup vaults of this stack keep which recovery points: a selection belongs to a
    plan (planId), a plan writes into the vault its rules target (targetVaultName) and copies into
    the vaults its copy actions name (destinationVaultArn). Ids and names unknown before creation
    link through the engine's property dependencies (planId, rules)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.coverage = ec2.BackupCoverage(stack)
        self._vaults_of_plan: dict[str, list[Res]] = {}
        vaults = stack.of_type(aws.BACKUP_VAULT)
        for plan in stack.of_type(BACKUP_PLAN):
            named: set[Any] = set()
            for rule in as_list(plan.get("rules")):
                if not isinstance(rule, dict):
                    continue
                named.add(rule.get("targetVaultName"))
                named.update(
                    c.get("destinationVaultArn")
                    for c in as_list(rule.get("copyActions"))
                    if isinstance(c, dict)
                )
            deps = set(plan.property_dependencies.get("rules", ()))
            self._vaults_of_plan[plan.urn] = [
                v for v in vaults if v.urn in deps or _known_strings(v.get("name"), v.get("arn")) & named
            ]

    def plans_of(self, selection: Res) -> list[Res]:
        return self.stack.resolve(selection, "planId", selection.get("planId"), (BACKUP_PLAN,)) or []

    def vaults_of(self, selection: Res) -> list[Res]:
        return self.stack.ordered(
            v for plan in self.plans_of(selection) for v in self._vaults_of_plan[plan.urn]
        )

    def vaults_holding(self, volume: Res) -> list[Res]:
        """The vaults of this stack that keep `volume`'s recovery points."""
        return self.stack.ordered(
            v for sel in self.coverage.selections_covering(volume) for v in self.vaults_of(sel)
        )

    def contents(self, vault: Res) -> tuple[list[Res], bool | None]:
        """(EBS volumes of this stack whose recovery points `vault` keeps, whether it also keeps
        something else); None for the second when no plan of this stack writes into it."""
        selections = [sel for sel in self.coverage.selections if vault in self.vaults_of(sel)]
        if not selections:
            return [], None
        volumes = self.stack.of_type(ec2.EBS_VOLUME)
        held = [v for v in volumes if vault in self.vaults_holding(v)]
        return held, any(_picks_more_than(sel, held) for sel in selections)


def _known_strings(*values: Any) -> set[str]:
    return {v for v in values if isinstance(v, str) and v and not is_unknown(v)}


def _picks_more_than(selection: Res, volumes: list[Res]) -> bool:
    """Does a selection pick anything but these EBS volumes (an EFS file system, a database, or
    whatever its tags or an unresolved reference pick)?"""
    if selection.get("selectionTags") or is_unknown(selection.get("selectionTags")):
        return True
    resources = selection.get("resources")
    refs = [resources] if is_unknown(resources) else as_list(resources)
    urns = {v.urn for v in volumes}
    known = {str(v.get(k)) for v in volumes for k in ("arn", "id")}
    for ref in refs:
        if is_unknown(ref):
            deps = selection.property_dependencies.get("resources", [])
            if not deps or any(d not in urns for d in deps):
                return True
        elif ref not in known:
            return True
    return False


def split_capacity(tasks: int, strategies: list[dict[str, Any]]) -> tuple[float, float, float]:
    """(Fargate on-demand, Fargate Spot, EC2 capacity provider) tasks for `tasks` under ECS
    capacity provider strategies: each provider's `base` is filled first (in order), the rest
    is split by `weight` (all to the first provider when every weight is 0)."""
    if not strategies:
        return float(tasks), 0.0, 0.0
    shares = [0.0] * len(strategies)
    remaining = float(tasks)
    for i, s in enumerate(strategies):
        base = min(float(as_int(s.get("base")) or 0), remaining)
        shares[i] += base
        remaining -= base
    weights = [float(as_int(s.get("weight")) or 0) for s in strategies]
    total = sum(weights)
    for i, w in enumerate(weights):
        shares[i] += remaining * (w / total if total else (1.0 if i == 0 else 0.0))
    on_demand = sum(
        n for s, n in zip(strategies, shares, strict=True) if s.get("capacityProvider") == "FARGATE"
    )
    spot = sum(
        n for s, n in zip(strategies, shares, strict=True) if s.get("capacityProvider") == "FARGATE_SPOT"
    )
    return on_demand, spot, float(tasks) - on_demand - spot


def _to_res(item: Any) -> Res:
    if isinstance(item, Res):
        return item
    if isinstance(item, Mapping):
        outputs = plain(item.get("outputs") or item.get("props") or {})
        inputs = plain(item.get("inputs") or {})
        name = str(item.get("name", ""))
        typ = str(item.get("type", ""))
        return Res(
            type=typ,
            name=name,
            urn=str(item.get("urn") or f"urn:pulumi:stack::project::{typ}::{name}"),
            props={**outputs, **inputs},
            parent=item.get("parent"),
            protect=bool(item.get("protect", False)),
            dependencies=list(item.get("dependencies") or []),
            property_dependencies={k: list(v) for k, v in (item.get("propertyDependencies") or {}).items()},
        )
    return Res.from_policy_resource(item)


def to_resources(resources: Iterable[Any]) -> list[Res]:
    """The model's view of the input resources (mappings or PolicyResources)."""
    return [_to_res(r) for r in resources]


def _descendants(stack: Stack, root: Res) -> list[Res]:
    out: list[Res] = []
    frontier = [root.urn]
    while frontier:
        urn = frontier.pop()
        for r in stack.children_of(urn):
            out.append(r)
            frontier.append(r.urn)
    return out


def merged_usage(usage: Mapping[str, Any] | None) -> dict[str, float]:
    merged = dict(DEFAULT_USAGE)
    for k, v in (usage or {}).items():
        f = as_float(v)
        if f is not None:
            merged[k] = f
    return merged


def awsx_nat_plan(stack: Stack) -> list[tuple[Res, int, int, str]]:
    """awsx Vpcs seen without their children (offline previews), with the NAT gateways their
    inputs ask for: (vpc, NAT count, AZ count, how the count was read)."""
    plans = []
    for vpc in stack.of_type(aws.AWSX_VPC):
        if any(k.type == NAT_GATEWAY for k in _descendants(stack, vpc)):
            continue
        azs = as_int(vpc.get("numberOfAvailabilityZones")) or len(as_list(vpc.get("privateSubnetIds"))) or 3
        nat_cfg = vpc.get("natGateways")
        strategy = nat_cfg.get("strategy") if isinstance(nat_cfg, dict) else None
        how = f"strategy {strategy}"
        if strategy is None or is_unknown(strategy):
            strategy, how = "OnePerAz", "strategy not visible: awsx default OnePerAz assumed"
        count = {"None": 0, "Single": 1, "OnePerAz": azs}.get(str(strategy), -1)
        plans.append((vpc, count, azs, how))
    return plans


def estimate(
    resources: Iterable[Any],
    usage: Mapping[str, Any] | None = None,
    region: str = "us-west-2",
    prices: Mapping[str, Any] | None = None,
    advice: bool = False,
) -> CostEstimate:
    """Price a list of resources; see the module docstring. With `advice`, also list the levers
    that would lower this stack's bill (cost_model.advice), sorted by saving."""
    price_data = prices if prices is not None else load_prices()
    res = to_resources(resources)
    result = _price(Stack(res), price_data, region, merged_usage(usage))
    if advice:
        from .advice import advise

        result.advice = advise(res, usage=usage, region=region, prices=price_data, base=result)
    return result


def _price(stack: Stack, price_data: Mapping[str, Any], region: str, usage: dict[str, float]) -> CostEstimate:
    p = _Pricer(stack, price_data, region, usage)
    result = CostEstimate(
        currency=str(price_data.get("currency", "USD")),
        region=region,
        baseline_monthly=0.0,
        peak_monthly=0.0,
        assumptions={"hoursPerMonth": p.hours, **usage},
    )
    if not p.table:
        for r in stack.resources:
            p.skip(r, f"no prices for region {region}")
        result.unpriced = p.unpriced
        return result

    parents = {r.parent for r in stack.resources if r.parent}
    synthetic = {vpc.urn: (vpc, n, azs, how) for vpc, n, azs, how in awsx_nat_plan(stack)}
    nat_total = len(stack.of_type(NAT_GATEWAY)) + sum(max(n, 0) for _, n, _, _ in synthetic.values())
    share_gb = usage["natGbPerMonth"] / nat_total if nat_total else 0.0
    flow_targets: set[str] = set()
    for fl in stack.of_type(aws.FLOW_LOG):
        dest = fl.get("logDestination")
        # Every ARN not known yet reads as the same placeholder: only a known one names its group.
        if isinstance(dest, str) and not is_unknown(dest):
            flow_targets.add(dest)
        flow_targets.update(fl.property_dependencies.get("logDestination", []))
    handlers = {
        aws.SERVICE: p.service,
        NAT_GATEWAY: lambda r: p.nat_gateway(r, share_gb),
        EIP: p.eip,
        aws.EFS_FS: p.efs,
        aws.RDS_INSTANCE: p.rds,
        RDS_CLUSTER: p.aurora_cluster,
        RDS_CLUSTER_INSTANCE: p.aurora_instance,
        CACHE_CLUSTER: p.cache_cluster,
        CACHE_REPLICATION_GROUP: p.cache_replication_group,
        ec2.INSTANCE: p.instance,
        ec2.AUTOSCALING_GROUP: p.autoscaling_group,
        ec2.EBS_VOLUME: p.ebs_volume,
        VPC_ENDPOINT: p.vpc_endpoint,
        aws.LOG_GROUP: lambda r: p.log_group(r, flow_targets),
        **{t: p.load_balancer for t in aws.LOAD_BALANCERS},
        **{t: p.flat for t in _FLAT},
    }

    for r in stack.resources:
        t = r.type
        try:
            if r.urn in synthetic:
                vpc, count, azs, how = synthetic[r.urn]
                if count < 0:
                    raise _UnpricedError(f"unknown NAT strategy ({how})")
                p.awsx_vpc(vpc, share_gb, count, azs, how)
            elif t in handlers:
                handlers[t](r)
            elif t == aws.FLOW_LOG:
                gb = usage["flowLogGbPerMonth"]
                p.add(r, gb * p.price("cloudwatch.logIngestGb"), None, f"{gb:g} GB vended log ingestion")
            elif t == aws.BACKUP_VAULT:
                p.backup_vault(r)
            elif t == "aws:servicediscovery/service:Service":
                n = usage["cloudMapInstancesPerService"]
                p.add(
                    r, n * p.price("cloudmap.registeredResourceMonth"), None, f"{n:g} registered instance(s)"
                )
            elif t == aws.ECR_REPO:
                gb = usage["ecrGbPerRepo"]
                p.add(r, gb * p.price("ecr.storageGbMonth"), None, f"{gb:g} GB images")
            elif t in aws.BUCKETS:
                gb = usage["s3GbPerBucket"]
                p.add(r, gb * p.price("s3.standardGbMonth"), None, f"{gb:g} GB Standard")
            elif t == SSM_PARAMETER:
                p.ssm_parameter(r)
            elif t == PULL_THROUGH_CACHE_RULE:
                gb = usage["ecrCachedGbPerRule"]
                p.add(
                    r,
                    gb * p.price("ecr.storageGbMonth"),
                    None,
                    f"{gb:g} GB of cached images (the rule is free)",
                )
            elif t in FREE_TYPES or t.startswith(FREE_PREFIXES) or t in FREE_EXACT_PACKAGES:
                continue
            elif t.split(":", 1)[0] not in CLOUD_PACKAGES and r.urn in parents:
                continue  # a component: its children are priced
            elif t == aws.AWSX_VPC or (t.startswith("awsx:") and r.urn in parents):
                continue  # awsx component whose children are present and priced
            elif t == CACHE_SERVERLESS:
                raise _UnpricedError(
                    "ElastiCache Serverless bills stored GB and ECPUs, which are not modelled"
                )
            else:
                p.skip(r, "type not in the cost model")
        except _UnknownError as why:
            p.skip(r, str(why), kind="unknown", prop=why.prop)
        except _UnpricedError as why:
            p.skip(r, str(why))

    result.items = sorted(p.items, key=lambda i: (-i.peak_monthly, i.name))
    result.unpriced = p.unpriced
    result.prices = dict(sorted(p.used.items()))
    result.baseline_monthly = round(sum(i.baseline_monthly for i in p.items), 2)
    result.peak_monthly = round(sum(i.peak_monthly for i in p.items), 2)
    return result
