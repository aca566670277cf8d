"""Estimate a stack's monthly AWS bill at the baseline (desired task counts) and at the peak
(autoscaling maximums), from resource types and properties alone.

Input: a list of resources, each either a mapping ``{"type", "name", "urn", "props" | "inputs" |
"outputs", "parent", "dependencies", "propertyDependencies"}`` (what an offline preview records)
or a pulumi_policy ``PolicyResource`` (what a stack policy gets). Output: a ``CostEstimate``
whose ``to_dict()`` is JSON with ``currency, baseline_monthly, peak_monthly, items, unpriced``.

Rules: prices are data (prices.json, with unit, source and date per figure); usage that the
resources do not say (GB through NAT, GB stored, log GB, LCUs) comes from ``usage`` with
documented defaults (DEFAULT_USAGE); a type the model cannot price is listed in ``unpriced``,
never counted as zero; free types are known as free.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .. import _aws as aws
from .._util import Res, Stack, as_float, as_int, as_list, is_unknown, plain, truthy

PRICES_FILE = Path(__file__).with_name("prices.json")

DEFAULT_USAGE: dict[str, float] = {
    # Total GB per month through all NAT gateways (image pulls, LLM API calls, OS updates).
    "natGbPerMonth": 20.0,
    # Average Load Balancer Capacity Units per ALB (a quiet API uses well under 1).
    "albLcu": 1.0,
    # GB stored per EFS file system (SQLite + Qdrant data).
    "efsGbStored": 5.0,
    # GB of backups kept per AWS Backup vault.
    "backupGbPerVault": 10.0,
    # GB ingested per month and GB kept, per CloudWatch log group.
    "logIngestGbPerGroup": 1.0,
    "logStoredGbPerGroup": 2.0,
    # GB of VPC flow log records per month, per flow log.
    "flowLogGbPerMonth": 2.0,
    # Storage of an RDS instance that does not say allocatedStorage.
    "rdsStorageGbDefault": 20.0,
    # GB per ECR repository and per S3 bucket.
    "ecrGbPerRepo": 2.0,
    "s3GbPerBucket": 1.0,
    # GB per month through each interface VPC endpoint.
    "vpcEndpointGbPerMonth": 1.0,
    # Availability zones assumed for an internet-facing ALB whose subnets are unknown.
    "defaultAzs": 2.0,
    # Tasks registered in each Cloud Map service (the Qdrant service is a singleton).
    "cloudMapInstancesPerService": 1.0,
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
    }
)
# random: values computed by the engine, no cloud resource behind them.
FREE_PREFIXES = ("aws:iam/", "pulumi:providers:", "random:")
FREE_EXACT_PACKAGES = ("pulumi:pulumi:Stack",)
CLOUD_PACKAGES = ("aws", "awsx", "aws-native")


@dataclass
class CostItem:
    urn: str
    name: str
    type: str
    baseline_monthly: float
    peak_monthly: float
    detail: str


@dataclass
class CostEstimate:
    currency: str
    region: str
    baseline_monthly: float
    peak_monthly: float
    items: list[CostItem] = field(default_factory=list)
    unpriced: list[dict[str, str]] = field(default_factory=list)
    assumptions: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, camelCase keys: currency, region, baselineMonthly, peakMonthly, items, unpriced."""
        return {
            "currency": self.currency,
            "region": self.region,
            "baselineMonthly": self.baseline_monthly,
            "peakMonthly": self.peak_monthly,
            "items": [
                {
                    "urn": i.urn,
                    "name": i.name,
                    "type": i.type,
                    "baselineMonthly": i.baseline_monthly,
                    "peakMonthly": i.peak_monthly,
                    "detail": i.detail,
                }
                for i in self.items
            ],
            "unpriced": [dict(u) for u in self.unpriced],
            "assumptions": dict(self.assumptions),
        }

    def top_items(self, n: int = 5, peak: bool = False) -> list[CostItem]:
        key = (lambda i: i.peak_monthly) if peak else (lambda i: i.baseline_monthly)
        return sorted(self.items, key=key, reverse=True)[:n]


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def load_prices(path: str | Path = PRICES_FILE) -> dict[str, Any]:
    return _load(str(path))


