"""WwhdDataVolume: the EFS file system that holds SQLite and Qdrant files, and its backups."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.backup import BackupPolicy, DailyBackups
from components.component import WwhdComponent
from iam_document import policy_document
from stack_config import StorageConfig

TOKEN = "wwhd:index:WwhdDataVolume"

# Every writer runs as this POSIX user: the access points impose it on every NFS call, so
# the container's own user (Qdrant's image runs as root) never reaches the file system.
POSIX_UID = 1000
POSIX_GID = 1000
DIRECTORY_MODE = "755"

API_ROOT = "/data"
QDRANT_ROOT = "/qdrant"
SERVICES_ROOT = "/services"

EFS_MOUNT = "elasticfilesystem:ClientMount"
EFS_WRITE = "elasticfilesystem:ClientWrite"
EFS_ROOT = "elasticfilesystem:ClientRootAccess"
EFS_CLIENT_ACTIONS = [EFS_MOUNT, EFS_WRITE, EFS_ROOT]


def ia_transition(days: int) -> str:
    """The EFS TransitionToIA value for ``days``: ``AFTER_1_DAY`` is singular, the rest plural
    (the EFS API's TransitionToIARules enum)."""
    return "AFTER_1_DAY" if days == 1 else f"AFTER_{days}_DAYS"


@dataclass(frozen=True)
class WwhdDataVolumeArgs:
    """What the data volume is built from."""

    storage: StorageConfig
    """The ``wwhd:storage`` section: IA transition, throughput mode, protection."""
    key_arn: pulumi.Input[str]
    """The stack key (``WwhdStackKey.key_arn``): encrypts the file system."""
    private_subnet_ids: pulumi.Input[Sequence[str]]
    """Private subnets of the stack: one mount target in each."""
    subnet_count: int
    """How many entries ``private_subnet_ids`` holds (``network.availability_zones``, or the
    length of ``existingVpc.privateSubnetIds``). A plain number so that each mount target is
    a resource of its own rather than one created inside an ``apply``."""
    efs_security_group_id: pulumi.Input[str]
    """The mount targets' group (NFS from the task groups only)."""
    backups: BackupPolicy
    """How the file system is backed up (the stack's one policy, from ``wwhd:storage``)."""
    sqlite: bool = True
    """The API keeps SQLite on EFS (``database.engine: sqlite``): create the ``/data`` access
    point. Default True."""
    qdrant_on_efs: bool = True
    """Qdrant keeps its storage on EFS (placement ``sidecar`` or ``service``): create the
    ``/qdrant`` access point. Default True."""
    service_directories: Sequence[str] = ()
    """Extra services with a directory of their own (``/services/<name>``). Default: none."""

    def __post_init__(self) -> None:
        problems = []
        if self.subnet_count < 1:
            problems.append(f"subnet_count: at least one private subnet is needed, got {self.subnet_count}")
        if not (self.sqlite or self.qdrant_on_efs or self.service_directories):
            problems.append(
                "sqlite/qdrant_on_efs/service_directories: nothing would be stored; do not create the volume"
            )
        if problems:
            raise ValueError("invalid WwhdDataVolumeArgs: " + "; ".join(problems))


class WwhdDataVolume(WwhdComponent[WwhdDataVolumeArgs], token=TOKEN):
    """One encrypted EFS file system with a directory per writer, reachable only over TLS,
    only through each writer's access point, only by the task role that owns it; backed up
    daily by AWS Backup into a vault sealed with the stack key (and optionally copied to a
    second region).

    The seeds mounted the whole file system into both containers with no access point, no
    file system policy and no backup plan ("Automatic backups enabled" was never configured):
    any task could overwrite the other's files as root, and a bad write had no way back.
    """

    file_system_id: pulumi.Output[str]
    """Id of the file system (``fs-...``): the ECS volumes' ``file_system_id``."""
    file_system_arn: pulumi.Output[str]
    """ARN of the file system: the task roles' EFS statements."""
    mount_target_ids: pulumi.Output[Sequence[str]]
    """The mount targets, one per private subnet (tasks cannot mount before these exist)."""
    api_access_point_id: pulumi.Output[str] | None
    """The API's access point (``/data``); None unless ``sqlite``."""
    api_access_point_arn: pulumi.Output[str] | None
    """Its ARN; None unless ``sqlite``."""
    qdrant_access_point_id: pulumi.Output[str] | None
    """Qdrant's access point (``/qdrant``); None unless ``qdrant_on_efs``."""
    qdrant_access_point_arn: pulumi.Output[str] | None
    """Its ARN; None unless ``qdrant_on_efs``."""
    service_access_points: dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]]
    """Extra services' access points by service name: (id, ARN)."""
    backups: DailyBackups
    """Its daily backups: the vaults (a copy in ``storage.backup_copy_region``, if any), the plan
    and the role AWS Backup assumes."""

    def _build(self, name: str, args: WwhdDataVolumeArgs) -> None:
        storage = args.storage
        protected = pulumi.ResourceOptions(parent=self, protect=storage.protect)

        fs = aws.efs.FileSystem(
            f"{name}-efs",
            encrypted=True,
            kms_key_id=args.key_arn,
            performance_mode="generalPurpose",
            throughput_mode=storage.throughput_mode,
            # EFS takes one transition per LifecyclePolicy object (PutLifecycleConfiguration),
            # so the way out to IA and the way back are two entries.
            lifecycle_policies=[
                aws.efs.FileSystemLifecyclePolicyArgs(
                    transition_to_ia=ia_transition(storage.transition_to_ia_days)
                ),
                aws.efs.FileSystemLifecyclePolicyArgs(transition_to_primary_storage_class="AFTER_1_ACCESS"),
            ],
            tags={"Name": f"{name}-efs"},
            opts=protected,
        )

        # The stack's own plan below is the one backup: EFS's automatic backups would add a
        # second daily copy in aws/efs/automatic-backup-vault (AWS-managed key, fixed 35-day
        # retention, billed again). DISABLED also overrides the console's default of ENABLED.
        aws.efs.BackupPolicy(
            f"{name}-efs-auto-backup",
            file_system_id=fs.id,
            backup_policy=aws.efs.BackupPolicyBackupPolicyArgs(status="DISABLED"),
            opts=self._child,
        )

        subnet_ids = pulumi.Output.from_input(args.private_subnet_ids)
        mount_targets = [
            aws.efs.MountTarget(
                f"{name}-mount-{i}",
                file_system_id=fs.id,
                subnet_id=subnet_ids.apply(lambda ids, i=i: _nth_subnet(ids, i, args.subnet_count)),
                security_groups=[args.efs_security_group_id],
                opts=self._child,
            )
            for i in range(args.subnet_count)
        ]

        api_ap = self._access_point(name, "api", fs, API_ROOT) if args.sqlite else None
        qdrant_ap = self._access_point(name, "qdrant", fs, QDRANT_ROOT) if args.qdrant_on_efs else None
        service_aps = {
            svc: self._access_point(name, f"svc-{svc}", fs, f"{SERVICES_ROOT}/{svc}")
            for svc in args.service_directories
        }
        self._name, self._fs = name, fs

        self.file_system_id = fs.id
        self.file_system_arn = fs.arn
        self.mount_target_ids = pulumi.Output.all(*[mt.id for mt in mount_targets])
        self.api_access_point_id = api_ap.id if api_ap is not None else None
        self.api_access_point_arn = api_ap.arn if api_ap is not None else None
        self.qdrant_access_point_id = qdrant_ap.id if qdrant_ap is not None else None
        self.qdrant_access_point_arn = qdrant_ap.arn if qdrant_ap is not None else None
        self.service_access_points = {svc: (ap.id, ap.arn) for svc, ap in service_aps.items()}
        self.backups = args.backups.back_up(self, name, [fs.arn], selection="efs", what="the data volume")

    def admit(self, writers: Sequence[Writer]) -> aws.efs.FileSystemPolicy:
        """The file system policy, once the writers' task roles exist (EFS rejects a policy that
        names an unknown principal): TLS only, access points only, each writer's role through
        its own access point only. Call it once, after the services that mount the volume."""
        policy = pulumi.Output.all(
            fs_arn=self._fs.arn,
            roles=pulumi.Output.all(*[w.role_arn for w in writers]),
            aps=pulumi.Output.all(*[w.access_point_arn for w in writers]),
        ).apply(
            lambda v: json.dumps(
                file_system_policy(
                    v["fs_arn"],
                    [(w.sid, role, ap) for w, role, ap in zip(writers, v["roles"], v["aps"], strict=True)],
                )
            )
        )
        return aws.efs.FileSystemPolicy(
            f"{self._name}-efs-policy",
            file_system_id=self._fs.id,
            policy=policy,
            # Kept on: the policy names only the NFS client actions, so it cannot lock the
            # deploying principal out of PutFileSystemPolicy; a policy that would is a bug to
            # surface, not to bypass. (The provider retries while a new role's ARN propagates.)
            bypass_policy_lockout_safety_check=False,
            opts=self._child,
        )

    def _access_point(self, name: str, writer: str, fs: aws.efs.FileSystem, root: str) -> aws.efs.AccessPoint:
        """A writer's door: EFS runs every call through it as uid/gid 1000 and chroots it to
        ``root``, which it creates (owned by that user) on first mount."""
        return aws.efs.AccessPoint(
            f"{name}-{writer}-ap",
            file_system_id=fs.id,
            posix_user=aws.efs.AccessPointPosixUserArgs(uid=POSIX_UID, gid=POSIX_GID),
            root_directory=aws.efs.AccessPointRootDirectoryArgs(
                path=root,
                creation_info=aws.efs.AccessPointRootDirectoryCreationInfoArgs(
                    owner_uid=POSIX_UID, owner_gid=POSIX_GID, permissions=DIRECTORY_MODE
                ),
            ),
            tags={"Name": f"{name}-{writer}"},
            opts=self._child,
        )


