"""WwhdContainerHost: one ECS container instance whose data lives on an EBS volume that outlives it.

Qdrant needs block storage (its documentation rules out network file systems, and EFS is NFS),
so in the ``instance`` placement it runs as an ECS task on this host and bind-mounts a directory
of the volume. The instance is disposable: an Auto Scaling group of exactly one replaces it when
it fails, and the replacement attaches the same volume. The volume is the state: encrypted with
the stack key, backed up daily by AWS Backup, protected and retained.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

import session_manager
from components.backup import BackupPolicy, DailyBackups
from components.component import WwhdComponent
from components.roles import instance_role
from iam_document import policy_document

TOKEN = "wwhd:index:WwhdContainerHost"

Architecture = Literal["arm64", "x86_64"]

# The ECS-optimized Amazon Linux 2023 AMI, through AWS's public SSM parameters (ECS Developer
# Guide: Retrieving Amazon ECS-optimized Linux AMI metadata).
AMI_PARAMETERS: dict[str, str] = {
    "arm64": "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id",
    "x86_64": "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
}

# gp3: 1 GiB to 16 TiB (EBS User Guide, Amazon EBS volume types).
GP3_MIN_GB = 1
GP3_MAX_GB = 16384
# The AMI's root snapshot is 30 GiB; a smaller root volume is refused at launch.
ROOT_VOLUME_GB = 30
ROOT_DEVICE = "/dev/xvda"
# The EC2 API name the volume is attached under; Nitro instances expose it as an NVMe device
# whose serial number is the volume id, which is how the user data finds it.
DATA_DEVICE = "/dev/sdf"
FILE_SYSTEM = "xfs"

# Instance families built on the Xen hypervisor: their EBS volumes are /dev/xvd*, not NVMe,
# and the user data waits for the NVMe device. Every current family (and every Graviton one)
# is Nitro.
XEN_FAMILIES = frozenset(
    {"t2", "m3", "m4", "c3", "c4", "r3", "r4", "x1", "x1e", "i2", "i3", "d2", "p2", "g3"}
)

# The Qdrant image runs as root by default and its unprivileged variant as uid 1000, the user
# the EFS access points imposed: storage owned by 1000 serves both, and files migrated from EFS
# keep their owner.
DATA_UID = 1000
DATA_DIRECTORIES = ("storage", "snapshots")

# Tags the instance role's attach permission is conditioned on: the instance carries the
# first (from the launch template), the volume the second; a volume restored from a backup
# is given the same tag to become attachable.
HOST_TAG = "wwhd:host"
VOLUME_TAG = "wwhd:data-volume"

# How long a new instance waits for the old one to release the volume before giving up.
ATTACH_TIMEOUT_SECONDS = 600
# The ECS agent and the CloudWatch and SSM agents share the instance with the task: ECS
# leaves this much memory out of what it offers tasks.
ECS_RESERVED_MEMORY_MIB = 256
# A new instance installs packages, attaches and mounts before its checks count.
HEALTH_CHECK_GRACE_SECONDS = 300
# Metrics of the CloudWatch agent: one sample a minute.
AGENT_INTERVAL_SECONDS = 60

_INSTANCE_TYPE = re.compile(r"^([a-z][a-z0-9-]*)\.([a-z0-9]+)$")
_GRAVITON_FAMILY = re.compile(r"^(a1|[a-z]+\d+g[a-z0-9-]*)$")
_ATTRIBUTE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def instance_family(instance_type: str) -> str | None:
    """The family of an EC2 instance type (``t4g`` of ``t4g.small``), or None when malformed."""
    match = _INSTANCE_TYPE.match(instance_type)
    return match.group(1) if match else None


def family_architecture(family: str) -> Architecture:
    """The CPU architecture of an instance family: Graviton families (``a1`` and those with a
    ``g`` after the generation digit: ``t4g``, ``m7g``, ``c7gn``, ``x2gd``) are arm64."""
    return "arm64" if _GRAVITON_FAMILY.match(family) else "x86_64"


@dataclass(frozen=True)
class WwhdContainerHostArgs:
    """What the host is built from. Changing ``subnet_id``/``availability_zone`` moves the
    instance; the volume cannot follow (EBS volumes live in one AZ): see the restore runbook
    in docs/operations.md."""

    cluster_name: str
    """The ECS cluster the agent joins (``ECS_CLUSTER``); a physical name known before the
    cluster exists, so the instance role's ECS statements are known at preview."""
    subnet_id: pulumi.Input[str]
    """The one private subnet of the instance."""
    availability_zone: pulumi.Input[str]
    """The AZ of ``subnet_id``, where the volume is created."""
    security_group_ids: Sequence[pulumi.Input[str]]
    """Groups of the instance's own network interface (the caller makes them; tasks in awsvpc
    mode carry their own)."""
    key_arn: pulumi.Input[str]
    """The stack key: encrypts the data volume."""
    key_alias: str
    """The stack key's alias (``alias/wwhd-<stack>``): the instance role reaches the key through
    it, so the role's policy is known before the key exists."""
    permissions_boundary: pulumi.Input[str]
    """Permissions boundary of every role created here (the bootstrap's
    ``arn:<partition>:iam::<account>:policy/wwhd-workload-boundary``)."""
    backups: BackupPolicy
    """How the volume is backed up (the stack's one policy, from ``wwhd:storage``). It also
    gives the host its region and the volume its protection: see ``region`` and ``protect``."""
    instance_type: str = "t4g.small"
    """EC2 instance type (a Nitro type of ``architecture``). Default t4g.small (2 vCPU, 2 GiB,
    about 12 USD a month on demand in us-west-2)."""
    architecture: Architecture = "arm64"
    """CPU architecture: picks the AMI and must match ``instance_type``. Default arm64."""
    image_id: str | None = None
    """Pin the AMI. Default None: the recommended ECS-optimized AL2023 AMI at each deploy, so
    a deploy after AWS publishes a new AMI replaces the instance (a few minutes without Qdrant)."""
    volume_gb: int = 20
    """Size of the gp3 data volume in GiB (1-16384; it can grow in place, never shrink).
    Default 20 (about 1.60 USD a month)."""
    mount_path: str = "/var/lib/qdrant"
    """Where the volume is mounted on the host; the task bind-mounts directories below it.
    Default /var/lib/qdrant."""
    instance_attribute: tuple[str, str] = ("wwhd.role", "qdrant")
    """Custom ECS container instance attribute (``ECS_INSTANCE_ATTRIBUTES``) that the task's
    placement constraint requires. Default ``wwhd.role = qdrant``."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the instance and its root volume (the launch template tags what the provider's
    default tags do not reach). Default: none."""

    def __post_init__(self) -> None:
        where = "WwhdContainerHostArgs"
        problems = []
        family = instance_family(self.instance_type)
        if family is None:
            problems.append(f"instance_type: {self.instance_type!r} is not an EC2 instance type")
        elif family in XEN_FAMILIES:
            problems.append(
                f"instance_type: {self.instance_type} is a Xen type; the host needs a Nitro type (NVMe volumes)"
            )
        elif family_architecture(family) != self.architecture:
            problems.append(
                f"instance_type: {self.instance_type} is {family_architecture(family)}, "
                f"not architecture {self.architecture}"
            )
        if self.architecture not in AMI_PARAMETERS:
            problems.append(f"architecture: arm64 or x86_64, not {self.architecture!r}")
        if not GP3_MIN_GB <= self.volume_gb <= GP3_MAX_GB:
            problems.append(
                f"volume_gb: gp3 volumes hold {GP3_MIN_GB}-{GP3_MAX_GB} GiB, not {self.volume_gb}"
            )
        if not re.fullmatch(r"(/[A-Za-z0-9._-]+)+", self.mount_path) or self.mount_path.startswith(
            ("/etc", "/proc", "/sys", "/dev", "/boot", "/usr")
        ):
            problems.append(f"mount_path: {self.mount_path!r} is not a plain absolute data path")
        if not all(_ATTRIBUTE.match(part) for part in self.instance_attribute):
            problems.append("instance_attribute: name and value are 1-128 letters, digits, '.', '-' or '_'")
        if self.image_id is not None and not re.fullmatch(r"ami-[0-9a-f]{8,17}", self.image_id):
            problems.append(f"image_id: {self.image_id!r} is not an AMI id")
        if problems:
            raise ValueError(f"invalid {where}: " + "; ".join(problems))

    @property
    def region(self) -> str:
        """AWS region of the stack (ARNs of the role's policy, the agents' endpoints): the
        backup policy's, as AWS Backup keeps a resource's recovery points in its own region."""
        return self.backups.region

    @property
    def protect(self) -> bool:
        """Protect the volume from deletion: exactly when its backup vaults are protected, so
        the data and its way back are kept alike."""
        return self.backups.protect

    @property
    def placement_constraint(self) -> str:
        """The ECS placement constraint expression that keeps the task on this host."""
        name, value = self.instance_attribute
        return f"attribute:{name} == {value}"


