"""WwhdDataVolume: who may touch which directory (read from the file system policy), the stack
key everywhere, daily backups that can be restored; and the single-writer rules of the
configuration that keep SQLite and Qdrant files to one task."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest

from components.backup import BACKUP_MANAGED_POLICIES, BackupPolicy
from components.data import (
    EFS_MOUNT,
    EFS_ROOT,
    EFS_WRITE,
    Writer,
    WwhdDataVolume,
    WwhdDataVolumeArgs,
    _nth_subnet,
    ia_transition,
)
from stack_config import EFS_IA_DAYS, ConfigError, StackConfig, StorageConfig, parse_stack_config
from tests.support import (
    ACCESS_POINT,
    BACKUP_PLAN,
    BACKUP_SELECTION,
    BACKUP_VAULT,
    FILE_SYSTEM,
    FILE_SYSTEM_POLICY,
    MOUNT_TARGET,
)
from tools.mocks import RecordingMonitor, Registration, resolve, settle

REGION = "us-west-2"
KEY = "arn:aws:kms:us-west-2:123456789012:key/0a1b2c3d-test"
SUBNETS = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002", "subnet-0a1b2c3d4e5f60003"]
EFS_SG = "sg-0efs0000000000001"
API_ROLE = "arn:aws:iam::123456789012:role/wwhd-api-task"
QDRANT_ROLE = "arn:aws:iam::123456789012:role/wwhd-qdrant-task"
INTRUDER = "arn:aws:iam::123456789012:role/someone-else"


def storage(**overrides: Any) -> StorageConfig:
    values: dict[str, Any] = {"transition_to_ia_days": 30, "backup_retention_days": 30, "protect": False}
    return StorageConfig(**(values | overrides))


def policy(config: StorageConfig) -> BackupPolicy:
    """The backup policy of ``config``, as the program builds it from ``wwhd:storage``."""
    return BackupPolicy(
        region=REGION,
        key_arn=KEY,
        retention_days=config.backup_retention_days,
        copy_region=config.backup_copy_region,
        protect=config.protect,
        tags={"Project": "wwhd"},
    )


def build(
    monitor: RecordingMonitor,
    config: StorageConfig | None = None,
    *,
    sqlite: bool = True,
    qdrant_on_efs: bool = True,
    qdrant_task_role_arn: str | None = None,
    subnet_count: int = 2,
) -> WwhdDataVolume:
    config = config or storage()
    volume = WwhdDataVolume(
        "t",
        WwhdDataVolumeArgs(
            storage=config,
            key_arn=KEY,
            private_subnet_ids=SUBNETS[:subnet_count],
            subnet_count=subnet_count,
            efs_security_group_id=EFS_SG,
            backups=policy(config),
            sqlite=sqlite,
            qdrant_on_efs=qdrant_on_efs,
        ),
    )
    # As __main__.py does once the services (and so their task roles) exist.
    writers = []
    if volume.api_access_point_arn is not None:
        writers.append(Writer("ApiMountsData", API_ROLE, volume.api_access_point_arn))
    if volume.qdrant_access_point_arn is not None:
        writers.append(
            Writer("QdrantMountsQdrant", qdrant_task_role_arn or API_ROLE, volume.qdrant_access_point_arn)
        )
    volume.admit(writers)
    settle()
    return volume


def access_points(monitor: RecordingMonitor) -> dict[str, Registration]:
    """Access points by root directory."""
    return {r.inputs["rootDirectory"]["path"]: r for r in monitor.of_type(ACCESS_POINT)}


# --- a small evaluator for the file system policy ------------------------------------------


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition_holds(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            if operator == "Bool" or operator == "StringEquals":
                if context.get(key) not in _values(expected):
                    return False
            elif operator == "Null":
                if (key not in context) != (expected == "true"):
                    return False
            else:
                raise AssertionError(f"the evaluator does not know the condition operator {operator}")
    return True


def decide(
    policy: dict[str, Any], *, principal: str, action: str, resource: str, context: dict[str, str]
) -> str:
    """IAM's order for one resource policy: an explicit Deny wins, then an Allow, else the
    request matches nothing (implicit deny)."""
    allowed = False
    for statement in policy["Statement"]:
        principals = _values(statement["Principal"]["AWS"])
        if "*" not in principals and principal not in principals:
            continue
        if action not in _values(statement["Action"]) or resource not in _values(statement["Resource"]):
            continue
        if not _condition_holds(statement.get("Condition", {}), context):
            continue
        if statement["Effect"] == "Deny":
            return "Deny"
        allowed = True
    return "Allow" if allowed else "NoMatch"


def nfs_request(
    monitor: RecordingMonitor, principal: str, action: str, *, via: str | None, tls: bool = True
) -> str:
    """What the file system policy decides for an NFS client call; ``via`` is an access point's
    root directory (None: mounting the file system itself)."""
    policy = json.loads(monitor.one(FILE_SYSTEM_POLICY).inputs["policy"])
    context = {"aws:SecureTransport": "true" if tls else "false"}
    if via is not None:
        context["elasticfilesystem:AccessPointArn"] = access_points(monitor)[via].outputs["arn"]
    return decide(
        policy,
        principal=principal,
        action=action,
        resource=monitor.one(FILE_SYSTEM).outputs["arn"],
        context=context,
    )


# --- access points ---------------------------------------------------------------------------


def test_each_writer_gets_its_own_directory_as_uid_1000(mocks: RecordingMonitor) -> None:
    build(mocks)
    aps = access_points(mocks)
    assert set(aps) == {"/data", "/qdrant"}
    for ap in aps.values():
        assert ap.inputs["fileSystemId"] == mocks.one(FILE_SYSTEM).id
        assert ap.inputs["posixUser"] == {"uid": 1000, "gid": 1000}
        # Created on first mount, owned by the writer, not writable by anyone else.
        assert ap.inputs["rootDirectory"]["creationInfo"] == {
            "ownerUid": 1000,
            "ownerGid": 1000,
            "permissions": "755",
        }


@pytest.mark.parametrize(
    ("sqlite", "qdrant_on_efs", "roots"),
    [(True, True, {"/data", "/qdrant"}), (False, True, {"/qdrant"}), (True, False, {"/data"})],
)
def test_access_points_follow_the_topology(
    mocks: RecordingMonitor, sqlite: bool, qdrant_on_efs: bool, roots: set[str]
) -> None:
    volume = build(mocks, sqlite=sqlite, qdrant_on_efs=qdrant_on_efs, qdrant_task_role_arn=QDRANT_ROLE)
    assert set(access_points(mocks)) == roots
    assert (volume.api_access_point_id is None) == (not sqlite)
    assert (volume.api_access_point_arn is None) == (not sqlite)
    assert (volume.qdrant_access_point_id is None) == (not qdrant_on_efs)
    assert (volume.qdrant_access_point_arn is None) == (not qdrant_on_efs)
    if sqlite:
        assert resolve(volume.api_access_point_arn) == access_points(mocks)["/data"].outputs["arn"]
    if qdrant_on_efs:
        assert resolve(volume.qdrant_access_point_id) == access_points(mocks)["/qdrant"].id


def test_nothing_to_store_is_refused() -> None:
    with pytest.raises(ValueError, match="sqlite/qdrant_on_efs"):
        WwhdDataVolumeArgs(
            storage=storage(), key_arn=KEY, private_subnet_ids=SUBNETS, subnet_count=2,
            efs_security_group_id=EFS_SG, backups=policy(storage()),
            sqlite=False, qdrant_on_efs=False,
        )  # fmt: skip


# --- the file system policy --------------------------------------------------------------------


def test_policy_refuses_connections_without_tls(mocks: RecordingMonitor) -> None:
    build(mocks)
    for root in ("/data", "/qdrant"):
        for action in (EFS_MOUNT, EFS_WRITE):
            assert nfs_request(mocks, API_ROLE, action, via=root, tls=False) == "Deny"
            assert nfs_request(mocks, API_ROLE, action, via=root, tls=True) == "Allow"


def test_policy_refuses_mounting_without_an_access_point(mocks: RecordingMonitor) -> None:
    build(mocks, sqlite=True, qdrant_on_efs=True, qdrant_task_role_arn=QDRANT_ROLE)
    for principal in (API_ROLE, QDRANT_ROLE, INTRUDER):
        for action in (EFS_MOUNT, EFS_WRITE, EFS_ROOT):
            assert nfs_request(mocks, principal, action, via=None) == "Deny", (principal, action)


def test_each_role_reaches_only_its_own_access_point(mocks: RecordingMonitor) -> None:
    """Prod-like: Qdrant is its own service with its own role."""
    build(mocks, sqlite=True, qdrant_on_efs=True, qdrant_task_role_arn=QDRANT_ROLE)
    assert nfs_request(mocks, API_ROLE, EFS_WRITE, via="/data") == "Allow"
    assert nfs_request(mocks, QDRANT_ROLE, EFS_WRITE, via="/qdrant") == "Allow"
    assert nfs_request(mocks, API_ROLE, EFS_MOUNT, via="/qdrant") != "Allow"
    assert nfs_request(mocks, QDRANT_ROLE, EFS_MOUNT, via="/data") != "Allow"
    for root in ("/data", "/qdrant"):
        assert nfs_request(mocks, INTRUDER, EFS_MOUNT, via=root) != "Allow"
        # Root access is granted to no one, not even through an access point.
        for principal in (API_ROLE, QDRANT_ROLE):
            assert nfs_request(mocks, principal, EFS_ROOT, via=root) != "Allow"


def test_with_a_sidecar_the_api_role_mounts_qdrant_too(mocks: RecordingMonitor) -> None:
    build(mocks, sqlite=True, qdrant_on_efs=True, qdrant_task_role_arn=None)
    assert nfs_request(mocks, API_ROLE, EFS_WRITE, via="/data") == "Allow"
    assert nfs_request(mocks, API_ROLE, EFS_WRITE, via="/qdrant") == "Allow"
    assert nfs_request(mocks, QDRANT_ROLE, EFS_MOUNT, via="/qdrant") != "Allow"


def test_policy_lockout_safety_check_stays_on(mocks: RecordingMonitor) -> None:
    build(mocks)
    policy = mocks.one(FILE_SYSTEM_POLICY)
    assert policy.inputs.get("bypassPolicyLockoutSafetyCheck") is not True
    assert policy.inputs["fileSystemId"] == mocks.one(FILE_SYSTEM).id
    # Only NFS client actions: nothing in it can touch the deployer's management calls.
    actions = {a for s in json.loads(policy.inputs["policy"])["Statement"] for a in s["Action"]}
    assert actions <= {EFS_MOUNT, EFS_WRITE, EFS_ROOT}


# --- the file system ---------------------------------------------------------------------------


def test_file_system_and_vault_use_the_stack_key(mocks: RecordingMonitor) -> None:
    build(mocks)
    fs = mocks.one(FILE_SYSTEM)
    assert fs.inputs["encrypted"] is True and fs.inputs["kmsKeyId"] == KEY
    assert mocks.one(BACKUP_VAULT).inputs["kmsKeyArn"] == KEY
    assert not mocks.of_type("aws:kms/key:Key"), "the stack key is WwhdStackKey's, not another one"


@pytest.mark.parametrize(
    ("days", "expected"), [(1, "AFTER_1_DAY"), (30, "AFTER_30_DAYS"), (365, "AFTER_365_DAYS")]
)
def test_lifecycle_moves_to_ia_and_back_in_two_policies(
    mocks: RecordingMonitor, days: int, expected: str
) -> None:
    build(mocks, storage(transition_to_ia_days=days, throughput_mode="elastic"))
    fs = mocks.one(FILE_SYSTEM)
    assert fs.inputs["lifecyclePolicies"] == [
        {"transitionToIa": expected},
        {"transitionToPrimaryStorageClass": "AFTER_1_ACCESS"},
    ]
    assert fs.inputs["performanceMode"] == "generalPurpose"
    assert fs.inputs["throughputMode"] == "elastic"


def test_every_configurable_ia_value_is_one_efs_accepts() -> None:
    model = botocore.session.get_session().get_service_model("efs")
    accepted = set(model.shape_for("TransitionToIARules").enum)
    assert {ia_transition(days) for days in EFS_IA_DAYS} == accepted
    assert model.shape_for("TransitionToPrimaryStorageClassRules").enum == ["AFTER_1_ACCESS"]


@pytest.mark.parametrize("count", [2, 3])
def test_one_mount_target_per_private_subnet(mocks: RecordingMonitor, count: int) -> None:
    volume = build(mocks, subnet_count=count)
    targets = mocks.of_type(MOUNT_TARGET)
    assert sorted(t.inputs["subnetId"] for t in targets) == sorted(SUBNETS[:count])
    for t in targets:
        assert t.inputs["securityGroups"] == [EFS_SG]
        assert t.inputs["fileSystemId"] == mocks.one(FILE_SYSTEM).id
    assert sorted(resolve(volume.mount_target_ids)) == sorted(str(t.id) for t in targets)


def test_a_missing_subnet_is_reported() -> None:
    assert _nth_subnet(SUBNETS, 1, 2) == SUBNETS[1]
    with pytest.raises(ValueError, match="subnet_count is 3 but only 2"):
        _nth_subnet(SUBNETS[:2], 0, 3)


# --- backups -----------------------------------------------------------------------------------


def test_daily_backup_of_this_file_system_at_two_utc(mocks: RecordingMonitor) -> None:
    volume = build(mocks, storage(backup_retention_days=30))
    fs, vault, plan = mocks.one(FILE_SYSTEM), mocks.one(BACKUP_VAULT), mocks.one(BACKUP_PLAN)
    (rule,) = plan.inputs["rules"]
    assert rule["schedule"] == "cron(0 2 * * ? *)"
    assert rule.get("scheduleExpressionTimezone", "Etc/UTC") == "Etc/UTC"
    assert rule["lifecycle"]["deleteAfter"] == 30
    assert rule["targetVaultName"] == vault.outputs["name"]
    assert rule["completionWindow"] >= rule["startWindow"] + 60
    selection = mocks.one(BACKUP_SELECTION)
    assert selection.inputs["resources"] == [fs.outputs["arn"]]
    assert selection.inputs["planId"] == plan.id
    assert resolve(volume.backups.plan_id) == plan.id
    assert resolve(volume.backups.vault_name) == vault.outputs["name"]


def test_backup_role_is_assumed_by_backup_with_the_managed_policies(mocks: RecordingMonitor) -> None:
    build(mocks)
    selection = mocks.one(BACKUP_SELECTION)
    role = next(
        r for r in mocks.of_type("aws:iam/role:Role") if r.outputs["arn"] == selection.inputs["iamRoleArn"]
    )
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "backup.amazonaws.com"}]
    attached = {
        a.inputs["policyArn"]
        for a in mocks.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role.outputs["name"]
    }
    assert attached == {
        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
    }
    assert attached == set(BACKUP_MANAGED_POLICIES.values())
    # The selection waits for the permissions it will use.
    attachment_urns = {a.urn for a in mocks.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}
    assert attachment_urns <= set(selection.dependencies)


def test_efs_automatic_backups_are_off_so_nothing_is_backed_up_twice(mocks: RecordingMonitor) -> None:
    build(mocks)
    policy = mocks.one("aws:efs/backupPolicy:BackupPolicy")
    assert policy.inputs["fileSystemId"] == mocks.one(FILE_SYSTEM).id
    assert policy.inputs["backupPolicy"] == {"status": "DISABLED"}


def test_no_copy_without_a_copy_region(mocks: RecordingMonitor) -> None:
    volume = build(mocks)
    (rule,) = mocks.one(BACKUP_PLAN).inputs["rules"]
    assert not rule.get("copyActions")
    assert len(mocks.of_type(BACKUP_VAULT)) == 1
    assert not mocks.of_type("pulumi:providers:aws")
    assert volume.backups.copy_vault_arn is None


def test_copy_to_a_vault_in_the_copy_region(mocks: RecordingMonitor) -> None:
    volume = build(mocks, storage(backup_copy_region="us-east-1", backup_retention_days=30))
    provider = mocks.one("pulumi:providers:aws")
    assert provider.inputs["region"] == "us-east-1"
    assert provider.parent == mocks.one("wwhd:index:WwhdDataVolume").urn
    copy = mocks.one(BACKUP_VAULT, "t-vault-copy")
    assert copy.provider.startswith(provider.urn)
    # The stack key cannot seal a vault in another region: the AWS-managed key does.
    assert "kmsKeyArn" not in copy.inputs
    (rule,) = mocks.one(BACKUP_PLAN).inputs["rules"]
    assert rule["copyActions"] == [
        {"destinationVaultArn": copy.outputs["arn"], "lifecycle": {"deleteAfter": 30}}
    ]
    assert resolve(volume.backups.copy_vault_arn) == copy.outputs["arn"]


def test_copy_region_equal_to_the_stack_region_is_refused() -> None:
    with pytest.raises(ValueError, match="copy_region: is the stack's own region us-west-2"):
        policy(storage(backup_copy_region=REGION))


# --- protection --------------------------------------------------------------------------------


DEV_RAW: dict[str, Any] = {
    "environment": "dev",
    "images": {"apiTag": "v1.0.0"},
    "loadBalancer": {"allowPlainHttp": True},
}
PROD_RAW: dict[str, Any] = {
    "environment": "prod",
    "images": {
        "apiTag": "v1.0.0",
        "dockerHubCredentialArn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf",
    },
    "loadBalancer": {
        "certificateArn": "arn:aws:acm:us-west-2:123456789012:certificate/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
    },
    "monitoring": {"alarmEmails": ["oncall@example.com"]},
    "storage": {"backupCopyRegion": "us-east-1"},
}


@pytest.mark.parametrize(("raw", "protected"), [(DEV_RAW, False), (PROD_RAW, True)])
def test_file_system_and_vaults_are_protected_in_prod_only(
    mocks: RecordingMonitor, raw: dict[str, Any], protected: bool
) -> None:
    cfg = parse_stack_config(raw, REGION)
    build(mocks, cfg.storage, qdrant_task_role_arn=QDRANT_ROLE)
    stateful = [mocks.one(FILE_SYSTEM), *mocks.of_type(BACKUP_VAULT)]
    assert len(stateful) == (3 if protected else 2)
    for r in stateful:
        assert r.protect is protected, r.name
    if protected:
        (rule,) = mocks.one(BACKUP_PLAN).inputs["rules"]
        assert rule["lifecycle"]["deleteAfter"] == 30


def test_children_are_parented_to_the_component(mocks: RecordingMonitor) -> None:
    build(mocks, storage(backup_copy_region="us-east-1"))
    component = mocks.one("wwhd:index:WwhdDataVolume")
    for r in mocks.registrations:
        if r is not component and r.type != "pulumi:pulumi:Stack":
            assert r.parent == component.urn, r.name


# --- the single-writer rules of the configuration ----------------------------------------------


def dev(**sections: Any) -> dict[str, Any]:
    return DEV_RAW | sections


def problems(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw, REGION)
    return {p.path: p.message for p in caught.value.problems}


def test_sqlite_refuses_two_desired_tasks() -> None:
    found = problems(dev(service={"desiredCount": 2, "maxCount": 2}))
    assert "database.engine is sqlite" in found["wwhd:service.desiredCount"]
    assert "database.engine is sqlite" in found["wwhd:service.maxCount"]


def test_sqlite_refuses_autoscaling_past_one_task() -> None:
    found = problems(dev(service={"maxCount": 3}))
    assert set(found) == {"wwhd:service.maxCount"}
    assert "3 > 1" in found["wwhd:service.maxCount"]
    assert "database.engine is sqlite" in found["wwhd:service.maxCount"]


def test_sqlite_refuses_a_deploy_that_starts_a_second_task() -> None:
    found = problems(dev(service={"deployment": {"maximumPercent": 200}}))
    assert set(found) == {"wwhd:service.deployment.maximumPercent"}
    message = found["wwhd:service.deployment.maximumPercent"]
    assert "database.engine is sqlite" in message and "minimumHealthyPercent 0" in message


def test_sqlite_refuses_a_deploy_that_cannot_replace_the_task() -> None:
    found = problems(dev(service={"deployment": {"minimumHealthyPercent": 100, "maximumPercent": 100}}))
    assert set(found) == {"wwhd:service.deployment.minimumHealthyPercent"}
    assert "maximumPercent 100" in found["wwhd:service.deployment.minimumHealthyPercent"]


def test_a_qdrant_sidecar_is_a_single_writer_even_with_postgres() -> None:
    found = problems(
        dev(database={"engine": "postgres"}, qdrant={"placement": "sidecar"}, service={"maxCount": 2})
    )
    assert set(found) == {"wwhd:service.maxCount"}
    assert "qdrant.placement is sidecar" in found["wwhd:service.maxCount"]


def test_a_single_writer_dev_stack_passes() -> None:
    cfg = parse_stack_config(dev(), REGION)
    assert isinstance(cfg, StackConfig)
    assert cfg.single_writer
    assert (cfg.service.desired_count, cfg.service.max_count) == (1, 1)
    assert cfg.deployment_percents == (0, 100)
    assert cfg.storage.protect is False


def test_a_postgres_prod_stack_scales_from_2_to_10() -> None:
    cfg = parse_stack_config(
        PROD_RAW
        | {
            "database": {"engine": "postgres"},
            "qdrant": {"placement": "service", "acceptNetworkStorage": True},
            "service": {"desiredCount": 2, "minCount": 2, "maxCount": 10},
        },
        REGION,
    )
    assert not cfg.single_writer
    assert (cfg.service.min_count, cfg.service.max_count) == (2, 10)
    assert cfg.deployment_percents == (100, 200)
    assert cfg.storage.protect is True and cfg.storage.backup_retention_days == 30
