"""Cost levers: changes to the stack's own resources that lower its bill, each priced by
re-estimating a modified copy of the resources (never a fixed figure).

A lever's saving is the baseline and peak difference between the stack's estimate and the
estimate of the copy; a lever whose copy leaves a resource unpriced that the stack's own
estimate priced is dropped (its "saving" would be a gap in the model), and so is one that saves
nothing. Levers come sorted by baseline saving, then peak saving.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _aws as aws
from .._util import Res, Stack, as_list, is_unknown, truthy
from ..reliability import FARGATE_SIZES, parse_cpu, parse_memory
from .model import (
    EIP,
    NAT_GATEWAY,
    VPC_ENDPOINT,
    CostEstimate,
    Lever,
    _price,
    awsx_nat_plan,
    load_prices,
    merged_usage,
    to_resources,
)

# The instance type of the NAT instance lever: the smallest Graviton type (up to 5 Gbit/s burst).
NAT_INSTANCE_TYPE = "t4g.nano"
NAT_INSTANCE_ROOT_GB = 8.0
_SIZES = [
    "nano",
    "micro",
    "small",
    "medium",
    "large",
    "xlarge",
    *[f"{n}xlarge" for n in (2, 3, 4, 6, 8, 9, 10, 12, 16, 18, 24, 32, 48)],
]


@dataclass
class _Proposal:
    """One lever before pricing: props replacing those of some resources, resources dropped and
    resources added, in the stack's own terms."""

    id: str
    title: str
    trade_off: str
    touched: list[str]
    props: dict[str, dict[str, Any]] = field(default_factory=dict)
    drop: set[str] = field(default_factory=set)
    add: list[Res] = field(default_factory=list)

    def apply(self, resources: list[Res]) -> list[Res]:
        out = []
        for r in resources:
            if r.urn in self.drop:
                continue
            if r.urn in self.props:
                r = Res(
                    type=r.type,
                    name=r.name,
                    urn=r.urn,
                    props=self.props[r.urn],
                    parent=r.parent,
                    protect=r.protect,
                    dependencies=r.dependencies,
                    property_dependencies=r.property_dependencies,
                )
            out.append(r)
        return out + self.add


def advise(
    resources: Iterable[Any],
    usage: Mapping[str, Any] | None = None,
    region: str = "us-west-2",
    prices: Mapping[str, Any] | None = None,
    base: CostEstimate | None = None,
) -> list[Lever]:
    """The levers that apply to these resources, with savings computed by the cost model."""
    price_data = prices if prices is not None else load_prices()
    use = merged_usage(usage)
    res = to_resources(resources)
    stack = Stack(res)
    base = base if base is not None else _price(stack, price_data, region, use)
    base_unpriced = {u["urn"] for u in base.unpriced}
    levers = []
    for propose in _PROPOSERS:
        for proposal in propose(stack):
            est = _price(Stack(proposal.apply(res)), price_data, region, use)
            if {u["urn"] for u in est.unpriced} - base_unpriced:
                continue
            baseline = round(base.baseline_monthly - est.baseline_monthly, 2)
            peak = round(base.peak_monthly - est.peak_monthly, 2)
            if baseline <= 0 and peak <= 0:
                continue
            levers.append(
                Lever(proposal.id, proposal.title, baseline, peak, proposal.touched, proposal.trade_off)
            )
    return sorted(levers, key=lambda lever: (-lever.baseline_saving, -lever.peak_saving, lever.id))


# --- Fargate ---------------------------------------------------------------------------------


def _fargate_services(stack: Stack) -> Iterator[tuple[Res, Res]]:
    """(service, task definition) of each service that may run on Fargate, known values only."""
    for svc in stack.of_type(aws.SERVICE):
        if svc.get("launchType") in ("EC2", "EXTERNAL"):
            continue
        tds = aws.task_definition_of(stack, svc)
        if tds and not is_unknown(tds[0].get("cpu")) and not is_unknown(tds[0].get("memory")):
            yield svc, tds[0]


def _graviton(stack: Stack) -> Iterator[_Proposal]:
    by_td: dict[str, tuple[Res, list[Res]]] = {}
    for svc, td in _fargate_services(stack):
        platform = td.get("runtimePlatform")
        arch = platform.get("cpuArchitecture") if isinstance(platform, dict) else None
        if is_unknown(platform) or str(arch or "X86_64").upper() == "ARM64":
            continue
        by_td.setdefault(td.urn, (td, []))[1].append(svc)
    for td, services in by_td.values():
        platform = dict(td.get("runtimePlatform") or {})
        platform.update(
            cpuArchitecture="ARM64", operatingSystemFamily=platform.get("operatingSystemFamily", "LINUX")
        )
        names = ", ".join(s.name for s in services)
        yield _Proposal(
            id=f"graviton:{td.name}",
            title=f"Graviton (arm64) Fargate tasks for {names}",
            trade_off="every image must be built for arm64 (multi-arch); same task size, ~20% less per hour",
            touched=[td.urn, *(s.urn for s in services)],
            props={td.urn: {**td.props, "runtimePlatform": platform}},
        )