@dataclass(frozen=True)
class FreeSpaceMetric:
    """Where the CloudWatch agent publishes the used share of the data volume."""

    namespace: str
    """The agent's namespace (``WWHD/<stack>/<host>``)."""
    name: str
    """``disk_used_percent``."""
    dimensions: Mapping[str, str]
    """``{"path": <mount path>}``: the agent rolls the metric up to the mount point alone, so
    the dimensions stay the same across instance replacements."""


@dataclass(frozen=True)
class HostVolume:
    """The data volume, where it is mounted and how full it is."""

    id: pulumi.Output[str]
    """The volume (``vol-...``)."""
    arn: pulumi.Output[str]
    """Its ARN."""
    mount_path: str
    """Where it is mounted on the host: the boot script makes Qdrant's directories below it."""
    free_space: FreeSpaceMetric
    """The CloudWatch agent's metric of the volume, for the free-space alarm."""

    @property
    def storage_path(self) -> str:
        """The directory the task bind-mounts as Qdrant's storage (``<mount>/storage``)."""
        return f"{self.mount_path}/storage"

    @property
    def snapshots_path(self) -> str:
        """The directory for Qdrant's snapshots (``<mount>/snapshots``), on the volume rather
        than the root disk."""
        return f"{self.mount_path}/snapshots"


