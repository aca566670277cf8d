"""Compute on EC2: instances, launch templates and Auto Scaling groups stay private, encrypted and
IMDSv2-only, and EBS volumes that hold state are backed up.

Instance roles need no rule of their own: `iam-no-wildcard-actions` reads every role's inline
policies and every role/managed policy document, whoever assumes the role (tests show it for a
role behind an instance profile).
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from . import _aws as aws
from ._ec2 import (
    AUTOSCALING_GROUP,
    EBS_VOLUME,
    INSTANCE,
    LAUNCH_CONFIGURATION,
    LAUNCH_TEMPLATE,
    BackupCoverage,
    block_devices,
    public_ip_requests,
    template_ref,
    volume_tags,
)
from ._policy import MANDATORY, Config, Findings, resource_policy, setting, stack_policy
from ._util import LITERAL, Res, Stack, any_of, as_list, is_unknown, truthy

_LAUNCH_TYPES = (INSTANCE, LAUNCH_TEMPLATE, LAUNCH_CONFIGURATION)


# --- EBS encryption ----------------------------------------------------------------------------


def _device_props(r: Res) -> str:
    return "blockDeviceMappings" if r.type == LAUNCH_TEMPLATE else "rootBlockDevice"


def _from_template(r: Res, key: str) -> bool:
    """An instance launched from a launch template takes what it leaves unset from the template,
    which these policies check as a resource of its own."""
    return r.type == INSTANCE and bool(r.get("launchTemplate")) and r.get(key) is None


@resource_policy(
    "ebs-encrypted",
    MANDATORY,
    Severity.HIGH,
    types=[EBS_VOLUME, *_LAUNCH_TYPES],
    schema={
        "requireCustomerKey": setting(
            "Also require kms_key_id (a customer managed key) rather than the aws/ebs key.", False
        )
    },
)
def ebs_encrypted(r: Res, cfg: Config, out: Findings) -> None:
    """EBS volumes are encrypted at rest: aws.ebs.Volume, and the root and block devices of instances, launch
    templates and launch configurations.

    Remediation: Set encrypted=True (and kms_key_id to the stack's key) on the volume; on a launch template
    map the root device explicitly: block_device_mappings=[{'device_name': '/dev/xvda', 'ebs': {'volume_type':
    'gp3', 'volume_size': 30, 'encrypted': 'true', 'kms_key_id': key.arn}}]. An unencrypted volume cannot be
    encrypted in place: snapshot, copy encrypted, restore.
    """
    if _from_template(r, "rootBlockDevice") and not r.get("ebsBlockDevices"):
        return
    devices = block_devices(r)
    if devices is None:
        out.unknown(r, _device_props(r), "their encryption", subject="its block devices", plural=True)
        return
    for device in devices:
        ebs = device.ebs
        encrypted = ebs.get("encrypted") if isinstance(ebs, dict) else None
        if is_unknown(encrypted):
            out.cannot_decide(
                f"{device.label}: encrypted is unknown before creation", prop=device.prop, remedy=LITERAL
            )
        elif not truthy(encrypted):
            # Unset, AWS encrypts only when the account turned on EBS encryption by default (or
            # the source snapshot is encrypted): a setting outside the program that nobody sees here.
            out.violation(
                f"{device.label} is not encrypted"
                + (
                    " (encrypted is unset: it depends on the account's encryption-by-default)"
                    if encrypted is None
                    else ""
                )
                + "."
            )
        elif cfg.get("requireCustomerKey") and isinstance(ebs, dict) and not ebs.get("kmsKeyId"):
            out.violation(
                f"{device.label} is encrypted with the AWS managed key, not a customer managed key."
            )


# --- instance metadata ----------------------------------------------------------------------


@resource_policy("ec2-imdsv2-required", MANDATORY, Severity.HIGH, types=list(_LAUNCH_TYPES))
def ec2_imdsv2_required(r: Res, _cfg: Config, out: Findings) -> None:
    """Instances, launch templates and launch configurations require IMDSv2 session tokens.

    Remediation: Set metadata_options={'http_tokens': 'required', 'http_endpoint': 'enabled'} (with
    'http_put_response_hop_limit': 1 unless containers in bridge mode need the instance role). IMDSv1 lets any
    SSRF in the application read the instance role's credentials.
    """
    if _from_template(r, "metadataOptions"):
        return
    options = r.get("metadataOptions")
    if is_unknown(options):
        out.unknown(r, "metadataOptions", "IMDSv2")
        return
    options = options if isinstance(options, dict) else {}
    tokens, endpoint = options.get("httpTokens"), options.get("httpEndpoint")
    if is_unknown(tokens) or is_unknown(endpoint):
        out.cannot_decide(
            f"{r.label()}: metadataOptions.httpTokens or httpEndpoint is unknown before creation",
            prop="metadataOptions",
            remedy=LITERAL,
        )
    elif endpoint == "disabled" or tokens == "required":
        return
    elif tokens is None:
        # Unset, IMDSv1 stays on unless the AMI was registered IMDSv2-only: the image is often
        # chosen at deploy time (an SSM parameter), so the program must say it.
        out.violation(
            f"{r.label()} leaves httpTokens unset: IMDSv1 answers unless the AMI happens to be IMDSv2-only."
        )
    else:
        out.violation(f"{r.label()} allows IMDSv1 (httpTokens '{tokens}').")


# --- NAT instances ----------------------------------------------------------------------------

NETWORK_INTERFACE = "aws:ec2/networkInterface:NetworkInterface"


def source_dest_check_off(r: Res) -> bool | None:
    """Is this an instance or network interface with source/destination checking off (a NAT
    instance's, which forwards traffic that is not its own)? None while the flag is unknown."""
    value = r.get("sourceDestCheck")
    if is_unknown(value):
        return None
    return value is False or (isinstance(value, str) and value.lower() == "false")


def nat_instance(stack: Stack, r: Res) -> bool | None:
    """Is `r` (an instance, a launch template, an Auto Scaling group) a NAT instance or what
    launches one? An instance says so with sourceDestCheck false. A launch template cannot carry
    that flag (EC2's launch template data has no such field): it launches NAT instances when a
    network interface it attaches (networkInterfaceId) is one of this stack with the check off;
    a group, when its launch template does. None while that is unknown."""
    if r.type == INSTANCE:
        own = source_dest_check_off(r)
        if own is not False:
            return own
    if r.type in (INSTANCE, LAUNCH_TEMPLATE):
        verdicts: list[bool | None] = []
        for nic in as_list(r.get("networkInterfaces")):
            ref = nic.get("networkInterfaceId") if isinstance(nic, dict) else None
            if ref is None:
                continue
            key = "networkInterfaces"
            verdicts += [
                source_dest_check_off(e) for e in stack.resolve(r, key, ref, (NETWORK_INTERFACE,)) or ()
            ]
        return any_of(verdicts)
    if r.type == AUTOSCALING_GROUP:
        templates = stack.resolve(r, "launchTemplate", template_ref(r), (LAUNCH_TEMPLATE,)) or []
        verdicts = [nat_instance(stack, t) for t in templates]
        return any_of(verdicts)
    return False


# --- public IPs -----------------------------------------------------------------------------


def _public_ip_prop(r: Res) -> str:
    return "networkInterfaces" if r.type == LAUNCH_TEMPLATE else "associatePublicIpAddress"


@resource_policy("ec2-no-public-ip", MANDATORY, Severity.HIGH, types=list(_LAUNCH_TYPES))
def ec2_no_public_ip(r: Res, _cfg: Config, out: Findings) -> None:
    """Instances, launch templates and launch configurations do not ask for public IPv4 addresses (a NAT
    instance, with source/destination checking off, is exempt).

    Remediation: Set associate_public_ip_address=False (a launch template's network_interfaces take the string
    'false'); instances reach AWS APIs and the internet through the NAT gateway or VPC endpoints. Each public
    IPv4 also costs $3.65 a month. A NAT instance needs one: give it source_dest_check=False, which is what
    makes it a NAT instance.
    """
    prop = _public_ip_prop(r)
    for value in public_ip_requests(r):
        if is_unknown(value):
            out.cannot_decide(
                f"{r.label()}: associatePublicIpAddress is unknown before creation", prop=prop, remedy=LITERAL
            )
        elif truthy(value):
            nat = source_dest_check_off(r) if r.type == INSTANCE else False
            if nat is None:
                out.cannot_decide(
                    f"{r.label()} asks for a public IPv4 address, and whether it is a NAT instance "
                    "(sourceDestCheck false) is unknown before creation",
                    prop="sourceDestCheck",
                    remedy=LITERAL,
                )
            elif not nat:
                out.violation(f"{r.label()} gives its instances a public IPv4 address.")


# --- placement ----------------------------------------------------------------------------


def _launch_settings(stack: Stack, group: Res) -> Res | None:
    """The launch template or launch configuration of an Auto Scaling group, if in this stack."""
    if group.get("launchConfiguration"):
        found = stack.resolve(
            group, "launchConfiguration", group.get("launchConfiguration"), (LAUNCH_CONFIGURATION,)
        )
    else:
        found = stack.resolve(group, "launchTemplate", template_ref(group), (LAUNCH_TEMPLATE,))
    return found[0] if found else None


def _launch_groups(source: Res) -> tuple[str, Any]:
    """(property, security group ids) of a launch template (its first interface that names groups,
    else vpcSecurityGroupIds: EC2 refuses both at once) or a launch configuration."""
    if source.type == LAUNCH_CONFIGURATION:
        return "securityGroups", source.get("securityGroups")
    nics = source.get("networkInterfaces")
    if is_unknown(nics):
        return "networkInterfaces", nics
    for nic in as_list(nics):
        if isinstance(nic, dict) and nic.get("securityGroups") is not None:
            return "networkInterfaces", nic.get("securityGroups")
    return "vpcSecurityGroupIds", source.get("vpcSecurityGroupIds")


def _launch_public_ip(source: Res) -> Any:
    """What the launch settings ask for; unset, the subnet's auto-assign setting decides."""
    value = next((v for v in public_ip_requests(source) if v is not None), None)
    return aws.SUBNET_DECIDES if value is None else value


def _skip_nat(stack: Stack, r: Res, out: Findings) -> bool:
    """A NAT instance (or what launches one) must sit in a public subnet: it is not judged."""
    nat = nat_instance(stack, r)
    if nat is None:
        out.unknown(
            r,
            "sourceDestCheck",
            "its placement",
            subject="whether it is a NAT instance (sourceDestCheck false)",
        )
    return nat is not False


@stack_policy("ec2-private-subnets", MANDATORY, Severity.HIGH)
def ec2_private_subnets(stack: Stack, _cfg: Config, out: Findings) -> None:
    """Instances, Auto Scaling groups and launch templates place instances in private subnets (NAT instances,
    with source/destination checking off, are exempt).

    Remediation: Give instances subnet_id and groups vpc_zone_identifiers from the private subnets
    (vpc.private_subnet_ids); never rely on the default VPC. A NAT instance belongs in a public subnet: give
    it source_dest_check=False (a launch template: attach a network interface that has it).
    """
    for inst in stack.of_type(INSTANCE):
        if _skip_nat(stack, inst, out):
            continue
        subnet = inst.get("subnetId")
        if subnet is None and inst.get("launchTemplate"):
            templates = stack.resolve(inst, "launchTemplate", template_ref(inst), (LAUNCH_TEMPLATE,))
            if templates is None:
                out.cannot_decide(
                    f"{inst.label()}: its launch template, which may name its subnet, is not in this stack",
                    prop="launchTemplate",
                    remedy="launch it from a template of this stack, or give it subnet_id",
                    urn=inst.urn,
                )
                continue
            if any(_template_subnets(t) for t in templates):
                continue  # placed by its launch template, judged below
        if subnet is None:
            out.violation(
                f"{inst.label()} names no subnet, so it launches in a default subnet of the default VPC, "
                "which is public.",
                inst.urn,
            )
            continue
        public_ip = inst.get("associatePublicIpAddress")
        aws.judge_placement(
            stack,
            inst,
            ("subnetId", subnet),
            ("vpcSecurityGroupIds", inst.get("vpcSecurityGroupIds")),
            aws.SUBNET_DECIDES if public_ip is None else public_ip,
            out,
        )
    for group in stack.of_type(AUTOSCALING_GROUP):
        if _skip_nat(stack, group, out):
            continue
        subnets = group.get("vpcZoneIdentifiers")
        if not is_unknown(subnets) and not as_list(subnets):
            out.violation(
                f"{group.label()} has no vpc_zone_identifiers, so its instances launch in the default "
                "VPC's default subnets, which are public.",
                group.urn,
            )
            continue
        # The instances' security groups and public IP request are their launch settings'.
        source = _launch_settings(stack, group)
        aws.judge_placement(
            stack,
            group,
            ("vpcZoneIdentifiers", subnets),
            None if source is None else _launch_groups(source),
            aws.SUBNET_DECIDES if source is None else _launch_public_ip(source),
            out,
            groups_owner=source,
        )
    for template in stack.of_type(LAUNCH_TEMPLATE):
        if _skip_nat(stack, template, out):
            continue
        subnets = _template_subnets(template)
        if subnets is None or subnets:
            aws.judge_placement(
                stack,
                template,
                ("networkInterfaces", template.get("networkInterfaces") if subnets is None else subnets),
                _launch_groups(template),
                _launch_public_ip(template),
                out,
            )


def _template_subnets(template: Res) -> list[Any] | None:
    """The subnets a launch template's network interfaces name; None when they are unknown."""
    nics = template.get("networkInterfaces")
    if is_unknown(nics):
        return None
    return [n.get("subnetId") for n in as_list(nics) if isinstance(n, dict) and n.get("subnetId")]


# --- EBS backups ----------------------------------------------------------------------------


@stack_policy(
    "ebs-volume-backed-up",
    MANDATORY,
    Severity.HIGH,
    schema={
        "exemptTagKey": setting(
            "A volume with this tag set to 'true' holds nothing worth a backup.", "wwhd:stateless"
        )
    },
)
def ebs_volume_backed_up(stack: Stack, cfg: Config, out: Findings) -> None:
    """EBS volumes (which outlive instances to keep state) are snapshotted by an AWS Backup selection or a DLM
    lifecycle policy, unless tagged as holding no state.

    Remediation: Add the volume's ARN to the resources of an aws.backup.Selection of the stack's backup plan
    (or select it by tag), or create an aws.dlm.LifecyclePolicy whose target_tags match it. A volume whose
    data can be rebuilt may be tagged with the exempt tag key set to 'true' instead.
    """
    coverage = stack.memo("ebs-backup-coverage", lambda: BackupCoverage(stack))
    exempt = str(cfg.get("exemptTagKey") or "")
    for volume in stack.of_type(EBS_VOLUME):
        tags = volume_tags(volume)
        if tags is not None and exempt and truthy(tags.get(exempt)):
            continue
        covered = coverage.covers(volume)
        if covered is None:
            out.unknown(
                volume,
                "resources",
                "whether one snapshots it",
                subject="a backup selection's resources or tags (or a DLM policy's targets)",
                plural=True,
                remedy="select it by its own output (resources=[volume.arn]) or by tags set from literals",
            )
        elif not covered:
            out.violation(
                f"{volume.label()} is not snapshotted by any AWS Backup selection or DLM policy.", volume.urn
            )


POLICIES = [ebs_encrypted, ec2_imdsv2_required, ec2_no_public_ip, ec2_private_subnets, ebs_volume_backed_up]
