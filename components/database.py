"""WwhdDatabase: Amazon RDS for PostgreSQL, private, encrypted with the stack key, TLS only."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.component import WwhdComponent
from components.roles import service_role
from stack_config import LOG_RETENTION_DAYS, DatabaseConfig

TOKEN = "wwhd:index:WwhdDatabase"

POSTGRES_PORT = 5432
MASTER_USERNAME = "wwhd_admin"
LOG_EXPORTS = ("postgresql", "upgrade")

# UTC. The EFS backup (WwhdDataVolume) starts between 02:00 and 03:00; RDS snapshots follow at
# 03:00, and maintenance (minor upgrades, patching) comes after both, on a Sunday.
BACKUP_WINDOW = "03:00-04:00"
MAINTENANCE_WINDOW = "sun:04:30-sun:05:30"

# The free retention of Performance Insights (Database Insights standard mode).
PERFORMANCE_INSIGHTS_RETENTION_DAYS = 7

ENHANCED_MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)
MONITORING_PRINCIPAL = "monitoring.rds.amazonaws.com"
ENHANCED_MONITORING_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


def parameter_group_family(engine_version: str) -> str:
    """``postgres<major>`` (from PostgreSQL 10 on, RDS names families by major version only)."""
    return f"postgres{engine_version.split('.')[0]}"


def db_identifier(name: str, stack: str) -> str:
    """An RDS instance identifier for this stack: letters, digits and single hyphens, starting
    with a letter, at most 63 characters. One per stack, so dev and prod can share an account."""
    text = re.sub(r"[^a-z0-9]+", "-", f"{name}-{stack}".lower()).strip("-")
    if not text or not text[0].isalpha():
        text = f"db-{text}"
    return text[:63].rstrip("-")


@dataclass(frozen=True)
class WwhdDatabaseArgs:
    """What the database is built from."""

    config: DatabaseConfig
    """The ``wwhd:database`` section (engine must be ``postgres``): class, version, storage,
    Multi-AZ, backup retention, deletion protection, database name."""
    key_arn: pulumi.Input[str]
    """The stack key: storage, the managed master secret, Performance Insights and the
    exported log groups are encrypted with it."""
    private_subnet_ids: pulumi.Input[Sequence[str]]
    """Private subnets of the stack (at least two AZs: an RDS subnet group requirement)."""
    db_security_group_id: pulumi.Input[str]
    """The database group made by ``WwhdNetwork`` (5432 from the API tasks only); the only
    group attached."""
    log_retention_days: int = 30
    """Retention of the ``postgresql`` and ``upgrade`` log groups, a value CloudWatch accepts.
    Default 30."""
    enhanced_monitoring_interval: int = 0
    """Seconds between Enhanced Monitoring (OS metrics) samples: 0 (off), 1, 5, 10, 15, 30 or
    60. Performance Insights is always on. Default 0; billed as CloudWatch Logs ingestion."""
    permissions_boundary: pulumi.Input[str] | None = None
    """The permissions boundary its roles carry (the bootstrap's ``wwhd-workload-boundary``).
    Default: none."""

    def __post_init__(self) -> None:
        problems = []
        if self.config.engine != "postgres":
            problems.append(f"config.engine: WwhdDatabase builds RDS PostgreSQL, not {self.config.engine}")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            problems.append(f"log_retention_days: CloudWatch Logs does not accept {self.log_retention_days}")
        if self.enhanced_monitoring_interval not in ENHANCED_MONITORING_INTERVALS:
            problems.append(
                f"enhanced_monitoring_interval: RDS accepts {ENHANCED_MONITORING_INTERVALS},"
                f" not {self.enhanced_monitoring_interval}"
            )
        if problems:
            raise ValueError("invalid WwhdDatabaseArgs: " + "; ".join(problems))


class WwhdDatabase(WwhdComponent[WwhdDatabaseArgs], token=TOKEN):
    """The API's relational store in stacks that scale the API past one task (prod): SQLite on
    EFS cannot have two writers, PostgreSQL can.

    The master password never exists in the program or its state: RDS generates it, keeps it
    in Secrets Manager under the stack key and rotates it every 7 days; it is for
    administration only. The API connects as its own user with IAM database authentication (a
    token per connection, no password to rotate under running tasks).
    """

    address: pulumi.Output[str]
    """Host name of the instance."""
    host_parameter_name: str
    """The SSM parameter holding that host name (``/wwhd/<stack>/database-host``): what a task
    definition injects, by name."""
    port: pulumi.Output[int]
    """Port, 5432."""
    database_name: pulumi.Output[str]
    """The database created in the instance."""
    secret_arn: pulumi.Output[str]
    """The RDS-managed secret holding ``username`` and ``password`` (JSON)."""
    identifier: pulumi.Output[str]
    """The instance identifier (the ``DBInstanceIdentifier`` dimension of its alarms)."""
    arn: pulumi.Output[str]
    """ARN of the instance."""

    def _build(self, name: str, args: WwhdDatabaseArgs) -> None:
        cfg = args.config
        identifier = db_identifier(name, pulumi.get_stack())

        subnets = aws.rds.SubnetGroup(
            f"{name}-db-subnets",
            description="W.W.H.D. PostgreSQL: private subnets only",
            subnet_ids=args.private_subnet_ids,
            opts=self._child,
        )
        parameters = aws.rds.ParameterGroup(
            f"{name}-db-params",
            family=parameter_group_family(cfg.engine_version),
            description="W.W.H.D. PostgreSQL: TLS required",
            parameters=[
                # On by default from PostgreSQL 15, pinned so a custom group never turns it off.
                # pending-reboot is accepted for static and dynamic parameters alike; a new
                # instance boots with it.
                aws.rds.ParameterGroupParameterArgs(
                    name="rds.force_ssl", value="1", apply_method="pending-reboot"
                ),
            ],
            opts=self._child,
        )

        # RDS would create these itself, unencrypted and kept forever: create them first.
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-db-log-{export}",
                name=f"/aws/rds/instance/{identifier}/{export}",
                kms_key_id=args.key_arn,
                retention_in_days=args.log_retention_days,
                opts=self._child,
            )
            for export in LOG_EXPORTS
        ]

        monitoring_role = None
        if args.enhanced_monitoring_interval:
            monitoring_role = service_role(
                f"{name}-db-monitoring",
                principal=MONITORING_PRINCIPAL,
                description="W.W.H.D. PostgreSQL: Enhanced Monitoring publishes OS metrics",
                boundary=args.permissions_boundary,
                opts=self._child,
            )
            aws.iam.RolePolicyAttachment(
                f"{name}-db-monitoring-policy",
                role=monitoring_role.name,
                policy_arn=ENHANCED_MONITORING_POLICY,
                opts=self._child,
            )

        protect = cfg.deletion_protection
        instance = aws.rds.Instance(
            f"{name}-db",
            # Named, not auto-named: the log groups above must carry the identifier. A change
            # that replaces the instance then fails on the name instead of silently building a
            # new, empty database beside the old one.
            identifier=identifier,
            # The engine: a major version only; RDS picks the latest minor and auto minor
            # upgrades move it. The parameter group requires TLS.
            engine="postgres",
            engine_version=cfg.engine_version,
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            parameter_group_name=parameters.name,
            # Size and storage, encrypted with the stack key. Storage autoscaling is on only
            # when the ceiling is above the allocation.
            instance_class=cfg.instance_class,
            multi_az=cfg.multi_az,
            storage_type="gp3",
            allocated_storage=cfg.allocated_storage_gb,
            max_allocated_storage=cfg.max_allocated_storage_gb
            if cfg.max_allocated_storage_gb > cfg.allocated_storage_gb
            else None,
            storage_encrypted=True,
            kms_key_id=args.key_arn,
            # Reachable only from the private subnets, through the database's security group.
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[args.db_security_group_id],
            publicly_accessible=False,
            port=POSTGRES_PORT,
            # Who signs in: the master user, whose password RDS generates and keeps in Secrets
            # Manager under the stack key, and the app's own user through IAM tokens.
            db_name=cfg.name,
            username=MASTER_USERNAME,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=args.key_arn,
            iam_database_authentication_enabled=True,
            # Backups and deletion. A protected database keeps a final snapshot and its
            # automated backups after deletion (until their retention ends): deleting the
            # instance must not delete the way back.
            backup_retention_period=cfg.backup_retention_days,
            backup_window=BACKUP_WINDOW,
            copy_tags_to_snapshot=True,
            deletion_protection=protect,
            skip_final_snapshot=not protect,
            final_snapshot_identifier=f"{identifier}-final" if protect else None,
            delete_automated_backups=not protect,
            # What it reports: Performance Insights (RDS for PostgreSQL supports it on every
            # instance class; the micro/small exclusions are MySQL and MariaDB only), Enhanced
            # Monitoring when asked, and its logs into the groups made above.
            performance_insights_enabled=True,
            performance_insights_kms_key_id=args.key_arn,
            performance_insights_retention_period=PERFORMANCE_INSIGHTS_RETENTION_DAYS,
            monitoring_interval=args.enhanced_monitoring_interval,
            monitoring_role_arn=monitoring_role.arn if monitoring_role is not None else None,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            # Changes wait for the maintenance window instead of restarting production now.
            maintenance_window=MAINTENANCE_WINDOW,
            apply_immediately=False,
            opts=pulumi.ResourceOptions(parent=self, protect=protect, depends_on=log_groups),
        )

        # The API finds the database through this parameter (injected by name, known before the
        # instance exists) rather than through the address itself, which is not.
        self.host_parameter_name = f"/wwhd/{pulumi.get_stack()}/database-host"
        aws.ssm.Parameter(
            f"{name}-db-host",
            name=self.host_parameter_name,
            type="String",
            value=instance.address,
            description="Host name of the W.W.H.D. PostgreSQL instance (DB_HOST of the API)",
            opts=self._child,
        )

        self.address = instance.address
        self.port = instance.port
        self.database_name = pulumi.Output.from_input(cfg.name)
        self.secret_arn = instance.master_user_secrets.apply(_secret_arn)
        self.identifier = instance.identifier
        self.arn = instance.arn


def _secret_arn(secrets: Sequence[Any] | None) -> str:
    if not secrets:
        raise ValueError("RDS returned no master user secret although manage_master_user_password is set")
    return secrets[0].secret_arn