@dataclass(frozen=True)
class HostInstances:
    """The Auto Scaling group of one instance, and what each instance is launched with."""

    group_name: pulumi.Output[str]
    """The Auto Scaling group (the alarms' AutoScalingGroupName)."""
    group_arn: pulumi.Output[str]
    """Its ARN (an ECS capacity provider takes it)."""
    launch_template_id: pulumi.Output[str]
    """The launch template."""
    role_arn: pulumi.Output[str]
    """The instance role."""
    profile_name: pulumi.Output[str]
    """The instance profile (``wwhd-...``)."""


class WwhdContainerHost(WwhdComponent[WwhdContainerHostArgs], token=TOKEN):
    """One ECS container instance (Graviton by default) in a private subnet, from the
    ECS-optimized Amazon Linux 2023 AMI: IMDSv2 only, no public address, no SSH key (Session
    Manager instead), in an Auto Scaling group of exactly one. At boot it attaches the stack's
    encrypted gp3 volume (waiting while a replaced instance still holds it), formats it only if
    it holds no file system, mounts it, and only then joins the cluster with its placement
    attribute, so the task never starts on an empty root disk.

    Its role may run the ECS agent in this cluster, open Session Manager channels, attach
    volumes tagged as this host's to instances tagged as this host, and publish metrics in its
    own namespace; nothing else. AWS Backup keeps a daily recovery point of the volume.
    """

    volume: HostVolume
    """The data volume: its id, mount point, Qdrant's directories, its free-space metric."""
    instances: HostInstances
    """The Auto Scaling group, its launch template, the instance role and profile."""
    placement_constraint: str
    """``attribute:wwhd.role == qdrant``: the task's ``memberOf`` placement constraint, which
    only this host's instances meet (they carry the attribute once the volume is mounted)."""
    backups: DailyBackups
    """The volume's daily backups (the role is also the one for the restore jobs an operator
    starts)."""

    def _build(self, name: str, args: WwhdContainerHostArgs) -> None:
        host_id = f"{pulumi.get_stack()}/{name}"
        metric = FreeSpaceMetric(
            namespace=metric_namespace(pulumi.get_stack(), name),
            name="disk_used_percent",
            dimensions={"path": args.mount_path},
        )

        # Retained as well as protected: a replacement (a changed AZ, say) must never delete
        # the only copy of the vectors; the old volume stays until someone deletes it by hand.
        volume = aws.ebs.Volume(
            f"{name}-data",
            availability_zone=args.availability_zone,
            size=args.volume_gb,
            type="gp3",
            encrypted=True,
            kms_key_id=args.key_arn,
            tags={"Name": f"{name}-data", VOLUME_TAG: host_id},
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                retain_on_delete=True,
                # A volume restored from a recovery point (the runbook) carries its snapshot id;
                # the program must not read that as a reason to replace it.
                ignore_changes=["snapshotId"],
            ),
        )

        boot = HostBoot.of_host(args, metric.namespace)
        host_role = instance_role(
            f"{name}-instance",
            profile=f"{name}-profile",
            description=f"W.W.H.D. {name}: ECS agent, Session Manager, its data volume",
            policy=lambda account: instance_policy(account, boot, key_alias=args.key_alias, host_id=host_id),
            boundary=args.permissions_boundary,
            opts=self._child,
        )

        image_id: pulumi.Input[str] = (
            args.image_id
            or aws.ssm.get_parameter_output(name=AMI_PARAMETERS[args.architecture], opts=self._invoke).value
        )
        script = volume.id.apply(lambda volume_id: user_data(boot, volume_id))
        instance_tags = {**args.tags, "Name": name, HOST_TAG: host_id}
        template = aws.ec2.LaunchTemplate(
            f"{name}-template",
            description=f"W.W.H.D. {name}: ECS container instance with its data volume",
            image_id=image_id,
            instance_type=args.instance_type,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=host_role.profile.arn),
            # IMDSv2 only; one hop keeps containers in bridge mode off the instance role
            # (awsvpc tasks are blocked by ECS_AWSVPC_BLOCK_IMDS); the agents run on the host.
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            network_interfaces=[
                aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                    device_index=0,
                    associate_public_ip_address="false",
                    delete_on_termination="true",
                    security_groups=list(args.security_group_ids),
                )
            ],
            # The root disk holds the OS and images only. It uses the account's aws/ebs key, not
            # the stack key: the Auto Scaling service-linked role launches the instance, and a
            # customer managed key would need that role in its key policy.
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=ROOT_DEVICE,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=ROOT_VOLUME_GB,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            monitoring=aws.ec2.LaunchTemplateMonitoringArgs(enabled=False),
            user_data=script.apply(lambda text: base64.b64encode(text.encode()).decode()),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=instance_tags)
                for kind in ("instance", "volume")
            ],
            update_default_version=True,
            opts=self._child,
        )

        group = aws.autoscaling.Group(
            f"{name}-asg",
            name=f"{name}-{pulumi.get_stack()}",
            min_size=1,
            max_size=1,
            desired_capacity=1,
            vpc_zone_identifiers=[args.subnet_id],
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            health_check_type="EC2",
            health_check_grace_period=HEALTH_CHECK_GRACE_SECONDS,
            # One volume, one writer: the old instance is terminated before its replacement
            # launches, both when the group replaces an unhealthy instance and when a new
            # launch template version rolls out (a refresh starts on every version change).
            instance_maintenance_policy=aws.autoscaling.GroupInstanceMaintenancePolicyArgs(
                min_healthy_percentage=0, max_healthy_percentage=100
            ),
            instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
                strategy="Rolling",
                preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
                    min_healthy_percentage=0,
                    max_healthy_percentage=100,
                    instance_warmup=str(HEALTH_CHECK_GRACE_SECONDS),
                ),
            ),
            # The instance must be able to use its role (profile and policy) at first boot.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[host_role.policy]),
        )

        self.backups = args.backups.back_up(
            self, name, [volume.arn], selection="ebs", what=f"the {name} data volume"
        )
        self.volume = HostVolume(id=volume.id, arn=volume.arn, mount_path=args.mount_path, free_space=metric)
        self.instances = HostInstances(
            group_name=group.name,
            group_arn=group.arn,
            launch_template_id=template.id,
            role_arn=host_role.role.arn,
            profile_name=host_role.profile.name,
        )
        self.placement_constraint = args.placement_constraint