def _spot_share(stack: Stack) -> Iterator[_Proposal]:
    strategy = [
        {"capacityProvider": "FARGATE", "base": 1, "weight": 0},
        {"capacityProvider": "FARGATE_SPOT", "base": 0, "weight": 1},
    ]
    for svc, _td in _fargate_services(stack):
        current = svc.get("capacityProviderStrategies")
        if is_unknown(current) or any(
            isinstance(s, dict) and s.get("capacityProvider") not in ("FARGATE", "FARGATE_SPOT")
            for s in as_list(current)
        ):
            continue
        props = {k: v for k, v in svc.props.items() if k != "launchType"}
        props["capacityProviderStrategies"] = strategy
        yield _Proposal(
            id=f"fargate-spot:{svc.name}",
            title=f"{svc.name}: Fargate Spot above one on-demand task",
            trade_off="Spot tasks can be stopped with two minutes' notice and capacity is not guaranteed; "
            "the on-demand task keeps the service up",
            touched=[svc.urn],
            props={svc.urn: props},
        )


def one_fargate_step_down(cpu: int, memory: int) -> tuple[int, int] | None:
    """Half the CPU and, as near as Fargate allows, half the memory; None at the smallest size."""
    smaller = [c for c in sorted(FARGATE_SIZES) if c < cpu]
    if not smaller:
        return None
    new_cpu = smaller[-1]
    allowed = FARGATE_SIZES[new_cpu]
    fitting = [m for m in allowed if m <= memory // 2]
    return new_cpu, (fitting[-1] if fitting else allowed[0])


def _right_size(stack: Stack) -> Iterator[_Proposal]:
    seen: set[str] = set()
    for svc, td in _fargate_services(stack):
        cpu, memory = parse_cpu(td.get("cpu")), parse_memory(td.get("memory"))
        if td.urn in seen or not cpu or not memory:
            continue
        seen.add(td.urn)
        step = one_fargate_step_down(cpu, memory)
        if step is None:
            continue
        yield _Proposal(
            id=f"right-size:{td.name}",
            title=f"{svc.name}: {step[0]} CPU / {step[1]} MiB tasks instead of {cpu} / {memory} (one Fargate step down)",
            trade_off="half the CPU per task: load-test first; the saving assumes the same task counts, "
            "autoscaling may run more",
            touched=[td.urn, svc.urn],
            props={td.urn: {**td.props, "cpu": str(step[0]), "memory": str(step[1])}},
        )


# --- RDS -------------------------------------------------------------------------------------

_CLASS = re.compile(r"(db\.[a-z0-9-]+)\.([a-z0-9]+)")


def one_class_down(klass: str) -> str | None:
    """db.t4g.medium -> db.t4g.small; None when the size is unknown or the smallest."""
    m = _CLASS.fullmatch(klass)
    if not m or m.group(2) not in _SIZES:
        return None
    i = _SIZES.index(m.group(2))
    return f"{m.group(1)}.{_SIZES[i - 1]}" if i > 0 else None


def _rds_smaller(stack: Stack) -> Iterator[_Proposal]:
    for db in stack.of_type(aws.RDS_INSTANCE):
        klass = db.get("instanceClass")
        smaller = one_class_down(klass) if isinstance(klass, str) and not is_unknown(klass) else None
        if smaller:
            yield _Proposal(
                id=f"rds-smaller:{db.name}",
                title=f"{db.name}: {smaller} instead of {klass}",
                trade_off="half the vCPUs and memory (burstable classes also earn fewer CPU credits); "
                "watch CPU, freeable memory and connections first",
                touched=[db.urn],
                props={db.urn: {**db.props, "instanceClass": smaller}},
            )


def _rds_single_az(stack: Stack) -> Iterator[_Proposal]:
    for db in stack.of_type(aws.RDS_INSTANCE):
        if truthy(db.get("multiAz")):
            yield _Proposal(
                id=f"rds-single-az:{db.name}",
                title=f"{db.name}: Single-AZ instead of Multi-AZ",
                trade_off="no standby: a host or AZ failure means a restore from backup (tens of minutes) "
                "instead of a one-to-two-minute failover",
                touched=[db.urn],
                props={db.urn: {**db.props, "multiAz": False}},
            )


# --- NAT -------------------------------------------------------------------------------------


def _nat_eips(stack: Stack, nat: Res) -> list[Res]:
    return stack.resolve(nat, "allocationId", nat.get("allocationId"), (EIP,)) or []


def _single_nat(stack: Stack) -> Iterator[_Proposal]:
    trade_off = (
        "egress of every AZ goes through one: it stops while that AZ is down, and traffic from the "
        "other AZs pays cross-AZ transfer"
    )
    for vpc, count, _azs, _how in awsx_nat_plan(stack):
        if count > 1:
            nat_cfg = vpc.get("natGateways") if isinstance(vpc.get("natGateways"), dict) else {}
            yield _Proposal(
                id=f"single-nat:{vpc.name}",
                title=f"{vpc.name}: one NAT gateway instead of {count} (one per AZ)",
                trade_off=trade_off,
                touched=[vpc.urn],
                props={vpc.urn: {**vpc.props, "natGateways": {**nat_cfg, "strategy": "Single"}}},
            )
    nats = stack.of_type(NAT_GATEWAY)
    if len(nats) > 1:
        dropped = nats[1:]
        yield _Proposal(
            id="single-nat",
            title=f"one NAT gateway instead of {len(nats)}",
            trade_off=trade_off,
            touched=[n.urn for n in dropped],
            drop={r.urn for n in dropped for r in (n, *_nat_eips(stack, n))},
        )


def _nat_instance(name: str, urn_base: str, eip: bool) -> list[Res]:
    instance = Res(
        type="aws:ec2/instance:Instance",
        name=name,
        urn=f"{urn_base}-nat-instance",
        props={
            "instanceType": NAT_INSTANCE_TYPE,
            "rootBlockDevice": {"volumeSize": NAT_INSTANCE_ROOT_GB, "volumeType": "gp3"},
            # Its address is the elastic IP, priced on its own.
            "associatePublicIpAddress": False,
        },
    )
    address = Res(type=EIP, name=f"{name}-eip", urn=f"{urn_base}-nat-eip", props={})
    return [instance, address] if eip else [instance]


def _nat_instances(stack: Stack) -> Iterator[_Proposal]:
    trade_off = (
        "you run and patch it (an AMI such as fck-nat); egress stops while it is replaced, and a "
        f"{NAT_INSTANCE_TYPE} bursts to 5 Gbit/s"
    )
    for vpc, count, _azs, _how in awsx_nat_plan(stack):
        if count > 0:
            nat_cfg = vpc.get("natGateways") if isinstance(vpc.get("natGateways"), dict) else {}
            added = [
                r for i in range(count) for r in _nat_instance(f"{vpc.name}-nat-{i}", f"{vpc.urn}-{i}", True)
            ]
            yield _Proposal(
                id=f"nat-instance:{vpc.name}",
                title=f"{vpc.name}: {count} NAT instance(s) ({NAT_INSTANCE_TYPE}) instead of NAT gateway(s)",
                trade_off=trade_off,
                touched=[vpc.urn],
                props={vpc.urn: {**vpc.props, "natGateways": {**nat_cfg, "strategy": "None"}}},
                add=added,
            )
    nats = stack.of_type(NAT_GATEWAY)
    if nats:
        yield _Proposal(
            id="nat-instance",
            title=f"{len(nats)} NAT instance(s) ({NAT_INSTANCE_TYPE}) instead of NAT gateway(s)",
            trade_off=trade_off,
            touched=[n.urn for n in nats],
            drop={n.urn for n in nats},
            # The gateways' elastic IPs stay, now attached to the instances.
            add=[
                r for n in nats for r in _nat_instance(f"{n.name}-instance", n.urn, not _nat_eips(stack, n))
            ],
        )


# --- VPC endpoints ----------------------------------------------------------------------------


def _endpoints_one_az(stack: Stack) -> Iterator[_Proposal]:
    props: dict[str, dict[str, Any]] = {}
    for ep in stack.of_type(VPC_ENDPOINT):
        subnets = ep.get("subnetIds")
        if ep.get("vpcEndpointType") == "Interface" and not is_unknown(subnets) and len(as_list(subnets)) > 1:
            props[ep.urn] = {**ep.props, "subnetIds": as_list(subnets)[:1]}
    if props:
        yield _Proposal(
            id="endpoints-one-az",
            title=f"{len(props)} interface endpoint(s) in one AZ instead of one per AZ",
            trade_off="the other AZs reach them across AZs (transfer charged) and lose them while that AZ is down",
            touched=list(props),
            props=props,
        )


_PROPOSERS: list[Callable[[Stack], Iterator[_Proposal]]] = [
    _graviton,
    _spot_share,
    _right_size,
    _rds_smaller,
    _rds_single_az,
    _single_nat,
    _nat_instances,
    _endpoints_one_az,
]

__all__ = ["NAT_INSTANCE_TYPE", "advise", "one_class_down", "one_fargate_step_down"]
