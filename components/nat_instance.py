"""WwhdNatInstance: one small EC2 instance that gives the private subnets their way out.

A dev economy (``wwhd:network.natGateways: instance``): a t4g.nano with its public address costs
about 7 USD a month where a NAT gateway costs about 37, at the price of availability (one
instance in one AZ), bandwidth (a nano's) and patching (ours). The awsx VPC is built without NAT
gateways; this component adds the instance in the first public subnet and a default route to
its network interface in each private subnet's route table.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx

from components.component import WwhdComponent
from components.container_host import (
    Architecture,
    family_architecture,
    instance_family,
    session_manager_statements,
)
from components.roles import instance_role
from iam_document import policy_document

ROOT_VOLUME_GB = 8
TOKEN = "wwhd:index:WwhdNatInstance"

DEFAULT_ROUTE = "0.0.0.0/0"

# Amazon Linux 2023 through AWS's public SSM parameters, the standard image rather than the
# minimal one: only the standard image ships the SSM agent, and Session Manager is the only
# way onto an instance without a key pair. "kernel-default" follows AL2023's default kernel.
AMI_PARAMETERS: dict[Architecture, str] = {
    "arm64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
    "x86_64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
}

# Instance families Amazon Linux 2023 does not run on.
AL2023_UNSUPPORTED_FAMILIES = frozenset({"a1"})

# Burstable families (t2, t3, t3a, t4g): only they take a CPU credit specification.
_BURSTABLE_PREFIX = "t"

# The route awsx gives each private subnet's table toward its NAT gateway (pulumi-awsx
# awsx/ec2/vpc.ts): a Route named after the subnet, ``<vpc>-private-<AZ number>``, child of
# the table, child of the subnet, child of the VPC resource, child of the component.
_AWSX_ROUTE_CHAIN = "aws:ec2/vpc:Vpc$aws:ec2/subnet:Subnet$aws:ec2/routeTable:RouteTable$aws:ec2/route:Route"

UNIT_NAME = "wwhd-nat.service"
NFT_TABLE = "wwhd_nat"
# How long systemd waits before running the NAT setup again after a failure (a package
# repository not reachable yet, say).
RETRY_SECONDS = 30


@dataclass(frozen=True)
class WwhdNatInstanceArgs:
    """What the NAT instance is built from."""

    vpc: awsx.ec2.Vpc
    """The awsx VPC, built with NAT strategy None: the instance goes in its first public subnet,
    a default route in each private subnet's route table (awsx's children) leads to it."""
    vpc_cidr: str
    """The VPC's IPv4 range: the only sources the instance forwards and masquerades."""
    private_subnet_count: int
    """How many private subnets (and route tables) the VPC has: one route each."""
    security_group_id: pulumi.Input[str]
    """The instance's group (the network makes it: HTTPS in from the VPC, out to anywhere)."""
    region: str
    """AWS region of the stack: the ARN in the instance role's policy."""
    instance_type: str = "t4g.nano"
    """EC2 instance type. Default t4g.nano (2 vCPU, 0.5 GiB, about 3 USD a month on demand in
    us-west-2; 32 Mbit/s baseline bandwidth, bursts to 5 Gbit/s)."""
    permissions_boundary: pulumi.Input[str] | None = None
    """The permissions boundary of the instance role. Default: none."""

    def __post_init__(self) -> None:
        problems = []
        family = instance_family(self.instance_type)
        if family is None:
            problems.append(f"instance_type: {self.instance_type!r} is not an EC2 instance type")
        elif family in AL2023_UNSUPPORTED_FAMILIES:
            problems.append(f"instance_type: Amazon Linux 2023 does not run on {family} instances")
        try:
            ipaddress.IPv4Network(self.vpc_cidr, strict=True)
        except ValueError as exc:
            problems.append(f"vpc_cidr: {self.vpc_cidr!r} is not an IPv4 network ({exc})")
        if self.private_subnet_count < 1:
            problems.append(f"private_subnet_count: at least 1, not {self.private_subnet_count}")
        if problems:
            raise ValueError("invalid WwhdNatInstanceArgs: " + "; ".join(problems))

    @property
    def architecture(self) -> Architecture:
        """arm64 for a Graviton type: picks the image."""
        return family_architecture(instance_family(self.instance_type) or "")