# --- pure helpers (tested without mocks) -------------------------------------------------------


def metric_namespace(stack: str, name: str) -> str:
    """The CloudWatch agent's namespace: ``WWHD/<stack>/<host>`` in the characters CloudWatch
    accepts in a namespace."""
    return re.sub(r"[^A-Za-z0-9._/#:-]", "-", f"WWHD/{stack}/{name}")


def instance_policy(account: str, boot: HostBoot, *, key_alias: str, host_id: str) -> dict[str, Any]:
    """The instance role's permissions: the ECS agent in ``boot``'s cluster, Session Manager,
    attaching this host's volume to this host's instances, and metrics in ``boot``'s namespace.
    ``Resource: "*"`` only for actions IAM authorizes on nothing narrower."""
    region, cluster_name = boot.region, boot.cluster_name
    here = f"{region}:{account}"
    cluster = f"arn:aws:ecs:{here}:cluster/{cluster_name}"
    through_ec2 = {"kms:ViaService": f"ec2.{region}.amazonaws.com"}
    # The stack key by its alias: its key id is random, so unknown until it exists.
    stack_key = f"arn:aws:kms:{here}:key/*"
    aliased = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": key_alias}}
    return policy_document(
        {
            # AmazonEC2ContainerServiceforEC2Role's ECS actions, scoped to the cluster,
            # without CreateCluster (the agent is told which cluster to join). Image pulls and
            # log writes are the task execution role's.
            "Sid": "EcsAgentCluster",
            "Effect": "Allow",
            "Action": [
                "ecs:DeregisterContainerInstance",
                "ecs:RegisterContainerInstance",
                "ecs:SubmitAttachmentStateChanges",
                "ecs:SubmitContainerStateChange",
                "ecs:SubmitTaskStateChange",
            ],
            "Resource": cluster,
        },
        {
            "Sid": "EcsAgentInstance",
            "Effect": "Allow",
            "Action": ["ecs:Poll", "ecs:StartTelemetrySession", "ecs:UpdateContainerInstancesState"],
            "Resource": f"arn:aws:ecs:{here}:container-instance/{cluster_name}/*",
        },
        {
            "Sid": "EcsAgentEndpoint",
            "Effect": "Allow",
            "Action": "ecs:DiscoverPollEndpoint",
            "Resource": "*",
        },
        *session_manager_statements(account=account, region=region),
        {
            # AttachVolume is authorized on the volume and on the instance: each must carry
            # this host's tag (the volume from the program or the restore runbook, the
            # instance from the launch template).
            "Sid": "AttachOwnVolume",
            "Effect": "Allow",
            "Action": "ec2:AttachVolume",
            "Resource": f"arn:aws:ec2:{here}:volume/*",
            "Condition": {"StringEquals": {f"aws:ResourceTag/{VOLUME_TAG}": host_id}},
        },
        {
            "Sid": "AttachToOwnInstances",
            "Effect": "Allow",
            "Action": "ec2:AttachVolume",
            "Resource": f"arn:aws:ec2:{here}:instance/*",
            "Condition": {"StringEquals": {f"aws:ResourceTag/{HOST_TAG}": host_id}},
        },
        {"Sid": "WatchVolume", "Effect": "Allow", "Action": "ec2:DescribeVolumes", "Resource": "*"},
        {
            # Attaching a volume encrypted with a customer managed key makes EC2 create a
            # grant and decrypt the volume's data key on the caller's behalf (EBS User Guide:
            # requirements for EBS encryption); only through EC2, grants only for AWS resources.
            "Sid": "GrantVolumeKeyToEc2",
            "Effect": "Allow",
            "Action": "kms:CreateGrant",
            "Resource": stack_key,
            "Condition": {
                "StringEquals": through_ec2,
                "Bool": {"kms:GrantIsForAWSResource": "true"},
                **aliased,
            },
        },
        {
            "Sid": "UseVolumeKeyThroughEc2",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:DescribeKey"],
            "Resource": stack_key,
            "Condition": {"StringEquals": through_ec2, **aliased},
        },
        {
            "Sid": "PublishHostMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": boot.metric_namespace}},
        },
    )


