"""Cost levers: changes to the stack's own resources that lower its bill, each priced by
re-estimating a modified copy of the resources (never a fixed figure).

One lever per kind of change, applied to every resource it fits (every x86 Fargate task
definition, every Multi-AZ database, ...), so advice costs one estimate per kind whatever the
stack's size; the lever lists each resource's share of the saving. A resource whose modified
copy the model cannot price (a smaller class missing from the price table) is left out of the
lever rather than counted as a saving, and so is a lever that saves nothing. Levers come
sorted by baseline saving, then peak saving.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _aws as aws
from .._util import Res, Stack, as_list, is_unknown, truthy
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
    props: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Whether the title ends with the resources that save ("for wwhd-api, wwhd-db").
    names_savers: bool = True
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


def _names(names: list[str], limit: int = 3) -> str:
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")


def _by_urn(est: CostEstimate) -> dict[str, tuple[str, float, float, str]]:
    """urn -> (name, baseline, peak, detail) summed over the resource's items."""
    out: dict[str, tuple[str, float, float, str]] = {}
    for i in est.items:
        name, base, peak, detail = out.get(i.urn, (i.name, 0.0, 0.0, i.detail))
        out[i.urn] = (name, base + i.baseline_monthly, peak + i.peak_monthly, detail)
    return out


def _lever(proposal: _Proposal, base: CostEstimate, est: CostEstimate) -> Lever | None:
    before, after = _by_urn(base), _by_urn(est)
    shares = []
    for urn in dict.fromkeys([*before, *after]):
        name, b0, p0, _ = before.get(urn, ("", 0.0, 0.0, ""))
        name1, b1, p1, detail = after.get(urn, (name, 0.0, 0.0, "removed"))
        if round(b0 - b1, 2) or round(p0 - p1, 2):
            shares.append(
                {
                    "urn": urn,
                    "name": name or name1,
                    "baselineSaving": round(b0 - b1, 2),
                    "peakSaving": round(p0 - p1, 2),
                    "after": detail,
                }
            )
    baseline = round(base.baseline_monthly - est.baseline_monthly, 2)
    peak = round(base.peak_monthly - est.peak_monthly, 2)
    if baseline <= 0 and peak <= 0:
        return None
    shares.sort(key=lambda r: (-r["baselineSaving"], -r["peakSaving"], r["name"]))
    title = proposal.title
    if proposal.names_savers:
        title += " for " + _names(
            [r["name"] for r in shares if r["baselineSaving"] > 0 or r["peakSaving"] > 0]
        )
    return Lever(proposal.id, title, baseline, peak, shares, proposal.trade_off)


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
            lost = {u["urn"] for u in est.unpriced} - base_unpriced
            if lost and lost <= set(proposal.props):
                # Keep the change where the model can price it.
                for urn in lost:
                    del proposal.props[urn]
                est = _price(Stack(proposal.apply(res)), price_data, region, use)
                lost = {u["urn"] for u in est.unpriced} - base_unpriced
            lever = (
                None
                if lost or not (proposal.props or proposal.drop or proposal.add)
                else _lever(proposal, base, est)
            )
            if lever is not None:
                levers.append(lever)
    return sorted(
        levers, key=lambda lever: (-lever.baseline_saving_monthly, -lever.peak_saving_monthly, lever.id)
    )


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
    props: dict[str, dict[str, Any]] = {}
    for _svc, td in _fargate_services(stack):
        platform = td.get("runtimePlatform")
        arch = platform.get("cpuArchitecture") if isinstance(platform, dict) else None
        if is_unknown(platform) or str(arch or "X86_64").upper() == "ARM64":
            continue
        arm = {**(platform or {}), "cpuArchitecture": "ARM64"}
        arm.setdefault("operatingSystemFamily", "LINUX")
        props[td.urn] = {**td.props, "runtimePlatform": arm}
    if props:
        yield _Proposal(
            id="graviton",
            title="Graviton (arm64) Fargate tasks",
            trade_off="every image must be built for arm64 (multi-arch); same task size, ~20% less per hour",
            props=props,
        )


def _spot_share(stack: Stack) -> Iterator[_Proposal]:
    strategy = [
        {"capacityProvider": "FARGATE", "base": 1, "weight": 0},
        {"capacityProvider": "FARGATE_SPOT", "base": 0, "weight": 1},
    ]
    props: dict[str, dict[str, Any]] = {}
    for svc, _td in _fargate_services(stack):
        current = svc.get("capacityProviderStrategies")
        if is_unknown(current) or any(
            isinstance(s, dict) and s.get("capacityProvider") not in ("FARGATE", "FARGATE_SPOT")
            for s in as_list(current)
        ):
            continue
        props[svc.urn] = {
            **{k: v for k, v in svc.props.items() if k != "launchType"},
            "capacityProviderStrategies": strategy,
        }
    if props:
        yield _Proposal(
            id="fargate-spot",
            title="Fargate Spot above one on-demand task",
            trade_off="Spot tasks can be stopped with two minutes' notice and capacity is not guaranteed; "
            "the on-demand task keeps each service up",
            props=props,
        )