class WwhdNatInstance(WwhdComponent[WwhdNatInstanceArgs], token=TOKEN):
    """An Amazon Linux 2023 instance in the first public subnet, with a public IPv4 address and
    the source/destination check off, that forwards the VPC's IPv4 traffic and masquerades it
    behind its own address (nftables, set up at every boot by a systemd unit). IMDSv2 only, no
    key pair (Session Manager instead), encrypted root volume, EC2's simplified automatic
    recovery on. Each private subnet's route table sends 0.0.0.0/0 to its network interface.

    Its role may only run the Session Manager agent.
    """

    instance_id: pulumi.Output[str]
    """The instance (``i-...``): ``aws ssm start-session --target`` takes it."""
    network_interface_id: pulumi.Output[str]
    """Its primary network interface, the private subnets' default route."""
    public_ip: pulumi.Output[str]
    """The address the VPC's traffic leaves with (it changes when the instance is replaced)."""
    instance_role_arn: pulumi.Output[str]
    """The instance role (Session Manager only)."""

    def _build(self, name: str, args: WwhdNatInstanceArgs) -> None:

        nat_role = instance_role(
            name,
            profile=name,
            description=f"W.W.H.D. {name}: Session Manager only",
            policy=lambda account: policy_document(
                *session_manager_statements(account=account, region=args.region)
            ),
            boundary=args.permissions_boundary,
            opts=self._child,
        )

        burstable = (instance_family(args.instance_type) or "").startswith(_BURSTABLE_PREFIX)
        instance = aws.ec2.Instance(
            name,
            ami=aws.ssm.get_parameter_output(name=AMI_PARAMETERS[args.architecture], opts=self._invoke).value,
            instance_type=args.instance_type,
            subnet_id=args.vpc.public_subnet_ids.apply(lambda ids: ids[0]),
            vpc_security_group_ids=[args.security_group_id],
            # It translates to its own public address, and it receives packets addressed to
            # the internet, which EC2 drops unless the source/destination check is off.
            associate_public_ip_address=True,
            source_dest_check=False,
            iam_instance_profile=nat_role.profile.name,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            # The account's aws/ebs key: the disk holds the OS only.
            # The image's own size (Amazon Linux 2023 ships an 8 GiB root), stated so the bill
            # and the cost estimate agree; the NAT keeps nothing on disk.
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                encrypted=True, volume_type="gp3", volume_size=ROOT_VOLUME_GB, delete_on_termination=True
            ),
            # Standard credits: under sustained load the CPU slows to its baseline instead of
            # the bill growing (a NAT forwarding dev traffic stays far below it).
            credit_specification=aws.ec2.InstanceCreditSpecificationArgs(cpu_credits="standard")
            if burstable
            else None,
            # Simplified automatic recovery (EC2's default, stated): on failed hardware EC2
            # restarts the instance on another host with the same id, addresses and interface.
            maintenance_options=aws.ec2.InstanceMaintenanceOptionsArgs(auto_recovery="default"),
            monitoring=False,
            user_data=user_data(args.vpc_cidr),
            # cloud-init runs user data once per instance: a new script needs a new instance.
            user_data_replace_on_change=True,
            tags={"Name": name},
            # The agent must find its role's policy at first boot.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[nat_role.policy]),
        )

        for az_number in range(1, args.private_subnet_count + 1):
            subnet_id = args.vpc.private_subnet_ids.apply(lambda ids, i=az_number - 1: ids[i])
            # awsx creates each private subnet's route table and its association as its own
            # children; the look-up finds the table through that association, so it must not
            # run before the association exists. The subnet id is an output of the awsx
            # component, which the engine resolves only once awsx has finished registering
            # every child (its provider waits for them before answering), and depends_on tells
            # the engine the same explicitly. On a new stack's preview the id is unknown: the
            # look-up is skipped and the route's table shows as unknown until the update.
            table = aws.ec2.get_route_table_output(
                subnet_id=subnet_id, opts=pulumi.InvokeOutputOptions(parent=self, depends_on=[args.vpc])
            )
            aws.ec2.Route(
                f"{name}-private-{az_number}",
                route_table_id=table.route_table_id,
                destination_cidr_block=DEFAULT_ROUTE,
                network_interface_id=instance.primary_network_interface_id,
                # A stack switching from a NAT gateway: awsx's own 0.0.0.0/0 route in the same
                # table would only be deleted after this one is created, and AWS refuses a
                # second route to the same destination. The alias makes this route that one,
                # retargeted in place (ReplaceRoute) instead of created beside it.
                opts=pulumi.ResourceOptions(
                    parent=self,
                    aliases=[args.vpc.urn.apply(lambda urn, n=az_number: awsx_gateway_route_urn(urn, n))],
                ),
            )

        self.instance_id = instance.id
        self.network_interface_id = instance.primary_network_interface_id
        self.public_ip = instance.public_ip
        self.instance_role_arn = nat_role.role.arn


# --- pure helpers (tested without mocks) -------------------------------------------------------


def awsx_gateway_route_urn(vpc_urn: str, az_number: int) -> str:
    """The URN of the route awsx makes from private subnet ``az_number`` (1-based) to its NAT
    gateway, for the awsx VPC whose URN is ``vpc_urn``."""
    head, qualified_type, vpc_name = vpc_urn.rsplit("::", 2)
    return f"{head}::{qualified_type}${_AWSX_ROUTE_CHAIN}::{vpc_name}-private-{az_number}"


