"""Data safety policies: single writer on EFS, backups, protection, Qdrant on NFS."""

from __future__ import annotations

import json

from wwhd_policies import data_safety as ds

from .conftest import UNKNOWN, R, check_resource, check_stack

TD_ARN = "arn:aws:ecs:us-west-2:123456789012:task-definition/wwhd-api:3"


def task_def(image: str = "qdrant/qdrant:v1.16.2", path: str = "/qdrant/storage", name: str = "td") -> R:
    containers = [
        {"name": "qdrant", "image": image, "mountPoints": [{"sourceVolume": "data", "containerPath": path}]}
    ]
    return R(
        "aws:ecs/taskDefinition:TaskDefinition",
        name,
        {
            "arn": TD_ARN,
            "family": "wwhd-api",
            "containerDefinitions": json.dumps(containers),
            "volumes": [{"name": "data", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}],
        },
    )


def service(**props) -> R:
    return R("aws:ecs/service:Service", "api", {"name": "api", "taskDefinition": TD_ARN} | props)


def target(max_capacity: float, resource_id: str = "service/wwhd/api") -> R:
    return R(
        "aws:appautoscaling/target:Target",
        "api-scaling",
        {"resourceId": resource_id, "maxCapacity": max_capacity},
    )


def test_single_writer_singleton_passes() -> None:
    stack = [task_def(), service(desiredCount=1.0, deploymentMaximumPercent=100.0), target(1)]
    assert check_stack(ds.single_writer_storage, stack) == []


def test_single_writer_two_tasks_scaling_and_overlap_violate() -> None:
    stack = [task_def(), service(desiredCount=2.0), target(10)]
    msgs = [m for m, _ in check_stack(ds.single_writer_storage, stack)]
    assert len(msgs) == 3
    assert any("desiredCount=2" in m for m in msgs)
    assert any("maxCapacity=10" in m for m in msgs)
    assert any("deploymentMaximumPercent is unset" in m for m in msgs)


def test_single_writer_sqlite_detected_from_env_and_mount() -> None:
    containers = [
        {
            "name": "api",
            "image": "ecr/wwhd:1.0.0",
            "environment": [{"name": "DATABASE_URL", "value": "sqlite:////data/app/wwhd.db"}],
            "mountPoints": [{"sourceVolume": "data", "containerPath": "/data/app"}],
        }
    ]
    td = task_def()
    td.props["containerDefinitions"] = json.dumps(containers)
    assert check_stack(ds.single_writer_storage, [td, service(desiredCount=3, deploymentMaximumPercent=100)])


def test_single_writer_stateless_service_may_scale() -> None:
    td = task_def(image="ecr/wwhd:1.0.0", path="/tmp/cache")
    assert check_stack(ds.single_writer_storage, [td, service(desiredCount=4), target(10)]) == []


def test_single_writer_unknown_desired_count_is_undecided() -> None:
    [(message, urn)] = check_stack(
        ds.single_writer_storage,
        [task_def(), service(desiredCount=UNKNOWN, deploymentMaximumPercent=100)],
    )
    assert message.startswith("undecided [desiredCount]: Service ") and urn and "ecs/service" in urn


def _writer(name: str, access_point: str, ap_dep: str | None = None) -> list[R]:
    """A singleton Qdrant service (each on its own passes) mounting `access_point`."""
    arn = f"arn:aws:ecs:us-west-2:123456789012:task-definition/{name}:1"
    td = task_def(name=f"{name}-td")
    td.props["arn"] = arn
    td.props["volumes"] = [
        {
            "name": "data",
            "efsVolumeConfiguration": {
                "fileSystemId": UNKNOWN if ap_dep else "fs-1",
                "transitEncryption": "ENABLED",
                "authorizationConfig": {"accessPointId": access_point, "iam": "ENABLED"},
            },
        }
    ]
    if ap_dep:
        td.prop_deps = {"volumes": ["fs", ap_dep]}
    svc = R(
        "aws:ecs/service:Service",
        name,
        {"name": name, "taskDefinition": arn, "desiredCount": 1, "deploymentMaximumPercent": 100},
    )
    return [td, svc]


def test_single_writer_two_services_on_one_access_point_violate() -> None:
    found = check_stack(ds.single_writer_storage, [*_writer("a", "fsap-1"), *_writer("b", "fsap-1")])
    assert len(found) == 1 and "Services a, b" in found[0][0] and "fsap-1" in found[0][0]
    assert check_stack(ds.single_writer_storage, [*_writer("a", "fsap-1"), *_writer("b", "fsap-2")]) == []


