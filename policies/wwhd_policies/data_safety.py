"""Data safety: single writers on EFS-backed SQLite/Qdrant, backups, protection of stateful resources."""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import Severity

from . import _aws as aws
from ._policy import (
    ADVISORY,
    MANDATORY,
    Config,
    Findings,
    resource_policy,
    setting,
    stack_enforced,
    stack_policy,
    stacks_schema,
)
from ._util import Res, Stack, as_int, as_list, is_unknown

QDRANT_STORAGE_URL = "https://qdrant.tech/documentation/guides/installation/#storage"
QDRANT_STORAGE_QUOTE = (
    "Qdrant won't work with Network file systems such as NFS, or Object storage systems such as S3."
)
DEFAULT_DATA_PATTERN = r"(?i)qdrant|sqlite"


def stateful_efs_volumes(task_def: Res, pattern: str, out: Findings) -> list[str] | None:
    """Names of the task's EFS volumes that hold SQLite or Qdrant data.

    A volume counts when its name, EFS root directory, a mount path, or the image of a
    container mounting it matches `pattern`, or a container mounting it points a sqlite
    URL/path into the mount."""
    rx = re.compile(pattern)
    efs = {v.get("name"): v for v in aws.efs_volumes(task_def)}
    if not efs:
        return []
    conts = aws.containers(task_def, out, "which EFS volumes hold SQLite/Qdrant data", urn=task_def.urn)
    if conts is None:
        return None
    hits: set[str] = set()
    for name, vol in efs.items():
        cfg = vol["efsVolumeConfiguration"]
        if rx.search(str(name)) or rx.search(str(cfg.get("rootDirectory") or "")):
            hits.add(str(name))
    for c in conts:
        env_values = [str(e.get("value", "")) for e in as_list(c.get("environment")) if isinstance(e, dict)]
        for mp in as_list(c.get("mountPoints")):
            if not isinstance(mp, dict) or mp.get("sourceVolume") not in efs:
                continue
            path = str(mp.get("containerPath") or "")
            sqlite_in_mount = any("sqlite" in v.lower() and path and path in v for v in env_values)
            if rx.search(path) or rx.search(str(c.get("image") or "")) or sqlite_in_mount:
                hits.add(str(mp["sourceVolume"]))
    return sorted(hits)