class _UnpricedError(Exception):
    """Raised inside a pricer to send a resource to `unpriced` with a reason."""


class _Pricer:
    def __init__(self, stack: Stack, prices: dict[str, Any], region: str, usage: dict[str, float]) -> None:
        self.stack = stack
        self.hours = float(prices.get("hoursPerMonth", 730))
        self.table: dict[str, Any] = prices.get("regions", {}).get(region, {})
        self.usage = usage
        self.items: list[CostItem] = []
        self.unpriced: list[dict[str, str]] = []

    def price(self, key: str) -> float:
        entry = self.table.get(key)
        if not isinstance(entry, dict) or "usd" not in entry:
            raise _UnpricedError(f"no price '{key}' in prices.json for this region")
        return float(entry["usd"])

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

    def skip(self, r: Res, reason: str) -> None:
        self.unpriced.append({"urn": r.urn, "name": r.name, "type": r.type, "reason": reason})

    # --- per type -----------------------------------------------------------------------

    def service(self, r: Res) -> None:
        if r.get("launchType") == "EC2":
            raise _UnpricedError("EC2 launch type: container instances are not modelled")
        tds = aws.task_definition_of(self.stack, r)
        if not tds:
            raise _UnpricedError("task definition not found in the stack")
        td = tds[0]
        cpu, mem = td.get("cpu"), td.get("memory")
        if is_unknown(cpu) or is_unknown(mem):
            raise _UnpricedError("task cpu/memory unknown during preview")
        from ..reliability import parse_cpu, parse_memory

        vcpu_units, mem_mib = parse_cpu(cpu), parse_memory(mem)
        if not vcpu_units or not mem_mib:
            raise _UnpricedError("task definition has no task-level cpu/memory")
        platform = td.get("runtimePlatform") if isinstance(td.get("runtimePlatform"), dict) else {}
        arch = "arm64" if str(platform.get("cpuArchitecture", "X86_64")).upper() == "ARM64" else "x86_64"
        vcpu, gb = vcpu_units / 1024, mem_mib / 1024
        task_hour = vcpu * self.price(f"fargate.{arch}.vcpuHour") + gb * self.price(f"fargate.{arch}.gbHour")
        desired_raw = r.get("desiredCount")
        if is_unknown(desired_raw):
            raise _UnpricedError("desiredCount unknown during preview")
        desired = as_int(desired_raw) or 0
        targets, _ = aws.scaling_targets_of(self.stack, r)
        maxes = [as_int(t.get("maxCapacity")) for t in targets if not is_unknown(t.get("maxCapacity"))]
        if any(is_unknown(t.get("maxCapacity")) for t in targets):
            raise _UnpricedError("autoscaling maxCapacity unknown during preview")
        peak_tasks = max([desired, *[m for m in maxes if m is not None]])
        strategies = [s for s in as_list(r.get("capacityProviderStrategies")) if isinstance(s, dict)]
        discount = self.price("fargate.spotDiscount")
        net = r.get("networkConfiguration") if isinstance(r.get("networkConfiguration"), dict) else {}
        ip_hour = self.price("publicIpv4.hour") if truthy(net.get("assignPublicIp")) else 0.0

        def monthly(tasks: int) -> tuple[float, float]:
            on_demand, spot = split_spot(tasks, strategies)
            cost = (on_demand + spot * (1 - discount)) * task_hour * self.hours + tasks * ip_hour * self.hours
            return cost, spot

        base, base_spot = monthly(desired)
        peak, peak_spot = monthly(peak_tasks)
        detail = (
            f"{desired} task(s) baseline, {peak_tasks} at peak; {vcpu:g} vCPU/{gb:g} GB {arch} "
            f"= ${task_hour:.5f}/task-hour"
            + (
                f"; {base_spot:g} baseline / {peak_spot:g} peak on Fargate Spot (-{discount:.0%})"
                if peak_spot
                else ""
            )
            + ("; + public IPv4 per task" if ip_hour else "")
        )
        self.add(r, base, peak, detail)

    def load_balancer(self, r: Res) -> None:
        kind = r.get("loadBalancerType") or "application"
        if kind != "application":
            raise _UnpricedError(f"{kind} load balancers are not in prices.json")
        lcu = self.usage["albLcu"]
        cost = self.hours * (self.price("alb.hour") + lcu * self.price("alb.lcuHour"))
        detail = f"ALB hours + {lcu:g} LCU"
        if not truthy(r.get("internal")):
            subnets = r.get("subnets")
            mappings = r.get("subnetMappings")
            azs = len(as_list(subnets)) or len(as_list(mappings))
            if is_unknown(subnets) or is_unknown(mappings) or not azs:
                azs = int(self.usage["defaultAzs"])
                detail += f" + {azs} public IPv4 (AZ count assumed)"
            else:
                detail += f" + {azs} public IPv4 (one per AZ)"
            cost += azs * self.price("publicIpv4.hour") * self.hours
        self.add(r, cost, None, detail)

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

    def efs(self, r: Res) -> None:
        gb = self.usage["efsGbStored"]
        detail = f"{gb:g} GB Standard"
        if r.get("throughputMode") == "provisioned":
            detail += " (provisioned throughput NOT priced)"
        self.add(r, gb * self.price("efs.standardGbMonth"), None, detail)

    def rds(self, r: Res) -> None:
        engine = str(r.get("engine") or "postgres")
        if not engine.startswith("postgres"):
            raise _UnpricedError(f"engine {engine} not in prices.json")
        klass = r.get("instanceClass")
        if is_unknown(klass):
            raise _UnpricedError("instanceClass unknown during preview")
        entry = self.table.get("rds.postgres.instanceHour", {})
        rate = (entry.get("classes") or {}).get(klass) if isinstance(entry, dict) else None
        if rate is None:
            raise _UnpricedError(f"instance class {klass} not in prices.json")
        storage_type = r.get("storageType") or "gp3"
        if storage_type not in ("gp2", "gp3"):
            raise _UnpricedError(f"storage type {storage_type} not in prices.json")
        gb = as_float(r.get("allocatedStorage")) or self.usage["rdsStorageGbDefault"]
        factor = self.price("rds.multiAzFactor") if truthy(r.get("multiAz")) else 1.0
        cost = factor * (float(rate) * self.hours + gb * self.price("rds.gp3GbMonth"))
        self.add(
            r, cost, None, f"{klass} {'Multi-AZ' if factor > 1 else 'Single-AZ'} + {gb:g} GB {storage_type}"
        )

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

    def vpc_endpoint(self, r: Res) -> None:
        kind = r.get("vpcEndpointType") or "Gateway"
        if kind == "Gateway":
            self.add(r, 0.0, None, "gateway endpoint (free)")
            return
        if kind != "Interface":
            raise _UnpricedError(f"{kind} endpoints not in prices.json")
        subnets = r.get("subnetIds")
        azs = len(as_list(subnets)) if not is_unknown(subnets) else 0
        azs = azs or int(self.usage["defaultAzs"])
        gb = self.usage["vpcEndpointGbPerMonth"]
        cost = azs * self.hours * self.price("vpcEndpoint.interfaceHourPerAz") + gb * self.price(
            "vpcEndpoint.gbProcessed"
        )
        self.add(r, cost, None, f"interface endpoint in {azs} AZs + {gb:g} GB")