def one_fargate_step_down(cpu: int, memory: int) -> tuple[int, int] | None:
    """Half the CPU and, as near as Fargate allows, half the memory; None at the smallest size."""
    smaller = [c for c in sorted(aws.FARGATE_SIZES) if c < cpu]
    if not smaller:
        return None
    new_cpu = smaller[-1]
    allowed = aws.FARGATE_SIZES[new_cpu]
    fitting = [m for m in allowed if m <= memory // 2]
    return new_cpu, (fitting[-1] if fitting else allowed[0])


def _right_size(stack: Stack) -> Iterator[_Proposal]:
    props: dict[str, dict[str, Any]] = {}
    for _svc, td in _fargate_services(stack):
        cpu, memory = aws.parse_cpu(td.get("cpu")), aws.parse_memory(td.get("memory"))
        step = one_fargate_step_down(cpu, memory) if cpu and memory else None
        if step is not None:
            props[td.urn] = {**td.props, "cpu": str(step[0]), "memory": str(step[1])}
    if props:
        yield _Proposal(
            id="right-size",
            title="Fargate tasks one size down (half the CPU)",
            trade_off="half the CPU per task: load-test first; the saving assumes the same task counts, "
            "autoscaling may run more",
            props=props,
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
    props: dict[str, dict[str, Any]] = {}
    for db in stack.of_type(aws.RDS_INSTANCE):
        klass = db.get("instanceClass")
        smaller = one_class_down(klass) if isinstance(klass, str) and not is_unknown(klass) else None
        if smaller:
            props[db.urn] = {**db.props, "instanceClass": smaller}
    if props:
        yield _Proposal(
            id="rds-smaller",
            title="RDS one class down in its family",
            trade_off="half the vCPUs and memory (burstable classes also earn fewer CPU credits); "
            "watch CPU, freeable memory and connections first",
            props=props,
        )


def _rds_single_az(stack: Stack) -> Iterator[_Proposal]:
    dbs = [db for db in stack.of_type(aws.RDS_INSTANCE) if truthy(db.get("multiAz"))]
    if dbs:
        yield _Proposal(
            id="rds-single-az",
            title="Single-AZ RDS instead of Multi-AZ",
            trade_off="no standby: a host or AZ failure means a restore from backup (tens of minutes) "
            "instead of a one-to-two-minute failover",
            props={db.urn: {**db.props, "multiAz": False} for db in dbs},
        )


# --- NAT -------------------------------------------------------------------------------------


def _nat_eips(stack: Stack, nat: Res) -> list[Res]:
    return stack.resolve(nat, "allocationId", nat.get("allocationId"), (EIP,)) or []


def _awsx_nat(vpc: Res, strategy: str) -> dict[str, Any]:
    nat_cfg = vpc.get("natGateways") if isinstance(vpc.get("natGateways"), dict) else {}
    return {**vpc.props, "natGateways": {**nat_cfg, "strategy": strategy}}


def _single_nat(stack: Stack) -> Iterator[_Proposal]:
    vpcs = [vpc for vpc, count, _azs, _how in awsx_nat_plan(stack) if count > 1]
    nats = stack.of_type(NAT_GATEWAY)
    dropped = nats[1:]
    if vpcs or dropped:
        yield _Proposal(
            id="single-nat",
            title="one NAT gateway instead of one per AZ",
            names_savers=False,
            trade_off="egress of every AZ goes through one: it stops while that AZ is down, and traffic "
            "from the other AZs pays cross-AZ transfer",
            props={vpc.urn: _awsx_nat(vpc, "Single") for vpc in vpcs},
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
    plans = [(vpc, count) for vpc, count, _azs, _how in awsx_nat_plan(stack) if count > 0]
    nats = stack.of_type(NAT_GATEWAY)
    if not plans and not nats:
        return
    added = [
        r
        for vpc, n in plans
        for i in range(n)
        for r in _nat_instance(f"{vpc.name}-nat-{i}", f"{vpc.urn}-{i}", True)
    ]
    # An explicit gateway's elastic IP stays, now attached to the instance.
    added += [r for n in nats for r in _nat_instance(f"{n.name}-instance", n.urn, not _nat_eips(stack, n))]
    yield _Proposal(
        id="nat-instance",
        title=f"NAT instances ({NAT_INSTANCE_TYPE}) instead of NAT gateways",
        names_savers=False,
        trade_off="you run and patch them (an AMI such as fck-nat); egress stops while one is replaced, "
        f"and a {NAT_INSTANCE_TYPE} bursts to 5 Gbit/s",
        props={vpc.urn: _awsx_nat(vpc, "None") for vpc, _n in plans},
        drop={n.urn for n in nats},
        add=added,
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
            title="interface endpoints in one AZ instead of one per AZ",
            trade_off="the other AZs reach them across AZs (transfer charged) and lose them while that AZ is down",
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