def session_manager_statements(*, account: str, region: str) -> list[dict[str, Any]]:
    """Session Manager instead of SSH: the SSM agent registers its instance, then opens the
    session channels (ssmmessages) and takes Run Command messages (ec2messages). The channel
    actions have no resource-level scope."""
    return [
        {
            "Sid": "SessionManagerRegister",
            "Effect": "Allow",
            "Action": "ssm:UpdateInstanceInformation",
            "Resource": f"arn:aws:ec2:{region}:{account}:instance/*",
        },
        {
            "Sid": "SessionManagerChannels",
            "Effect": "Allow",
            "Action": [*session_manager.MESSAGE_ACTIONS, *session_manager.CHANNEL_ACTIONS],
            "Resource": "*",
        },
    ]


@dataclass(frozen=True)
class HostPaths:
    """Where the boot script reads and writes on the ECS-optimized AMI (the tests run the script
    against a scratch directory instead)."""

    log: str = "/var/log/wwhd-host.log"
    fstab: str = "/etc/fstab"
    ecs_config: str = "/etc/ecs/ecs.config"
    agent_config: str = "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"
    agent_ctl: str = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
    disk_by_id: str = "/dev/disk/by-id"
    metadata: str = "http://169.254.169.254"


@dataclass(frozen=True)
class HostBoot:
    """What the boot script needs to know besides the volume's id: all known at preview."""

    region: str
    mount_path: str
    cluster_name: str
    instance_attribute: tuple[str, str]
    metric_namespace: str
    attach_timeout: int = ATTACH_TIMEOUT_SECONDS
    """Seconds to wait for the replaced instance to release the volume."""
    paths: HostPaths = HostPaths()

    @classmethod
    def of_host(cls, args: WwhdContainerHostArgs, metric_namespace: str) -> HostBoot:
        """What the host's args tell its boot script, with the agent's ``metric_namespace``."""
        return cls(args.region, args.mount_path, args.cluster_name, args.instance_attribute, metric_namespace)