@stack_policy(
    "single-writer-storage",
    MANDATORY,
    Severity.CRITICAL,
    schema={
        "dataPattern": setting(
            "Regex over volume names, EFS root directories, mount paths and images that "
            "marks an EFS volume as holding SQLite/Qdrant data.",
            DEFAULT_DATA_PATTERN,
        )
    },
)
def single_writer_storage(stack: Stack, cfg: Config, out: Findings) -> None:
    """A service whose tasks keep SQLite or Qdrant data on EFS never runs two tasks at once, and no two
    services write the same access point (or file system directory).

    Remediation: For that service: desired_count=1, autoscaling max_capacity=1 (or no autoscaling),
    deployment_maximum_percent=100 and deployment_minimum_healthy_percent=0 (stop, then start). Scale the
    stateless API separately, or move relational data to RDS. Give every writer its own access point.
    """
    pattern = str(cfg.get("dataPattern") or DEFAULT_DATA_PATTERN)
    stateful: dict[str, list[str]] = {}
    for td in stack.of_type(aws.TASK_DEF):
        vols = stateful_efs_volumes(td, pattern, out)
        if vols:
            stateful[td.urn] = vols
    if not stateful:
        return
    # Where each service's SQLite/Qdrant data lives -> the services writing there.
    writers: dict[str, dict[str, Res]] = {}
    for svc in stack.of_type(aws.SERVICE):
        tds = aws.task_definition_of(stack, svc)
        if tds is None:
            if any(td in stateful for td in svc.dependencies):
                tds = [stack.by_urn[u] for u in svc.dependencies if u in stateful]
            else:
                out.cannot_decide(
                    f"{svc.label()}: its task definition is not in this stack (or unknown before creation), so "
                    "whether it writes SQLite/Qdrant data on EFS cannot be judged",
                    prop="taskDefinition",
                    remedy="pass the task definition's own output (task_definition=task_def.arn)",
                    urn=svc.urn,
                )
                continue
        vols = sorted({v for td in tds for v in stateful.get(td.urn, [])})
        if not vols:
            continue
        for td in tds:
            for vol in aws.efs_volumes(td):
                if vol.get("name") in stateful.get(td.urn, []):
                    for where in _data_location(stack, td, vol["efsVolumeConfiguration"]):
                        writers.setdefault(where, {})[svc.urn] = svc
        what = f"{svc.label()} writes SQLite/Qdrant data on EFS (volumes {', '.join(vols)})"
        desired = svc.get("desiredCount")
        if is_unknown(desired):
            out.unknown(svc, "desiredCount", "whether it runs one writer")
        elif (as_int(desired) or 0) > 1:
            out.violation(f"{what} but runs desiredCount={as_int(desired)} tasks.", svc.urn)
        max_pct = svc.get("deploymentMaximumPercent")
        if is_unknown(max_pct):
            out.unknown(svc, "deploymentMaximumPercent", "whether a deployment runs two writers")
        elif max_pct is None or (as_int(max_pct) or 0) > 100:
            shown = "unset (ECS default 200)" if max_pct is None else str(as_int(max_pct))
            out.violation(
                f"{what} but deploymentMaximumPercent is {shown}: a deployment starts the new task "
                "beside the old one.",
                svc.urn,
            )
        targets, undecided = aws.scaling_targets_of(stack, svc)
        for t in targets:
            mx = t.get("maxCapacity")
            if is_unknown(mx):
                out.unknown(t, "maxCapacity", f"whether it scales {svc.name} beyond one writer")
            elif (as_int(mx) or 0) > 1:
                out.violation(
                    f"{what} but autoscaling target {t.name} allows maxCapacity={as_int(mx)}.", t.urn
                )
        for t in undecided:
            out.cannot_decide(
                f"{t.label()}: its resourceId is unknown before creation and depends on no service, so whether "
                f"it scales {svc.name} cannot be judged",
                prop="resourceId",
                remedy="build resource_id from the cluster and service names (service/<cluster>/<service>)",
                urn=t.urn,
            )
    # One task per service is not enough when two services mount the same data.
    for where, services in writers.items():
        if len(services) > 1:
            names = ", ".join(sorted(s.name for s in services.values()))
            first = stack.ordered(list(services.values()))[0]
            out.violation(f"Services {names} all write SQLite/Qdrant data in the same {where}.", first.urn)


def _data_location(stack: Stack, td: Res, efs: dict[str, Any]) -> list[str]:
    """What an EFS volume writes into: its access point, else its file system and root directory.

    A reference is matched to the stack's access point or file system by its id outputs, or,
    while the id is unknown during preview (every unknown reads as the same placeholder, so
    they are never compared), through the task definition's property dependencies: all of the
    task's, so a task with several unknown ones is matched a little broadly."""
    auth = efs.get("authorizationConfig")
    access_point = auth.get("accessPointId") if isinstance(auth, dict) else None
    if access_point is not None:
        return _referenced(stack, td, access_point, aws.EFS_ACCESS_POINT, "access point {}")
    root = str(efs.get("rootDirectory") or "/")
    return _referenced(stack, td, efs.get("fileSystemId"), aws.EFS_FS, f"directory {root} of {{}}")


def _referenced(stack: Stack, td: Res, value: Any, typ: str, label: str) -> list[str]:
    hits = stack.resolve(td, "volumes", value, (typ,)) or []
    if hits:
        return [label.format(f"'{r.name}'") for r in hits]
    return [] if value is None or is_unknown(value) else [label.format(value)]


_EFS_WILDCARD_ARN = re.compile(r"arn:aws[\w-]*:elasticfilesystem:[^:]*:[^:]*:file-system/\*")


