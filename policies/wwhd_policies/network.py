"""Private networking: tasks, databases and file systems stay off the internet."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from . import _aws as aws
from ._util import (
    ADVISORY,
    MANDATORY,
    Findings,
    Res,
    Stack,
    as_int,
    as_list,
    is_unknown,
    resource_policy,
    stack_policy,
    truthy,
)


def _check_subnets(stack: Stack, owner: Res, subnets: list[Any], out: Findings) -> None:
    for subnet in subnets:
        kind, why = aws.subnet_kind(stack, subnet)
        if kind == aws.PUBLIC:
            out.violation(f"{owner.label()} is placed in a public subnet ({why}).", owner.urn)
        elif kind == aws.UNDECIDED:
            out.cannot_decide(f"{owner.label()}: {why}")


def _check_ecs_private(stack: Stack, _cfg: dict[str, Any], out: Findings) -> None:
    for svc in stack.of_type(aws.SERVICE):
        net = svc.get("networkConfiguration")
        if is_unknown(net):
            out.cannot_decide(f"{svc.label()}: networkConfiguration unknown during preview")
            continue
        if not isinstance(net, dict):
            if svc.get("launchType") != "EC2":
                out.violation(f"{svc.label()} has no networkConfiguration (awsvpc subnets).", svc.urn)
            continue
        public_ip = net.get("assignPublicIp")
        if is_unknown(public_ip):
            out.cannot_decide(f"{svc.label()}: assignPublicIp unknown during preview")
        elif truthy(public_ip):
            out.violation(f"{svc.label()} assigns public IPs to its tasks.", svc.urn)
        subnets = net.get("subnets")
        if is_unknown(subnets):
            out.cannot_decide(f"{svc.label()}: subnets unknown during preview")
            continue
        _check_subnets(stack, svc, as_list(subnets), out)


ecs_service_private_networking = stack_policy(
    name="ecs-service-private-networking",
    description="ECS services run in private subnets without public IPs.",
    check=_check_ecs_private,
    level=MANDATORY,
    severity=Severity.HIGH,
    remediation="Set network_configuration.assign_public_ip=False and subnets=vpc.private_subnet_ids; "
    "tasks reach ECR/Secrets Manager through the NAT gateway or VPC endpoints.",
)


# --- security groups -----------------------------------------------------------------------

_OPEN = ("0.0.0.0/0", "::/0")


def _lb_group_ids(stack: Stack) -> tuple[set[str], set[str]]:
    """Ids and URNs of security groups attached to a load balancer."""
    ids: set[str] = set()
    urns: set[str] = set()
    groups = stack.of_type(aws.SECURITY_GROUP)
    for lb in stack.of_type(*aws.LOAD_BALANCERS):
        for ref in as_list(lb.get("securityGroups")):
            if isinstance(ref, str) and not is_unknown(ref):
                ids.add(ref)
        for urn in lb.property_dependencies.get("securityGroups", []):
            urns.add(urn)
    for g in groups:
        if g.get("id") in ids:
            urns.add(g.urn)
        if g.urn in urns and isinstance(g.get("id"), str):
            ids.add(g.get("id"))
    return ids, urns


def _ports_allowed(protocol: Any, from_port: Any, to_port: Any, allowed: set[int]) -> bool | None:
    if any(is_unknown(v) for v in (protocol, from_port, to_port)):
        return None
    if str(protocol) in ("-1", "all"):
        return False
    lo, hi = as_int(from_port), as_int(to_port)
    if lo is None or hi is None:
        return False
    return lo == hi and lo in allowed


def _check_sg_ingress(stack: Stack, cfg: dict[str, Any], out: Findings) -> None:
    allowed = {p for p in (as_int(x) for x in as_list(cfg.get("allowedPorts"))) if p is not None}
    lb_ids, lb_urns = _lb_group_ids(stack)

    def judge(owner: Res, group: Res | None, group_ref: Any, rule: dict[str, Any], label: str) -> None:
        ports_ok = _ports_allowed(rule.get("protocol"), rule.get("fromPort"), rule.get("toPort"), allowed)
        lo, hi = as_int(rule.get("fromPort")), as_int(rule.get("toPort"))
        ports = (
            "all ports"
            if str(rule.get("protocol")) in ("-1", "all")
            else f"port {lo}"
            if lo == hi
            else f"ports {lo}-{hi}"
        )
        where = f"{label} opens {ports} to the internet"
        if ports_ok is None:
            out.cannot_decide(f"{where}: a port or protocol is unknown during preview")
            return
        if not ports_ok:
            out.violation(
                f"{where}; only ports {sorted(allowed)} may be open, on load balancer groups.", owner.urn
            )
            return
        if group is not None:
            is_lb = group.urn in lb_urns or group.get("id") in lb_ids
        elif isinstance(group_ref, str) and not is_unknown(group_ref):
            is_lb = group_ref in lb_ids
        else:
            out.cannot_decide(f"{where}: its security group cannot be resolved")
            return
        if not is_lb:
            out.violation(f"{where}, but the group is not attached to a load balancer.", owner.urn)

    def is_open(cidrs: Any) -> bool | None:
        if is_unknown(cidrs):
            return None
        return any(c in _OPEN for c in as_list(cidrs) if isinstance(c, str))

    for sg in stack.of_type(aws.SECURITY_GROUP):
        ingress = sg.get("ingress")
        if is_unknown(ingress):
            out.cannot_decide(f"{sg.label()}: ingress unknown during preview")
            continue
        for rule in as_list(ingress):
            if not isinstance(rule, dict):
                continue
            opened = [is_open(rule.get("cidrBlocks")), is_open(rule.get("ipv6CidrBlocks"))]
            if None in opened:
                out.cannot_decide(f"{sg.label()}: an ingress CIDR is unknown during preview")
            elif any(opened):
                judge(sg, sg, None, rule, sg.label())

    for rule_res in stack.of_type(aws.SG_RULE):
        kind = rule_res.get("type")
        if kind != "ingress":
            if is_unknown(kind):
                out.cannot_decide(f"{rule_res.label()}: type unknown during preview")
            continue
        opened = [is_open(rule_res.get("cidrBlocks")), is_open(rule_res.get("ipv6CidrBlocks"))]
        if None in opened:
            out.cannot_decide(f"{rule_res.label()}: CIDR unknown during preview")
            continue
        if any(opened):
            ref = rule_res.get("securityGroupId")
            groups = stack.resolve(rule_res, "securityGroupId", ref, (aws.SECURITY_GROUP,))
            judge(rule_res, groups[0] if groups else None, ref, rule_res.props, rule_res.label())

    for rule_res in stack.of_type(aws.SG_INGRESS_RULE):
        opened = [is_open(rule_res.get("cidrIpv4")), is_open(rule_res.get("cidrIpv6"))]
        if None in opened:
            out.cannot_decide(f"{rule_res.label()}: CIDR unknown during preview")
            continue
        if any(opened):
            ref = rule_res.get("securityGroupId")
            groups = stack.resolve(rule_res, "securityGroupId", ref, (aws.SECURITY_GROUP,))
            rule = {
                "protocol": rule_res.get("ipProtocol"),
                "fromPort": rule_res.get("fromPort"),
                "toPort": rule_res.get("toPort"),
            }
            judge(rule_res, groups[0] if groups else None, ref, rule, rule_res.label())


security_group_no_public_ingress = stack_policy(
    name="security-group-no-public-ingress",
    description="Internet ingress (0.0.0.0/0, ::/0) only on the allowed ports of load balancer security groups.",
    check=_check_sg_ingress,
    level=MANDATORY,
    severity=Severity.CRITICAL,
    remediation="Admit internet traffic only on the ALB's group (80/443). Task, EFS and database groups "
    "admit traffic from other security groups (referenced_security_group_id), never from CIDRs.",
    schema={
        "allowedPorts": {
            "type": "array",
            "items": {"type": "integer"},
            "default": [80, 443],
            "description": "Ports a load balancer group may open to the internet.",
        }
    },
)


def _check_rds_public(r: Res, _cfg: dict[str, Any], out: Findings) -> None:
    value = r.get("publiclyAccessible")
    if is_unknown(value):
        out.cannot_decide(f"{r.label()}: publiclyAccessible unknown during preview")
    elif truthy(value):
        out.violation(f"{r.label()} is publicly accessible.")


rds_not_public = resource_policy(
    name="rds-not-public",
    description="RDS instances are not publicly accessible.",
    types=[aws.RDS_INSTANCE],
    check=_check_rds_public,
    level=MANDATORY,
    severity=Severity.CRITICAL,
    remediation="Set publicly_accessible=False and use a DB subnet group of private subnets.",
)


def _check_mount_targets(stack: Stack, _cfg: dict[str, Any], out: Findings) -> None:
    for mt in stack.of_type(aws.EFS_MOUNT_TARGET):
        _check_subnets(stack, mt, [mt.get("subnetId")], out)


efs_mount_target_private = stack_policy(
    name="efs-mount-target-private",
    description="EFS mount targets live in private subnets.",
    check=_check_mount_targets,
    level=MANDATORY,
    severity=Severity.HIGH,
    remediation="Create mount targets with subnet_id from vpc.private_subnet_ids, one per AZ.",
)


def _check_flow_logs(stack: Stack, _cfg: dict[str, Any], out: Findings) -> None:
    flow_logs = stack.of_type(aws.FLOW_LOG)
    logged: set[str] = set()
    unknown_targets = False
    for fl in flow_logs:
        vpc_id = fl.get("vpcId")
        if is_unknown(vpc_id):
            unknown_targets = True
            logged.update(fl.property_dependencies.get("vpcId", []))
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
            out.cannot_decide(f"{vpc.label()}: a flow log's vpcId is unknown during preview")
        else:
            out.violation(f"{vpc.label()} has no VPC flow log.", vpc.urn)


vpc_flow_logs_enabled = stack_policy(
    name="vpc-flow-logs-enabled",
    description="Every VPC has a flow log.",
    check=_check_flow_logs,
    level=ADVISORY,
    severity=Severity.LOW,
    remediation="Add aws.ec2.FlowLog(vpc_id=vpc.vpc_id, traffic_type='ALL' or 'REJECT') to an encrypted "
    "log group with retention (costs ~$0.50 per GB ingested).",
)


def _check_drop_headers(r: Res, _cfg: dict[str, Any], out: Findings) -> None:
    if r.get("loadBalancerType", "application") not in ("application", None):
        return
    value = r.get("dropInvalidHeaderFields")
    if is_unknown(value):
        out.cannot_decide(f"{r.label()}: dropInvalidHeaderFields unknown during preview")
    elif not truthy(value):
        out.violation(f"{r.label()} forwards requests with invalid HTTP headers (request smuggling risk).")


alb_drop_invalid_headers = resource_policy(
    name="alb-drop-invalid-headers",
    description="Application load balancers drop invalid HTTP header fields.",
    types=list(aws.LOAD_BALANCERS),
    check=_check_drop_headers,
    level=ADVISORY,
    severity=Severity.LOW,
    remediation="Set drop_invalid_header_fields=True on the load balancer.",
)

POLICIES = [
    ecs_service_private_networking,
    security_group_no_public_ingress,
    rds_not_public,
    efs_mount_target_private,
    vpc_flow_logs_enabled,
    alb_drop_invalid_headers,
]
