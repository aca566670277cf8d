"""Private networking: tasks, databases and file systems stay off the internet."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from . import _aws as aws
from ._policy import ADVISORY, MANDATORY, Config, Findings, resource_policy, setting, stack_policy
from ._util import LITERAL, Res, Stack, as_int, as_list, is_unknown, truthy


@stack_policy("ecs-service-private-networking", MANDATORY, Severity.HIGH)
def ecs_service_private_networking(stack: Stack, _cfg: Config, out: Findings) -> None:
    """ECS services run in private subnets without public IPs.

    Remediation: Set network_configuration.assign_public_ip=False and subnets=vpc.private_subnet_ids; tasks
    reach ECR/Secrets Manager through the NAT gateway or VPC endpoints.
    """
    for svc in stack.of_type(aws.SERVICE):
        net = svc.get("networkConfiguration")
        if is_unknown(net):
            out.unknown(
                svc,
                "networkConfiguration",
                "where its tasks run",
                subject="its network configuration",
                remedy=aws.PLACEMENT_REMEDY,
            )
            continue
        if not isinstance(net, dict):
            if svc.get("launchType") != "EC2":
                out.violation(f"{svc.label()} has no networkConfiguration (awsvpc subnets).", svc.urn)
            continue
        # Unset assignPublicIp is AWS's DISABLED. Unknown, it matters only where the subnet is not
        # known to be private: a public IP in a subnet without an internet route is unreachable.
        public_ip = net.get("assignPublicIp")
        if truthy(public_ip):
            out.violation(f"{svc.label()} assigns public IPs to its tasks.", svc.urn)
        # Both lists sit in networkConfiguration, whose property dependencies stand for them.
        subnets = ("networkConfiguration", net.get("subnets"))
        groups = ("networkConfiguration", net.get("securityGroups"))
        aws.judge_placement(stack, svc, subnets, groups, public_ip, out)


# --- security groups -----------------------------------------------------------------------


def _lb_group_ids(stack: Stack) -> tuple[set[str], set[str]]:
    """Ids and URNs of security groups attached to a load balancer (ALB/NLB or Classic)."""
    ids: set[str] = set()
    urns: set[str] = set()
    for lb in stack.of_type(*aws.LOAD_BALANCERS, aws.CLASSIC_LB):
        for ref in as_list(lb.get("securityGroups")):
            if isinstance(ref, str) and not is_unknown(ref):
                ids.add(ref)
        urns.update(lb.property_dependencies.get("securityGroups", []))
    for g in stack.of_type(*aws.SECURITY_GROUPS):
        if g.get("id") in ids:
            urns.add(g.urn)
        if g.urn in urns and isinstance(g.get("id"), str):
            ids.add(g.get("id"))
    return ids, urns


def _ports_allowed(rule: dict[str, Any], allowed: set[int]) -> bool | None:
    protocol, lo, hi = rule.get("protocol"), rule.get("fromPort"), rule.get("toPort")
    if any(is_unknown(v) for v in (protocol, lo, hi)):
        return None
    if str(protocol) in ("-1", "all"):
        return False
    lo, hi = as_int(lo), as_int(hi)
    if lo is None or hi is None:
        return False
    return lo == hi and lo in allowed


def _ports_text(rule: dict[str, Any]) -> str:
    if str(rule.get("protocol")) in ("-1", "all"):
        return "all ports"
    lo, hi = as_int(rule.get("fromPort")), as_int(rule.get("toPort"))
    return f"port {lo}" if lo == hi else f"ports {lo}-{hi}"


@stack_policy(
    "security-group-no-public-ingress",
    MANDATORY,
    Severity.CRITICAL,
    schema={"allowedPorts": setting("Ports a load balancer group may open to the internet.", [80, 443])},
)
def security_group_no_public_ingress(stack: Stack, cfg: Config, out: Findings) -> None:
    """Internet ingress (0.0.0.0/0, ::/0) only on the allowed ports of load balancer security groups.

    Remediation: Admit internet traffic only on the ALB's group (80/443). Task, EFS and database groups admit
    traffic from other security groups (referenced_security_group_id), never from CIDRs.
    """
    allowed = {p for p in (as_int(x) for x in as_list(cfg.get("allowedPorts"))) if p is not None}
    lb_ids, lb_urns = _lb_group_ids(stack)
    for ing in aws.ingress_rules(stack):
        owner, label = ing.owner, ing.label
        if ing.open is None:
            out.cannot_decide(
                f"{label}: whether it admits internet traffic is unknown before creation (its CIDRs or "
                "rule type), so internet ingress cannot be judged",
                prop=ing.prop,
                remedy="write CIDR blocks as literals, or admit other security groups by id",
                urn=owner.urn,
            )
            continue
        if not ing.open:
            continue
        ports_ok = _ports_allowed(ing.rule, allowed)
        if ports_ok is None:
            out.cannot_decide(
                f"{label} admits internet traffic, but its ports or protocol are unknown before creation, "
                "so whether they are allowed cannot be judged",
                prop="ingress" if ing.prop == "ingress" else "fromPort",
                remedy=LITERAL,
                urn=owner.urn,
            )
            continue
        where = f"{label} opens {_ports_text(ing.rule)} to the internet"
        if not ports_ok:
            out.violation(
                f"{where}; only ports {sorted(allowed)} may be open, on load balancer groups.", owner.urn
            )
            continue
        if ing.groups:
            is_lb = any(g.urn in lb_urns or g.get("id") in lb_ids for g in ing.groups)
        elif isinstance(ing.group_ref, str) and not is_unknown(ing.group_ref):
            is_lb = ing.group_ref in lb_ids
        else:
            out.cannot_decide(
                f"{where}, but which security group it belongs to is unknown before creation, so whether "
                "that group fronts a load balancer cannot be judged",
                prop="securityGroupId",
                remedy="pass the group's own id output (security_group_id=group.id)",
                urn=owner.urn,
            )
            continue
        if not is_lb:
            out.violation(f"{where}, but the group is not attached to a load balancer.", owner.urn)


@resource_policy(
    "rds-not-public",
    MANDATORY,
    Severity.CRITICAL,
    types=[aws.RDS_INSTANCE, aws.RDS_CLUSTER_INSTANCE, aws.RDS_CLUSTER],
)
def rds_not_public(r: Res, _cfg: Config, out: Findings) -> None:
    """RDS instances, Aurora cluster instances and Multi-AZ DB clusters are not publicly accessible.

    Remediation: Set publicly_accessible=False and use a DB subnet group of private subnets.
    """
    # Unset publiclyAccessible is AWS's false.
    if out.flag(r, "publiclyAccessible", "public access"):
        out.violation(f"{r.label()} is publicly accessible.")


@stack_policy("efs-mount-target-private", MANDATORY, Severity.HIGH)
def efs_mount_target_private(stack: Stack, _cfg: Config, out: Findings) -> None:
    """EFS mount targets live in private subnets.

    Remediation: Create mount targets with subnet_id from vpc.private_subnet_ids, one per AZ.
    """
    for mt in stack.of_type(aws.EFS_MOUNT_TARGET):
        subnets, groups = ("subnetId", mt.get("subnetId")), ("securityGroups", mt.get("securityGroups"))
        aws.judge_placement(stack, mt, subnets, groups, False, out)  # mount targets never get a public IP


@stack_policy("vpc-flow-logs-enabled", ADVISORY, Severity.LOW)
def vpc_flow_logs_enabled(stack: Stack, _cfg: Config, out: Findings) -> None:
    """Every VPC has a flow log.

    Remediation: Add aws.ec2.FlowLog(vpc_id=vpc.vpc_id, traffic_type='ALL' or 'REJECT') to an encrypted log
    group with retention (costs ~$0.50 per GB ingested).
    """
    flow_logs = stack.of_type(aws.FLOW_LOG)
    logged: set[str] = set()
    unknown_targets = False
    for fl in flow_logs:
        vpc_id = fl.get("vpcId")
        if is_unknown(vpc_id):
            deps = fl.property_dependencies.get("vpcId", [])
            logged.update(deps)
            unknown_targets = unknown_targets or not deps
        elif isinstance(vpc_id, str):
            logged.add(vpc_id)
    awsx_urns = {v.urn for v in stack.of_type(aws.AWSX_VPC)}
    for vpc in stack.of_type(aws.VPC, aws.AWSX_VPC):
        ids = {vpc.urn, vpc.get("id"), vpc.get("vpcId")}
        if ids & logged:
            continue
        # An awsx Vpc's own aws:ec2/vpc:Vpc child carries the id under the real engine.
        if vpc.type == aws.VPC and vpc.parent and vpc.parent in awsx_urns:
            parent = stack.by_urn[vpc.parent]
            if {parent.urn, parent.get("vpcId")} & logged:
                continue
        if unknown_targets:
            out.cannot_decide(
                f"{vpc.label()}: a flow log's vpcId is unknown before creation and depends on no VPC of this "
                "stack, so whether this VPC is logged cannot be judged",
                prop="vpcId",
                remedy="pass the VPC's own id output (vpc_id=vpc.vpc_id)",
                urn=vpc.urn,
            )
        else:
            out.violation(f"{vpc.label()} has no VPC flow log.", vpc.urn)


@resource_policy("alb-drop-invalid-headers", ADVISORY, Severity.LOW, types=list(aws.LOAD_BALANCERS))
def alb_drop_invalid_headers(r: Res, _cfg: Config, out: Findings) -> None:
    """Application load balancers drop invalid HTTP header fields.

    Remediation: Set drop_invalid_header_fields=True on the load balancer.
    """
    if r.get("loadBalancerType", "application") not in ("application", None):
        return
    # Unset dropInvalidHeaderFields is AWS's false.
    if out.flag(r, "dropInvalidHeaderFields", "header handling") is False:
        out.violation(f"{r.label()} forwards requests with invalid HTTP headers (request smuggling risk).")


POLICIES = [
    ecs_service_private_networking,
    security_group_no_public_ingress,
    rds_not_public,
    efs_mount_target_private,
    vpc_flow_logs_enabled,
    alb_drop_invalid_headers,
]
