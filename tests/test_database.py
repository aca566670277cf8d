"""WwhdDatabase: private, reachable from the API tasks only, encrypted with the stack key, TLS
only, its password managed by RDS, and hard to lose."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.database import WwhdDatabase, WwhdDatabaseArgs, db_identifier, parameter_group_family
from components.network import WwhdNetwork, WwhdNetworkArgs
from stack_config import DatabaseConfig, NetworkConfig
from tests.support import DB_INSTANCE, DB_PARAMETER_GROUP, DB_SUBNET_GROUP, INGRESS, SECURITY_GROUP
from tools.mocks import RecordingMonitor, resolve, settle

KEY = "arn:aws:kms:us-west-2:123456789012:key/0a1b2c3d-test"
SUBNETS = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
DB_SG = "sg-0db00000000000001"


def postgres(**overrides: Any) -> DatabaseConfig:
    return DatabaseConfig.model_validate({"engine": "postgres"} | overrides)


def build(monitor: RecordingMonitor, config: DatabaseConfig | None = None, **kwargs: Any) -> WwhdDatabase:
    db = WwhdDatabase(
        "t",
        WwhdDatabaseArgs(
            config=config or postgres(),
            key_arn=KEY,
            private_subnet_ids=SUBNETS,
            db_security_group_id=DB_SG,
            **kwargs,
        ),
    )
    settle()
    return db


def test_private_in_the_stacks_private_subnets(mocks: RecordingMonitor) -> None:
    build(mocks)
    instance, subnets = mocks.one(DB_INSTANCE), mocks.one(DB_SUBNET_GROUP)
    assert instance.inputs["publiclyAccessible"] is False
    assert instance.inputs["vpcSecurityGroupIds"] == [DB_SG]
    assert subnets.inputs["subnetIds"] == SUBNETS
    assert instance.inputs["dbSubnetGroupName"] == subnets.outputs["name"]


def test_reachable_from_the_api_tasks_only(mocks: RecordingMonitor) -> None:
    """Built on the real network: the one group on the instance admits 5432 from the API group
    and nothing else."""
    net = WwhdNetwork(
        "n", WwhdNetworkArgs(config=NetworkConfig(), region="us-west-2", key_arn=KEY, postgres=True)
    )
    WwhdDatabase(
        "t",
        WwhdDatabaseArgs(
            config=postgres(),
            key_arn=KEY,
            private_subnet_ids=net.private_subnet_ids,
            db_security_group_id=net.db_security_group_id,  # type: ignore[arg-type]
        ),
    )
    settle()
    role = {g.id: g.name.removeprefix("n-") for g in mocks.of_type(SECURITY_GROUP)}
    (group,) = mocks.one(DB_INSTANCE).inputs["vpcSecurityGroupIds"]
    assert role[group] == "db"
    admitted = {
        (
            int(r.inputs["fromPort"]),
            int(r.inputs["toPort"]),
            role.get(r.inputs.get("referencedSecurityGroupId", "")),
        )
        for r in mocks.of_type(INGRESS)
        if r.inputs["securityGroupId"] == group
    }
    assert admitted == {(5432, 5432, "api")}
    assert (
        mocks.one(DB_SUBNET_GROUP).inputs["subnetIds"]
        == mocks.one("awsx:ec2:Vpc").outputs["privateSubnetIds"]
    )


def test_everything_at_rest_is_sealed_with_the_stack_key(mocks: RecordingMonitor) -> None:
    build(mocks)
    i = mocks.one(DB_INSTANCE).inputs
    assert i["storageEncrypted"] is True and i["kmsKeyId"] == KEY
    assert i["masterUserSecretKmsKeyId"] == KEY
    assert i["performanceInsightsEnabled"] is True and i["performanceInsightsKmsKeyId"] == KEY
    for group in mocks.of_type("aws:cloudwatch/logGroup:LogGroup"):
        assert group.inputs["kmsKeyId"] == KEY


def test_log_groups_exist_before_rds_would_make_them(mocks: RecordingMonitor) -> None:
    build(mocks, log_retention_days=14)
    instance = mocks.one(DB_INSTANCE)
    identifier = instance.inputs["identifier"]
    assert instance.inputs["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    groups = mocks.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert {g.inputs["name"] for g in groups} == {
        f"/aws/rds/instance/{identifier}/postgresql",
        f"/aws/rds/instance/{identifier}/upgrade",
    }
    assert {g.inputs["retentionInDays"] for g in groups} == {14}
    assert {g.urn for g in groups} <= set(instance.dependencies)


@pytest.mark.parametrize("multi_az", [True, False])
def test_multi_az_follows_the_config(mocks: RecordingMonitor, multi_az: bool) -> None:
    build(mocks, postgres(multi_az=multi_az))
    assert mocks.one(DB_INSTANCE).inputs["multiAz"] is multi_az


def test_tls_is_forced_by_the_parameter_group(mocks: RecordingMonitor) -> None:
    build(mocks)
    params, instance = mocks.one(DB_PARAMETER_GROUP), mocks.one(DB_INSTANCE)
    assert params.inputs["family"] == "postgres17"
    assert {p["name"]: p["value"] for p in params.inputs["parameters"]}["rds.force_ssl"] == "1"
    assert instance.inputs["parameterGroupName"] == params.outputs["name"]
    assert instance.inputs["engine"] == "postgres" and instance.inputs["engineVersion"] == "17"


def test_parameter_group_family_is_the_major_version() -> None:
    assert parameter_group_family("17") == "postgres17"
    assert parameter_group_family("16.4") == "postgres16"


def test_password_is_managed_by_rds_and_iam_auth_is_on(mocks: RecordingMonitor) -> None:
    db = build(mocks)
    instance = mocks.one(DB_INSTANCE)
    assert instance.inputs["manageMasterUserPassword"] is True
    assert "password" not in instance.inputs and "passwordWo" not in instance.inputs
    assert instance.inputs["iamDatabaseAuthenticationEnabled"] is True
    assert resolve(db.secret_arn) == instance.outputs["masterUserSecrets"][0]["secretArn"]


def test_outputs_the_api_and_alarms_need(mocks: RecordingMonitor) -> None:
    db = build(mocks, postgres(name="wwhd_app"))
    instance = mocks.one(DB_INSTANCE)
    assert resolve(db.address) == instance.outputs["address"]
    assert resolve(db.port) == 5432
    assert resolve(db.database_name) == "wwhd_app" == instance.inputs["dbName"]
    assert resolve(db.identifier) == instance.inputs["identifier"]
    assert resolve(db.arn) == instance.outputs["arn"]


@pytest.mark.parametrize("protected", [True, False])
def test_deletion_protection_final_snapshot_and_protect(mocks: RecordingMonitor, protected: bool) -> None:
    build(mocks, postgres(deletion_protection=protected))
    instance = mocks.one(DB_INSTANCE)
    i = instance.inputs
    assert i["deletionProtection"] is protected
    assert instance.protect is protected
    assert i["skipFinalSnapshot"] is (not protected)
    assert bool(i.get("finalSnapshotIdentifier")) is protected
    # Deleting a protected instance keeps its automated backups.
    assert i["deleteAutomatedBackups"] is (not protected)


def test_backups_storage_and_upgrades(mocks: RecordingMonitor) -> None:
    build(mocks, postgres(backup_retention_days=7, allocated_storage_gb=20, max_allocated_storage_gb=200))
    i = mocks.one(DB_INSTANCE).inputs
    assert i["backupRetentionPeriod"] == 7
    assert i["storageType"] == "gp3"
    assert (i["allocatedStorage"], i["maxAllocatedStorage"]) == (20, 200)
    assert i["autoMinorVersionUpgrade"] is True
    assert i["copyTagsToSnapshot"] is True


def test_no_storage_autoscaling_when_the_ceiling_is_the_allocation(mocks: RecordingMonitor) -> None:
    build(mocks, postgres(allocated_storage_gb=50, max_allocated_storage_gb=50))
    assert not mocks.one(DB_INSTANCE).inputs.get("maxAllocatedStorage")


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEK = 7 * 24 * 60


def _minute(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def weekly_spans(window: str) -> list[tuple[int, int]]:
    """Minutes since Monday 00:00 UTC covered by an RDS window: ``ddd:hh:mm-ddd:hh:mm`` once a
    week, or ``hh:mm-hh:mm`` every day."""
    start, end = window.split("-")
    if start[:3] in DAYS:
        begin = DAYS.index(start[:3]) * 24 * 60 + _minute(start[4:])
        finish = DAYS.index(end[:3]) * 24 * 60 + _minute(end[4:])
        return [(begin, finish if finish > begin else finish + WEEK)]
    begin, finish = _minute(start), _minute(end)
    finish = finish if finish > begin else finish + 24 * 60
    return [(day * 24 * 60 + begin, day * 24 * 60 + finish) for day in range(7)]


def overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
    return any(s1 < e2 and s2 < e1 for s1, e1 in a for s2, e2 in b)


def test_backup_window_avoids_maintenance_and_the_efs_backup(mocks: RecordingMonitor) -> None:
    build(mocks)
    i = mocks.one(DB_INSTANCE).inputs
    backup, maintenance = weekly_spans(i["backupWindow"]), weekly_spans(i["maintenanceWindow"])
    assert all(end - start >= 30 for start, end in backup + maintenance), (
        "RDS windows last 30 minutes or more"
    )
    assert not overlap(backup, maintenance)
    # AWS Backup starts the EFS job within an hour of 02:00 UTC (WwhdDataVolume).
    assert not overlap(backup, weekly_spans("02:00-03:00"))


def test_enhanced_monitoring_role_when_asked(mocks: RecordingMonitor) -> None:
    build(mocks, enhanced_monitoring_interval=60)
    instance = mocks.one(DB_INSTANCE)
    role = mocks.one("aws:iam/role:Role")
    assert instance.inputs["monitoringInterval"] == 60
    assert instance.inputs["monitoringRoleArn"] == role.outputs["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "monitoring.rds.amazonaws.com"}]
    attachment = mocks.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert (
        attachment.inputs["policyArn"]
        == "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
    )


def test_no_monitoring_role_by_default(mocks: RecordingMonitor) -> None:
    build(mocks)
    assert not mocks.of_type("aws:iam/role:Role")
    assert not mocks.one(DB_INSTANCE).inputs.get("monitoringRoleArn")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"config": DatabaseConfig(engine="sqlite")}, "config.engine"),
        ({"log_retention_days": 10}, "log_retention_days"),
        ({"enhanced_monitoring_interval": 45}, "enhanced_monitoring_interval"),
    ],
)
def test_invalid_args_fail_before_anything_is_registered(kwargs: dict[str, Any], field: str) -> None:
    values = {
        "config": postgres(),
        "key_arn": KEY,
        "private_subnet_ids": SUBNETS,
        "db_security_group_id": DB_SG,
    }
    with pytest.raises(ValueError, match=field):
        WwhdDatabaseArgs(**(values | kwargs))


@pytest.mark.parametrize(
    ("name", "stack", "expected"),
    [("wwhd", "prod", "wwhd-prod"), ("wwhd", "Team_Dev.2", "wwhd-team-dev-2"), ("9db", "x", "db-9db-x")],
)
def test_identifier_is_one_rds_accepts(name: str, stack: str, expected: str) -> None:
    assert db_identifier(name, stack) == expected
    assert len(db_identifier("w" * 40, "s" * 40)) <= 63


def test_children_are_parented_to_the_component(mocks: RecordingMonitor) -> None:
    build(mocks, enhanced_monitoring_interval=60)
    component = mocks.one("wwhd:index:WwhdDatabase")
    for r in mocks.registrations:
        if r is not component and r.type != "pulumi:pulumi:Stack":
            assert r.parent == component.urn, r.name