def agent_config(boot: HostBoot) -> dict[str, Any]:
    """The CloudWatch agent's configuration: the used share of the data volume, one sample a
    minute, rolled up to the mount path (no host name, no device: both change with each
    instance, and an alarm needs the same dimensions every time)."""
    return {
        "agent": {
            "metrics_collection_interval": AGENT_INTERVAL_SECONDS,
            "omit_hostname": True,
            "region": boot.region,
        },
        "metrics": {
            "namespace": boot.metric_namespace,
            "aggregation_dimensions": [["path"]],
            "metrics_collected": {
                "disk": {
                    "resources": [boot.mount_path],
                    "measurement": ["used_percent"],
                    "drop_device": True,
                }
            },
        },
    }


def ecs_config(boot: HostBoot) -> dict[str, str]:
    """``/etc/ecs/ecs.config``: the cluster, the placement attribute, task roles, no instance
    metadata for awsvpc tasks, memory kept for the agents."""
    name, value = boot.instance_attribute
    return {
        "ECS_CLUSTER": boot.cluster_name,
        "ECS_INSTANCE_ATTRIBUTES": json.dumps({name: value}, separators=(",", ":")),
        "ECS_ENABLE_TASK_IAM_ROLE": "true",
        "ECS_AWSVPC_BLOCK_IMDS": "true",
        "ECS_RESERVED_MEMORY": str(ECS_RESERVED_MEMORY_MIB),
    }


def user_data(boot: HostBoot, volume_id: str) -> str:
    """The boot script (bash, ECS-optimized Amazon Linux 2023) that attaches ``volume_id``:
    settings as shell variables, then the fixed steps of ``_BOOT_STEPS``."""
    settings = {
        "REGION": boot.region,
        "VOLUME_ID": volume_id,
        "MOUNT": boot.mount_path,
        "DEVICE_NAME": DATA_DEVICE,
        "FS_TYPE": FILE_SYSTEM,
        "DATA_UID": str(DATA_UID),
        "DATA_DIRS": " ".join(DATA_DIRECTORIES),
        "ATTACH_TIMEOUT": str(boot.attach_timeout),
        "ECS_CONFIG": "\n".join(f"{k}={v}" for k, v in ecs_config(boot).items()),
        "AGENT_CONFIG": json.dumps(agent_config(boot), indent=2),
        "LOG_FILE": boot.paths.log,
        "FSTAB": boot.paths.fstab,
        "ECS_CONFIG_FILE": boot.paths.ecs_config,
        "AGENT_CONFIG_FILE": boot.paths.agent_config,
        "AGENT_CTL": boot.paths.agent_ctl,
        "DISK_BY_ID": boot.paths.disk_by_id,
        "IMDS": boot.paths.metadata,
    }
    lines = [f"{key}={shlex.quote(value)}" for key, value in settings.items()]
    return _BOOT_HEADER + "\n".join(lines) + "\n" + _BOOT_STEPS


_BOOT_HEADER = """#!/bin/bash
# W.W.H.D. container host: attach and mount the data volume, then join the ECS cluster.
# cloud-init runs this once per instance inside cloud-final; the ECS agent starts after
# cloud-final, so it reads the configuration written at the end (never restart it here: it
# would wait for cloud-final, which waits for this script).
set -euo pipefail

"""