def test_single_writer_shared_access_point_found_through_dependencies() -> None:
    """In a first preview every access point id is the same unknown: only the graph tells them apart."""
    fs = R("aws:efs/fileSystem:FileSystem", "fs", {"id": UNKNOWN})
    aps = [R("aws:efs/accessPoint:AccessPoint", n, {"id": UNKNOWN}) for n in ("ap-data", "ap-qdrant")]
    apart = [fs, *aps, *_writer("a", UNKNOWN, "ap-data"), *_writer("b", UNKNOWN, "ap-qdrant")]
    assert check_stack(ds.single_writer_storage, apart) == []
    shared = [fs, *aps, *_writer("a", UNKNOWN, "ap-qdrant"), *_writer("b", UNKNOWN, "ap-qdrant")]
    found = check_stack(ds.single_writer_storage, shared)
    assert len(found) == 1 and "access point 'ap-qdrant'" in found[0][0]


FS = R(
    "aws:efs/fileSystem:FileSystem",
    "fs",
    {"id": "fs-1", "arn": "arn:aws:elasticfilesystem:us-west-2:1:file-system/fs-1"},
)


def test_efs_backup_by_selection_or_policy() -> None:
    sel = R("aws:backup/selection:Selection", "sel", {"resources": [FS.props["arn"]]})
    assert check_stack(ds.efs_backup_enabled, [FS, sel]) == []
    policy = R(
        "aws:efs/backupPolicy:BackupPolicy",
        "bp",
        {"fileSystemId": "fs-1", "backupPolicy": {"status": "ENABLED"}},
    )
    assert check_stack(ds.efs_backup_enabled, [FS, policy]) == []
    off = R(
        "aws:efs/backupPolicy:BackupPolicy",
        "bp",
        {"fileSystemId": "fs-1", "backupPolicy": {"status": "DISABLED"}},
    )
    assert check_stack(ds.efs_backup_enabled, [FS, off])
    assert check_stack(ds.efs_backup_enabled, [FS])


def test_efs_backup_selection_with_unknown_arn_uses_graph() -> None:
    sel = R(
        "aws:backup/selection:Selection", "sel", {"resources": [UNKNOWN]}, prop_deps={"resources": ["fs"]}
    )
    assert check_stack(ds.efs_backup_enabled, [FS, sel]) == []
    blind = R("aws:backup/selection:Selection", "sel", {"resources": [UNKNOWN]})
    [(message, _)] = check_stack(ds.efs_backup_enabled, [FS, blind])
    assert message.startswith("undecided [resources]: FileSystem ")


def test_rds_backup_retention() -> None:
    rds = "aws:rds/instance:Instance"
    assert check_resource(ds.rds_backup_retention, rds, {"backupRetentionPeriod": 7.0}) == []
    assert check_resource(ds.rds_backup_retention, rds, {"backupRetentionPeriod": 1.0})
    assert check_resource(ds.rds_backup_retention, rds, {"backupRetentionPeriod": 7}, config={"minDays": 14})
    # Unset is RDS's 1 day, not 0: enough where one day is asked for.
    [message] = check_resource(ds.rds_backup_retention, rds, {})
    assert "1 day (unset: the RDS default)" in message
    assert check_resource(ds.rds_backup_retention, rds, {}, config={"minDays": 1}) == []


def test_stateful_resources_protected_in_configured_stacks(stack_named) -> None:
    efs = "aws:efs/fileSystem:FileSystem"
    stack_named("prod")
    assert check_resource(ds.stateful_resources_protected, efs, {}, protect=True) == []
    assert check_resource(ds.stateful_resources_protected, efs, {})
    rds = "aws:rds/instance:Instance"
    assert check_resource(ds.stateful_resources_protected, rds, {"deletionProtection": True}) == []
    stack_named("dev")
    assert check_resource(ds.stateful_resources_protected, efs, {}) == []


def test_qdrant_on_network_storage_cites_qdrant_docs() -> None:
    td = task_def()
    msgs = check_resource(ds.qdrant_on_network_storage, td.typ, td.props)
    assert len(msgs) == 1 and "Network file systems such as NFS" in msgs[0] and "qdrant.tech" in msgs[0]
    no_efs = dict(td.props, volumes=[])
    assert check_resource(ds.qdrant_on_network_storage, td.typ, no_efs) == []