@dataclass(frozen=True)
class Writer:
    """A service that writes through one access point: what ``WwhdDataVolume.admit`` takes."""

    sid: str
    """Statement id in the file system policy."""
    role_arn: pulumi.Input[str]
    """Its task role."""
    access_point_arn: pulumi.Input[str]
    """The only access point it may mount through."""


def _nth_subnet(ids: Sequence[str], i: int, count: int) -> str:
    if len(ids) < count:
        raise ValueError(f"subnet_count is {count} but only {len(ids)} private subnets were given")
    return ids[i]


def file_system_policy(file_system_arn: str, writers: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
    """The file system policy: TLS only, access points only, and each writer's role through its
    own access point only. ``writers`` lists (sid, role ARN, access point ARN).

    Any explicit policy also ends EFS's default of admitting every NFS client that reaches a
    mount target: a client without IAM authorization matches no Allow here. ClientRootAccess is
    never granted, and the access points impose uid 1000 regardless.
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": sid,
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": EFS_CLIENT_ACTIONS,
            "Resource": file_system_arn,
            "Condition": condition,
        }
        for sid, condition in (
            ("DenyWithoutTls", {"Bool": {"aws:SecureTransport": "false"}}),
            ("DenyWithoutAccessPoint", {"Null": {"elasticfilesystem:AccessPointArn": "true"}}),
        )
    ]
    for sid, role_arn, access_point_arn in writers:
        statements.append(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"AWS": role_arn},
                "Action": [EFS_MOUNT, EFS_WRITE],
                "Resource": file_system_arn,
                "Condition": {"StringEquals": {"elasticfilesystem:AccessPointArn": access_point_arn}},
            }
        )
    return policy_document(*statements)
