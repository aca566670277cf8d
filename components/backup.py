"""Daily AWS Backup of a component's stateful resources: a vault sealed with the stack key, an
optional copy in a second region, the daily plan, the role AWS Backup assumes and the selection.

``WwhdDataVolume`` (the EFS file system) and ``WwhdContainerHost`` (Qdrant's EBS volume) each
call ``BackupPolicy.back_up`` once, so both keep the same schedule, windows and retention rules.
The children are registered under the calling component with names derived from its name, so
the URNs are what they were before this module existed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.roles import service_role

# AWS Backup starts the job within START_WINDOW minutes of 02:00 UTC (seed 000), so the RDS
# backup window (WwhdDatabase, from 03:00 UTC) never competes with it.
BACKUP_SCHEDULE = "cron(0 2 * * ? *)"
BACKUP_START_WINDOW_MINUTES = 60
BACKUP_COMPLETION_WINDOW_MINUTES = 24 * 60

BACKUP_SERVICE_PRINCIPAL = "backup.amazonaws.com"
BACKUP_MANAGED_POLICIES = {
    "backups": "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "restores": "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
}


@dataclass(frozen=True)
class DailyBackups:
    """What ``BackupPolicy.back_up`` created, as a component's outputs."""

    vault_name: pulumi.Output[str]
    """The vault of the daily recovery points, in the stack's region."""
    vault_arn: pulumi.Output[str]
    """Its ARN."""
    copy_vault_arn: pulumi.Output[str] | None
    """The vault in the copy region; None without one."""
    plan_id: pulumi.Output[str]
    """The daily backup plan."""
    role_arn: pulumi.Output[str]
    """The role AWS Backup assumes: its backup jobs, and the restore jobs an operator starts."""


@dataclass(frozen=True)
class BackupPolicy:
    """How the stack keeps its backups: one value, built once from ``wwhd:storage`` and handed
    to every component that backs something up, so their vaults, retention and copies agree."""

    region: str
    """AWS region of the stack (a copy region equal to it is refused)."""
    key_arn: pulumi.Input[str]
    """The stack key: seals the vault in the stack's region."""
    retention_days: int
    """Days each daily recovery point (and its copy) is kept."""
    copy_region: str | None = None
    """A second region that receives a copy of each recovery point. Default: none."""
    protect: bool = False
    """Protect the vaults from deletion. Default False."""
    permissions_boundary: pulumi.Input[str] | None = None
    """Permissions boundary of the backup role. Default: none."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Default tags of the provider made for the copy region (the stack's provider does not
    reach another region). Default: none."""

    def __post_init__(self) -> None:
        if self.copy_region == self.region:
            raise ValueError(f"invalid BackupPolicy: copy_region: is the stack's own region {self.region}")

    def back_up(
        self,
        parent: pulumi.ComponentResource,
        name: str,
        resources: Sequence[pulumi.Input[str]],
        *,
        selection: str,
        what: str,
    ) -> DailyBackups:
        """The vault, copy vault, daily plan, role and selection that back ``resources`` up under
        this policy, children of ``parent`` named after ``name``. ``selection`` is the suffix of
        the selection's logical name (``<name>-backup-<selection>``); ``what`` is how the role's
        description names the data (``the data volume``)."""
        child = pulumi.ResourceOptions(parent=parent)

        vault = aws.backup.Vault(
            f"{name}-vault",
            kms_key_arn=self.key_arn,
            force_destroy=False,
            opts=pulumi.ResourceOptions(parent=parent, protect=self.protect),
        )

        copy_vault = None
        copy_actions = None
        if self.copy_region is not None:
            # The stack's provider is pinned to its region: the copy vault needs its own.
            copy_provider = aws.Provider(
                f"{name}-copy-region",
                region=self.copy_region,
                default_tags=aws.ProviderDefaultTagsArgs(tags=dict(self.tags)) if self.tags else None,
                opts=child,
            )
            # No kms_key_arn: the stack key is single-region and a vault can only use a key of
            # its own region, so the copy is sealed with that region's AWS-managed aws/backup key.
            copy_vault = aws.backup.Vault(
                f"{name}-vault-copy",
                force_destroy=False,
                opts=pulumi.ResourceOptions(parent=parent, provider=copy_provider, protect=self.protect),
            )
            copy_actions = [
                aws.backup.PlanRuleCopyActionArgs(
                    destination_vault_arn=copy_vault.arn,
                    lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(delete_after=self.retention_days),
                )
            ]

        plan = aws.backup.Plan(
            f"{name}-backup-plan",
            rules=[
                aws.backup.PlanRuleArgs(
                    rule_name="daily",
                    target_vault_name=vault.name,
                    schedule=BACKUP_SCHEDULE,
                    schedule_expression_timezone="Etc/UTC",
                    start_window=BACKUP_START_WINDOW_MINUTES,
                    completion_window=BACKUP_COMPLETION_WINDOW_MINUTES,
                    lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=self.retention_days),
                    copy_actions=copy_actions,
                )
            ],
            opts=child,
        )

        role = service_role(
            f"{name}-backup-role",
            principal=BACKUP_SERVICE_PRINCIPAL,
            description=f"W.W.H.D. AWS Backup: back up and restore {what}",
            boundary=self.permissions_boundary,
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-backup-role-{job}", role=role.name, policy_arn=arn, opts=child
            )
            for job, arn in BACKUP_MANAGED_POLICIES.items()
        ]
        aws.backup.Selection(
            f"{name}-backup-{selection}",
            plan_id=plan.id,
            iam_role_arn=role.arn,
            resources=list(resources),
            # Backup assumes the role at the first job: its permissions must be attached first.
            opts=pulumi.ResourceOptions(parent=parent, depends_on=attachments),
        )
        return DailyBackups(
            vault_name=vault.name,
            vault_arn=vault.arn,
            copy_vault_arn=copy_vault.arn if copy_vault is not None else None,
            plan_id=plan.id,
            role_arn=role.arn,
        )