class _BackupIndex:
    """The stack's backup selections and EFS backup policies by what they point at, built once so
    that each file system is a few look-ups (not a scan of every selection and policy)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        # Selections: an entry whose target is unknown is matched through the dependencies of
        # "resources"; without them it leaves every file system undecided.
        self.sel_unknown = False
        self.sel_dep_urns: set[str] = set()
        self.sel_refs: set[str] = set()
        self.sel_all = False  # "*" or an EFS wildcard ARN: selects every file system
        self.tag_conds: list[dict[Any, Any]] = []
        for sel in stack.of_type(aws.BACKUP_SELECTION):
            deps = sel.property_dependencies.get("resources", [])
            resources = sel.get("resources")
            if is_unknown(resources):
                self.sel_unknown = True
                self.sel_dep_urns.update(deps)
                continue
            for ref in as_list(resources):
                if is_unknown(ref):
                    self.sel_unknown = True
                    self.sel_dep_urns.update(deps)
                elif isinstance(ref, str):
                    if ref == "*" or _EFS_WILDCARD_ARN.fullmatch(ref):
                        self.sel_all = True
                    self.sel_refs.add(ref)
            self.tag_conds += [c for c in as_list(sel.get("selectionTags")) if isinstance(c, dict)]
        # EFS backup policies: by fileSystemId, and (unknown ids) by dependency urn.
        self.bp_by_target: dict[Any, list[Res]] = {}
        self.bp_unhashable: list[Res] = []
        self.bp_unknown: list[Res] = []
        self.bp_unknown_by_dep: dict[str, list[Res]] = {}
        for bp in stack.of_type(aws.EFS_BACKUP_POLICY):
            target = bp.get("fileSystemId")
            try:
                self.bp_by_target.setdefault(target, []).append(bp)
            except TypeError:
                self.bp_unhashable.append(bp)
            if is_unknown(target):
                self.bp_unknown.append(bp)
                for urn in dict.fromkeys(bp.property_dependencies.get("fileSystemId", [])):
                    self.bp_unknown_by_dep.setdefault(urn, []).append(bp)

    def _selected_by_tags(self, fs: Res) -> bool:
        if not self.tag_conds:
            return False
        tags = fs.get("tags") or {}
        return isinstance(tags, dict) and any(
            tags.get(c.get("key")) == c.get("value") for c in self.tag_conds
        )

    def _by_target(self, value: Any) -> list[Res]:
        try:
            return list(self.bp_by_target.get(value, ()))
        except TypeError:  # an unhashable id (a list or map) matches only by equality
            return [bp for bps in self.bp_by_target.values() for bp in bps if bp.get("fileSystemId") == value]

    def selected(self, fs: Res) -> bool | None:
        """True when a selection or an ENABLED backup policy covers `fs`; None when that is
        unknown during preview; False otherwise."""
        arn = fs.get("arn")
        fs_id = fs.get("id")
        if (
            self.sel_all
            or fs.urn in self.sel_dep_urns
            or (isinstance(arn, str) and arn in self.sel_refs)
            or (isinstance(fs_id, str) and fs_id in self.sel_refs)
            or self._selected_by_tags(fs)
        ):
            return True
        undecided = self.sel_unknown
        # The policies pointing here: fileSystemId is the id or ARN (or an unknown id that
        # depends on this file system), in stack order.
        pointing = self._by_target(fs_id) + self._by_target(arn)
        pointing += [bp for bp in self.bp_unhashable if bp.get("fileSystemId") in (fs_id, arn)]
        pointing += self.bp_unknown_by_dep.get(fs.urn, [])
        pointing = self.stack.ordered(pointing)
        for bp in pointing:
            status = (bp.get("backupPolicy") or {}).get("status")
            if is_unknown(status):
                undecided = True
            elif status == "ENABLED":
                return True
        # A policy whose fileSystemId is unknown and that does not point here: it might.
        if len(self.bp_unknown) > sum(1 for bp in pointing if is_unknown(bp.get("fileSystemId"))):
            undecided = True
        return None if undecided else False


@stack_policy("efs-backup-enabled", MANDATORY, Severity.HIGH)
def efs_backup_enabled(stack: Stack, _cfg: Config, out: Findings) -> None:
    """Every EFS file system is backed up (AWS Backup selection or EFS backup policy ENABLED).

    Remediation: Add the file system's ARN to an aws.backup.Selection of a backup plan, or create
    aws.efs.BackupPolicy(file_system_id=fs.id, backup_policy={'status': 'ENABLED'}).
    """
    index = _BackupIndex(stack)
    for fs in stack.of_type(aws.EFS_FS):
        selected = index.selected(fs)
        if selected is None:
            out.cannot_decide(
                f"{fs.label()}: a backup selection's or EFS backup policy's target is unknown before creation "
                "and depends on no file system, so whether this one is backed up cannot be judged",
                prop="resources",
                remedy="reference the file system's own outputs (fs.arn in the selection, fs.id in the policy)",
                urn=fs.urn,
            )
        elif not selected:
            out.violation(f"{fs.label()} is not selected by any AWS Backup plan.", fs.urn)


# What RDS applies to an instance or cluster created without BackupRetentionPeriod.
RDS_DEFAULT_RETENTION_DAYS = 1


@resource_policy(
    "rds-backup-retention",
    MANDATORY,
    Severity.HIGH,
    types=[aws.RDS_INSTANCE, aws.RDS_CLUSTER],
    schema={"minDays": setting("Minimum retention in days.", 7)},
)
def rds_backup_retention(r: Res, cfg: Config, out: Findings) -> None:
    """RDS instances and Aurora/Multi-AZ DB clusters keep automated backups for at least the configured number
    of days (unset: RDS keeps 1).

    Remediation: Set backup_retention_period to at least minDays (1-35).
    """
    minimum = as_int(cfg.get("minDays")) or 7
    value = r.get("backupRetentionPeriod")
    if is_unknown(value):
        out.unknown(r, "backupRetentionPeriod", "the backup window")
        return
    days = as_int(value)
    if days is None:
        days, shown = RDS_DEFAULT_RETENTION_DAYS, f"{RDS_DEFAULT_RETENTION_DAYS} day (unset: the RDS default)"
    else:
        shown = f"{days} days"
    if days < minimum:
        out.violation(f"{r.label()} keeps automated backups {shown}; at least {minimum} required.")


# An Aurora cluster instance holds no data of its own (its cluster does).
_STATEFUL = (aws.EFS_FS, aws.RDS_INSTANCE, aws.RDS_CLUSTER, aws.BACKUP_VAULT)
_DELETION_PROTECTED = (aws.RDS_INSTANCE, aws.RDS_CLUSTER)


@resource_policy(
    "stateful-resources-protected",
    ADVISORY,
    Severity.MEDIUM,
    types=list(_STATEFUL),
    schema={"stacks": stacks_schema("Stacks where protection is required")},
)
def stateful_resources_protected(r: Res, cfg: Config, out: Findings) -> None:
    """File systems, databases (RDS instances, Aurora/Multi-AZ DB clusters) and backup vaults are protected
    from deletion in the configured stacks.

    Remediation: Pass opts=ResourceOptions(protect=True) (or retain_on_delete=True; note the analyzer protocol
    does not carry retainOnDelete, so only protect and RDS deletion_protection are seen here).
    """
    if not stack_enforced(cfg.get("stacks")) or r.protect:
        return
    # Unset deletionProtection is the RDS API's false; protected or undecided, it is no violation.
    protected = r.type in _DELETION_PROTECTED and out.flag(
        r, "deletionProtection", "protection from deletion"
    )
    if protected is not False:
        return
    out.violation(
        f"{r.label()} can be deleted by a `pulumi destroy` or a replacement: set protect=True"
        + (" or deletion_protection=True." if r.type in _DELETION_PROTECTED else ".")
    )


@resource_policy(
    "qdrant-on-network-storage", ADVISORY, Severity.MEDIUM, types=[aws.TASK_DEF], url=QDRANT_STORAGE_URL
)
def qdrant_on_network_storage(r: Res, _cfg: Config, out: Findings) -> None:
    """Qdrant storage on EFS (NFS) is unsupported by Qdrant; flag it so the risk is a decision.

    Remediation: Keep Qdrant's storage on block storage (Fargate ephemeral storage restored from snapshots in
    EFS/S3, or an EC2/EBS-backed task), or use Qdrant Cloud. If EFS stays: one writer only, snapshots to S3,
    and a tested restore.
    """
    efs = {v.get("name") for v in aws.efs_volumes(r)}
    if not efs:
        return
    conts = aws.containers(r, out, "where Qdrant keeps its storage")
    for c in conts or []:
        if "qdrant" not in str(c.get("image") or "").lower():
            continue
        for mp in as_list(c.get("mountPoints")):
            if isinstance(mp, dict) and mp.get("sourceVolume") in efs:
                out.violation(
                    f"{r.label()}: container '{c.get('name')}' keeps Qdrant storage on EFS (NFS) volume "
                    f"'{mp.get('sourceVolume')}' at {mp.get('containerPath')}. Qdrant's documentation: "
                    f'"{QDRANT_STORAGE_QUOTE}" ({QDRANT_STORAGE_URL})'
                )


POLICIES = [
    single_writer_storage,
    efs_backup_enabled,
    rds_backup_retention,
    stateful_resources_protected,
    qdrant_on_network_storage,
]