def split_spot(tasks: int, strategies: list[dict[str, Any]]) -> tuple[float, float]:
    """(on-demand tasks, spot tasks) for `tasks` under ECS capacity provider strategies:
    each provider's `base` is filled first (in order), the rest is split by `weight`."""
    if not strategies:
        return float(tasks), 0.0
    remaining = float(tasks)
    spot = 0.0
    for s in strategies:
        base = min(float(as_int(s.get("base")) or 0), remaining)
        remaining -= base
        if s.get("capacityProvider") == "FARGATE_SPOT":
            spot += base
    weights = [(s, float(as_int(s.get("weight")) or 0)) for s in strategies]
    total = sum(w for _, w in weights)
    if total > 0:
        spot += remaining * sum(w for s, w in weights if s.get("capacityProvider") == "FARGATE_SPOT") / total
    elif remaining and strategies[0].get("capacityProvider") == "FARGATE_SPOT":
        spot += remaining
    return float(tasks) - spot, spot


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


def _descendants(stack: Stack, root: Res) -> list[Res]:
    out: list[Res] = []
    frontier = [root.urn]
    while frontier:
        urn = frontier.pop()
        for r in stack.children_of(urn):
            out.append(r)
            frontier.append(r.urn)
    return out


def estimate(
    resources: Iterable[Any],
    usage: Mapping[str, Any] | None = None,
    region: str = "us-west-2",
    prices: Mapping[str, Any] | None = None,
) -> CostEstimate:
    """Price a list of resources; see the module docstring."""
    price_data = dict(prices) if prices is not None else load_prices()
    merged_usage = dict(DEFAULT_USAGE)
    for k, v in (usage or {}).items():
        f = as_float(v)
        if f is not None:
            merged_usage[k] = f
    stack = Stack(_to_res(r) for r in resources)
    p = _Pricer(stack, price_data, region, merged_usage)
    result = CostEstimate(
        currency=str(price_data.get("currency", "USD")),
        region=region,
        baseline_monthly=0.0,
        peak_monthly=0.0,
        assumptions={"hoursPerMonth": p.hours, **merged_usage},
    )
    if not p.table:
        for r in stack.resources:
            p.skip(r, f"no prices for region {region}")
        result.unpriced = p.unpriced
        return result

    parents = {r.parent for r in stack.resources if r.parent}
    nat_gws = stack.of_type("aws:ec2/natGateway:NatGateway")
    # awsx Vpcs seen without their children (offline previews) are priced from their inputs.
    synthetic: list[tuple[Res, int, int, str]] = []
    for vpc in stack.of_type(aws.AWSX_VPC):
        kids = _descendants(stack, vpc)
        if any(k.type == "aws:ec2/natGateway:NatGateway" for k in kids):
            continue
        azs = as_int(vpc.get("numberOfAvailabilityZones")) or len(as_list(vpc.get("privateSubnetIds"))) or 3
        nat_cfg = vpc.get("natGateways")
        strategy = nat_cfg.get("strategy") if isinstance(nat_cfg, dict) else None
        how = f"strategy {strategy}"
        if strategy is None or is_unknown(strategy):
            strategy, how = "OnePerAz", "strategy not visible: awsx default OnePerAz assumed"
        count = {"None": 0, "Single": 1, "OnePerAz": azs}.get(str(strategy))
        if count is None:
            p.skip(vpc, f"unknown NAT strategy {strategy}")
            continue
        synthetic.append((vpc, count, azs, how))
    nat_total = len(nat_gws) + sum(c for _, c, _, _ in synthetic)
    share_gb = merged_usage["natGbPerMonth"] / nat_total if nat_total else 0.0
    flow_targets: set[str] = set()
    for fl in stack.of_type(aws.FLOW_LOG):
        dest = fl.get("logDestination")
        if isinstance(dest, str):
            flow_targets.add(dest)
        flow_targets.update(fl.property_dependencies.get("logDestination", []))
    synthetic_by_urn: dict[str, tuple[Res, int, int, str]] = {}
    for entry in synthetic:
        synthetic_by_urn.setdefault(entry[0].urn, entry)

    for r in stack.resources:
        t = r.type
        try:
            if r.urn in synthetic_by_urn:
                vpc, count, azs, how = synthetic_by_urn[r.urn]
                p.awsx_vpc(vpc, share_gb, count, azs, how)
            elif t == aws.SERVICE:
                p.service(r)
            elif t in aws.LOAD_BALANCERS:
                p.load_balancer(r)
            elif t == "aws:ec2/natGateway:NatGateway":
                p.nat_gateway(r, share_gb)
            elif t == "aws:ec2/eip:Eip":
                p.eip(r)
            elif t == aws.EFS_FS:
                p.efs(r)
            elif t == aws.RDS_INSTANCE:
                p.rds(r)
            elif t in (aws.KMS_KEY, "aws:kms/replicaKey:ReplicaKey"):
                p.add(r, p.price("kms.keyMonth"), None, "customer managed key")
            elif t == aws.SECRET:
                p.add(r, p.price("secretsmanager.secretMonth"), None, "secret")
            elif t == aws.METRIC_ALARM:
                p.add(r, p.price("cloudwatch.alarmMonth"), None, "standard metric alarm")
            elif t == "aws:cloudwatch/dashboard:Dashboard":
                p.add(r, p.price("cloudwatch.dashboardMonth"), None, "dashboard")
            elif t == aws.LOG_GROUP:
                p.log_group(r, flow_targets)
            elif t == aws.FLOW_LOG:
                gb = merged_usage["flowLogGbPerMonth"]
                p.add(r, gb * p.price("cloudwatch.logIngestGb"), None, f"{gb:g} GB vended log ingestion")
            elif t == aws.BACKUP_VAULT:
                gb = merged_usage["backupGbPerVault"]
                p.add(r, gb * p.price("backup.efsWarmGbMonth"), None, f"{gb:g} GB of backups")
            elif t == "aws:route53/zone:Zone":
                p.add(r, p.price("route53.hostedZoneMonth"), None, "hosted zone")
            elif t == "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace":
                # A Cloud Map DNS namespace is a Route 53 private hosted zone, billed as one.
                p.add(
                    r, p.price("route53.hostedZoneMonth"), None, "Cloud Map namespace (private hosted zone)"
                )
            elif t == "aws:servicediscovery/service:Service":
                n = merged_usage["cloudMapInstancesPerService"]
                p.add(
                    r, n * p.price("cloudmap.registeredResourceMonth"), None, f"{n:g} registered instance(s)"
                )
            elif t == "aws:ec2/vpcEndpoint:VpcEndpoint":
                p.vpc_endpoint(r)
            elif t == aws.ECR_REPO:
                gb = merged_usage["ecrGbPerRepo"]
                p.add(r, gb * p.price("ecr.storageGbMonth"), None, f"{gb:g} GB images")
            elif t in aws.BUCKETS:
                gb = merged_usage["s3GbPerBucket"]
                p.add(r, gb * p.price("s3.standardGbMonth"), None, f"{gb:g} GB Standard")
            elif t in FREE_TYPES or t.startswith(FREE_PREFIXES) or t in FREE_EXACT_PACKAGES:
                continue
            elif t.split(":", 1)[0] not in CLOUD_PACKAGES and r.urn in parents:
                continue  # a component: its children are priced
            elif t == aws.AWSX_VPC or (t.startswith("awsx:") and r.urn in parents):
                continue  # awsx component whose children are present and priced
            else:
                p.skip(r, "type not in the cost model")
        except _UnpricedError as why:
            p.skip(r, str(why))

    result.items = sorted(p.items, key=lambda i: (-i.peak_monthly, i.name))
    result.unpriced = p.unpriced
    result.baseline_monthly = round(sum(i.baseline_monthly for i in p.items), 2)
    result.peak_monthly = round(sum(i.peak_monthly for i in p.items), 2)
    return result