@dataclass(frozen=True)
class NatPaths:
    """Where the boot script writes on Amazon Linux 2023 (the tests use a scratch directory)."""

    sysctl: str = "/etc/sysctl.d/90-wwhd-nat.conf"
    setup: str = "/usr/local/sbin/wwhd-nat"
    unit: str = f"/etc/systemd/system/{UNIT_NAME}"


def sysctl_conf() -> str:
    """The kernel settings, kept in /etc/sysctl.d so systemd applies them at every boot."""
    return (
        "# W.W.H.D. NAT instance: route the VPC's packets onward.\n"
        "net.ipv4.ip_forward = 1\n"
        "# No ICMP redirects: the senders' route tables, not this host, choose their next hop.\n"
        "net.ipv4.conf.all.send_redirects = 0\n"
        "net.ipv4.conf.default.send_redirects = 0\n"
    )


def setup_script(vpc_cidr: str, paths: NatPaths = NatPaths()) -> str:
    """The NAT setup the systemd unit runs at every boot: forwarding on, then one nftables table
    that forwards only connections opened from the VPC and masquerades them out of the interface
    holding the default route. Idempotent: it replaces its table whole."""
    settings = {"VPC_CIDR": vpc_cidr, "SYSCTL_FILE": paths.sysctl, "TABLE": NFT_TABLE}
    return _SETUP_HEADER + _assignments(settings) + _SETUP_STEPS


def unit_file(paths: NatPaths = NatPaths()) -> str:
    """The systemd unit: runs the setup at every boot, and again every ``RETRY_SECONDS`` until
    it succeeds (no start limit, so it never gives up)."""
    return (
        "[Unit]\n"
        "Description=W.W.H.D. NAT: forward and masquerade the VPC's IPv4 traffic\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "StartLimitIntervalSec=0\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"ExecStart={paths.setup}\n"
        "Restart=on-failure\n"
        f"RestartSec={RETRY_SECONDS}\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def user_data(vpc_cidr: str, paths: NatPaths = NatPaths()) -> str:
    """The boot script (bash, Amazon Linux 2023): writes the sysctl file, the setup script and
    its unit, then enables and starts the unit."""
    settings = {
        "SYSCTL_FILE": paths.sysctl,
        "SYSCTL": sysctl_conf(),
        "SETUP_FILE": paths.setup,
        "SETUP": setup_script(vpc_cidr, paths),
        "UNIT_FILE": paths.unit,
        "UNIT": unit_file(paths),
        "UNIT_NAME": UNIT_NAME,
    }
    return _BOOT_HEADER + _assignments(settings) + _BOOT_STEPS


def _assignments(settings: dict[str, Any]) -> str:
    return "".join(f"{key}={shlex.quote(str(value))}\n" for key, value in settings.items())


_BOOT_HEADER = """#!/bin/bash
# W.W.H.D. NAT instance. cloud-init runs this once per instance: it installs what must hold
# across reboots (kernel settings, the NAT setup and a systemd unit that runs it at every boot)
# and starts the unit, which runs the setup again after a failure until it succeeds.
set -euo pipefail

"""

_BOOT_STEPS = r"""
printf '%s' "$SYSCTL" > "$SYSCTL_FILE"
printf '%s' "$SETUP" > "$SETUP_FILE"
chmod 0755 "$SETUP_FILE"
printf '%s' "$UNIT" > "$UNIT_FILE"
systemctl daemon-reload
systemctl enable --now "$UNIT_NAME"
"""

_SETUP_HEADER = """#!/bin/bash
# W.W.H.D. NAT setup: forward the VPC's IPv4 traffic and masquerade it behind this instance's
# address. Run by wwhd-nat.service at every boot; safe to run again.
set -euo pipefail

"""

_SETUP_STEPS = r"""
sysctl -q -p "$SYSCTL_FILE"

# Amazon Linux 2023 filters packets with nftables (its iptables is a layer over it); the image
# may lack the nft tool, which its repositories carry (reached through this instance's own
# public address).
command -v nft > /dev/null || dnf install -y nftables

# The interface holding the default route (ens5 on Nitro instances): asked, not assumed.
IFACE=$(ip -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
if [ -z "$IFACE" ]; then
  echo "wwhd-nat: no default route yet" >&2
  exit 1
fi

# Declaring the table, deleting it and declaring it again makes the load idempotent. Only
# connections opened from the VPC to outside it are forwarded and translated; replies follow
# their connection.
nft -f - <<EOF
table ip $TABLE
delete table ip $TABLE
table ip $TABLE {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "$IFACE" ip saddr $VPC_CIDR ip daddr != $VPC_CIDR accept
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "$IFACE" ip saddr $VPC_CIDR ip daddr != $VPC_CIDR masquerade
  }
}
EOF

if [ "$(sysctl -n net.ipv4.ip_forward)" != 1 ]; then
  echo "wwhd-nat: IPv4 forwarding is still off" >&2
  exit 1
fi
echo "wwhd-nat: forwarding $VPC_CIDR out of $IFACE"
"""