_BOOT_STEPS = r"""exec > >(tee -a "$LOG_FILE") 2>&1

# Anything that fails stops the instance without joining the cluster: the Auto Scaling group
# replaces a stopped instance, and the task is never placed on a host without its volume.
give_up() {
  echo "wwhd-host: $1; stopping so that the Auto Scaling group replaces this instance" >&2
  shutdown -h now
  exit 1
}
trap 'give_up "step failed at line $LINENO"' ERR

TOKEN=$(curl -sf -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 21600" "$IMDS/latest/api/token")
imds() { curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/latest/meta-data/$1"; }
INSTANCE_ID=$(imds instance-id)
AZ=$(imds placement/availability-zone)

# While nothing is mounted the mount point is immutable: Docker cannot create a bind-mount
# source there, so a task can never write its data to the root disk.
mkdir -p "$MOUNT"
if ! mountpoint -q "$MOUNT"; then chattr +i "$MOUNT"; fi

# The ECS-optimized AMI is built on the minimal AL2023 image: no AWS CLI, no CloudWatch agent.
dnf install -y awscli-2 amazon-cloudwatch-agent xfsprogs

# Attach the volume, waiting while the instance being replaced still holds it.
deadline=$((SECONDS + ATTACH_TIMEOUT))
while :; do
  # A failed call (throttling, a network blip) reads as unknown and is tried again.
  volume=$(aws ec2 describe-volumes --region "$REGION" --volume-ids "$VOLUME_ID" \
    --query 'Volumes[0].[State, AvailabilityZone, Attachments[0].InstanceId]' --output text || true)
  read -r state volume_az holder <<< "$volume"
  if [ -n "${volume_az:-}" ] && [ "$volume_az" != "$AZ" ]; then
    give_up "volume $VOLUME_ID is in $volume_az, this instance in $AZ"
  fi
  if [ "${state:-}" = in-use ] && [ "${holder:-}" = "$INSTANCE_ID" ]; then
    break
  fi
  if [ "${state:-}" = available ]; then
    aws ec2 attach-volume --region "$REGION" --volume-id "$VOLUME_ID" --instance-id "$INSTANCE_ID" \
      --device "$DEVICE_NAME" || true
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    give_up "volume $VOLUME_ID is still ${state:-unknown} (held by ${holder:-nobody})"
  fi
  sleep 10
done

# Nitro exposes EBS volumes as NVMe devices whose serial is the volume id without its dash.
DEVICE="$DISK_BY_ID/nvme-Amazon_Elastic_Block_Store_${VOLUME_ID/-/}"
for _ in $(seq 60); do
  [ -e "$DEVICE" ] && break
  sleep 2
done
[ -e "$DEVICE" ] || give_up "no NVMe device for $VOLUME_ID"
DEVICE=$(readlink -f "$DEVICE")

# A new volume is formatted; a volume that holds anything (a file system, a partition table)
# never is. blkid -p exits 2 only when it finds no signature at all.
probe=0
blkid -p "$DEVICE" > /dev/null 2>&1 || probe=$?
case "$probe" in
  0) echo "wwhd-host: $DEVICE already holds a file system; keeping it" ;;
  2) mkfs -t "$FS_TYPE" "$DEVICE" ;;
  *) give_up "cannot probe $DEVICE (blkid exit $probe); not formatting it" ;;
esac

UUID=$(blkid -s UUID -o value "$DEVICE")
grep -q "UUID=$UUID " "$FSTAB" || echo "UUID=$UUID $MOUNT $FS_TYPE defaults,noatime,nofail 0 2" >> "$FSTAB"
mountpoint -q "$MOUNT" || mount "$MOUNT"
mountpoint -q "$MOUNT" || give_up "$MOUNT is not mounted"
# A volume grown since its file system was made (volumeGb raised) is used in full.
xfs_growfs "$MOUNT" > /dev/null
for dir in $DATA_DIRS; do
  install -d -m 0750 -o "$DATA_UID" -g "$DATA_UID" "$MOUNT/$dir"
done

printf '%s\n' "$AGENT_CONFIG" > "$AGENT_CONFIG_FILE"
"$AGENT_CTL" -a fetch-config -m ec2 -s -c "file:$AGENT_CONFIG_FILE"

# Last: with the volume mounted, the agent may join the cluster with the placement attribute.
printf '%s\n' "$ECS_CONFIG" >> "$ECS_CONFIG_FILE"
echo "wwhd-host: $VOLUME_ID mounted at $MOUNT; joining the cluster"
"""
