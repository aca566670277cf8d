"""WwhdContainerHost: the instance is disposable and private, the volume is the state and is kept,
backed up and never formatted twice; the role can do what the host needs and nothing else; the
boot script, run against stand-ins for the AMI's tools, attaches, waits, formats and joins as it
says."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pulumi_aws as aws
import pytest
from policy_sentry.querying.actions import get_action_data, get_actions_that_support_wildcard_arns_only

from components.backup import BACKUP_SCHEDULE, BackupPolicy
from components.container_host import (
    AMI_PARAMETERS,
    HOST_TAG,
    VOLUME_TAG,
    HostBoot,
    HostPaths,
    WwhdContainerHost,
    WwhdContainerHostArgs,
    agent_config,
    family_architecture,
    instance_family,
    metric_namespace,
    user_data,
)
from tests.policies.conftest import iam_document_findings
from tests.support import (
    AUTOSCALING_GROUP,
    BOUNDARY,
    EBS_VOLUME,
    GET_PARAMETER,
    INSTANCE_PROFILE,
    LAUNCH_TEMPLATE,
    ROLE,
    ROLE_POLICY,
    instance_role,
)
from tools.mocks import ACCOUNT_ID, RecordingMonitor, Registration, resolve, settle

REGION = "us-west-2"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/0a1b2c3d-host"
KEY_ALIAS = "alias/wwhd-test"
SUBNET = "subnet-0a1b2c3d4e5f60001"
HOST_SG = "sg-0host000000000001"
CLUSTER = "wwhd-test"
AMI = "ami-0123456789abcdef0"
HOST_ID = "test/wwhd-qdrant-host"


def backups(**overrides: Any) -> BackupPolicy:
    values: dict[str, Any] = {
        "region": REGION,
        "key_arn": KEY,
        "retention_days": 30,
        "permissions_boundary": BOUNDARY,
    }
    return BackupPolicy(**(values | overrides))


def args(**overrides: Any) -> WwhdContainerHostArgs:
    values: dict[str, Any] = {
        "cluster_name": CLUSTER,
        "subnet_id": SUBNET,
        "availability_zone": f"{REGION}a",
        "security_group_ids": [HOST_SG],
        "key_arn": KEY,
        "key_alias": KEY_ALIAS,
        "permissions_boundary": BOUNDARY,
        "backups": backups(),
    }
    return WwhdContainerHostArgs(**(values | overrides))


def answer_ami(monitor: RecordingMonitor) -> None:
    """The SSM parameter invoke, answered as AWS does for the public AMI parameters."""

    def parameter(request: dict[str, Any]) -> dict[str, Any]:
        name = request["name"]
        return {
            "arn": f"arn:aws:ssm:{REGION}::parameter{name}",
            "id": name,
            "name": name,
            "type": "String",
            "value": AMI,
            "insecureValue": AMI,
            "version": 1,
            "withDecryption": True,
            "region": REGION,
        }

    monitor.mocks.invokes[GET_PARAMETER] = parameter  # type: ignore[attr-defined]


def build(monitor: RecordingMonitor, **overrides: Any) -> WwhdContainerHost:
    answer_ami(monitor)
    host = WwhdContainerHost("wwhd-qdrant-host", args(**overrides))
    settle()
    return host


def script_of(monitor: RecordingMonitor) -> str:
    return base64.b64decode(monitor.one(LAUNCH_TEMPLATE).inputs["userData"]).decode()


def statements(monitor: RecordingMonitor) -> dict[str, dict[str, Any]]:
    policy = json.loads(monitor.one(ROLE_POLICY).inputs["policy"])
    return {s["Sid"]: s for s in policy["Statement"]}


# --- args -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance_type", "architecture"),
    [
        ("t4g.small", "arm64"),
        ("m7g.large", "arm64"),
        ("c7gn.xlarge", "arm64"),
        ("x2gd.medium", "arm64"),
        ("a1.large", "arm64"),
        ("t3.small", "x86_64"),
        ("m7i.large", "x86_64"),
        ("c6a.large", "x86_64"),
        ("g5.xlarge", "x86_64"),
    ],
)
def test_instance_family_architecture(instance_type: str, architecture: str) -> None:
    family = instance_family(instance_type)
    assert family is not None
    assert family_architecture(family) == architecture


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"instance_type": "t4g.small", "architecture": "x86_64"},
            "t4g.small is arm64, not architecture x86_64",
        ),
        ({"instance_type": "t3.small"}, "t3.small is x86_64, not architecture arm64"),
        ({"instance_type": "t2.small", "architecture": "x86_64"}, "Xen type"),
        ({"instance_type": "small"}, "not an EC2 instance type"),
        ({"volume_gb": 0}, "gp3 volumes hold 1-16384 GiB"),
        ({"volume_gb": 16385}, "gp3 volumes hold 1-16384 GiB"),
        ({"mount_path": "/etc/qdrant"}, "not a plain absolute data path"),
        ({"mount_path": "relative"}, "not a plain absolute data path"),
        ({"instance_attribute": ("wwhd role", "qdrant")}, "instance_attribute"),
        ({"image_id": "ubuntu"}, "not an AMI id"),
    ],
)
def test_args_refuse_what_aws_or_the_host_cannot_take(overrides: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError, match="invalid WwhdContainerHostArgs") as failure:
        args(**overrides)
    assert expected in str(failure.value)


def test_default_args_are_a_graviton_small_with_20_gib() -> None:
    a = args()
    assert (a.instance_type, a.architecture, a.volume_gb) == ("t4g.small", "arm64", 20)
    assert a.placement_constraint == "attribute:wwhd.role == qdrant"


# --- the volume: the state -----------------------------------------------------------------------


def test_volume_is_encrypted_gp3_in_the_instance_az(mocks: RecordingMonitor) -> None:
    build(mocks, volume_gb=50)
    v = mocks.one(EBS_VOLUME)
    assert v.inputs["type"] == "gp3"
    assert v.inputs["encrypted"] is True
    assert v.inputs["kmsKeyId"] == KEY
    assert v.inputs["size"] == 50
    assert v.inputs["availabilityZone"] == f"{REGION}a"
    assert v.inputs["tags"][VOLUME_TAG] == HOST_ID


@pytest.mark.parametrize("protect", [True, False])
def test_volume_is_always_retained_and_protected_with_its_vaults(
    mocks: RecordingMonitor, protect: bool
) -> None:
    build(mocks, backups=backups(protect=protect))
    v = mocks.one(EBS_VOLUME)
    assert v.retain_on_delete is True
    assert v.protect is protect
    vaults = mocks.of_type("aws:backup/vault:Vault")
    assert vaults and all(vault.protect is protect for vault in vaults)


def test_volume_is_backed_up_daily_with_the_stack_retention(mocks: RecordingMonitor) -> None:
    build(mocks, backups=backups(retention_days=14))
    volume = mocks.one(EBS_VOLUME)
    selection = mocks.one("aws:backup/selection:Selection")
    assert selection.inputs["resources"] == [volume.outputs["arn"]]
    assert volume.urn in selection.property_dependencies["resources"]
    (rule,) = mocks.one("aws:backup/plan:Plan").inputs["rules"]
    assert rule["schedule"] == BACKUP_SCHEDULE
    assert rule["lifecycle"]["deleteAfter"] == 14
    assert mocks.one("aws:backup/vault:Vault").inputs["kmsKeyArn"] == KEY
    roles = {r.name: r for r in mocks.of_type(ROLE)}
    assert roles["wwhd-qdrant-host-backup-role"].inputs["permissionsBoundary"] == BOUNDARY


def test_copy_region_gets_a_vault_and_a_copy_action(mocks: RecordingMonitor) -> None:
    build(mocks, backups=backups(copy_region="us-east-1"))
    copy_vault = mocks.one("aws:backup/vault:Vault", "wwhd-qdrant-host-vault-copy")
    (rule,) = mocks.one("aws:backup/plan:Plan").inputs["rules"]
    assert rule["copyActions"][0]["destinationVaultArn"] == copy_vault.outputs["arn"]
    assert rule["copyActions"][0]["lifecycle"]["deleteAfter"] == 30


# --- the instance: disposable, private --------------------------------------------------------


def test_launch_template_is_private_imdsv2_and_keyless(mocks: RecordingMonitor) -> None:
    build(mocks)
    t = mocks.one(LAUNCH_TEMPLATE).inputs
    assert t["imageId"] == AMI
    assert t["instanceType"] == "t4g.small"
    assert "keyName" not in t
    assert t["metadataOptions"]["httpTokens"] == "required"
    assert t["metadataOptions"]["httpPutResponseHopLimit"] == 1
    (nic,) = t["networkInterfaces"]
    assert nic["associatePublicIpAddress"] == "false"
    assert nic["securityGroups"] == [HOST_SG]
    (root,) = t["blockDeviceMappings"]
    assert root["ebs"]["encrypted"] == "true" and root["ebs"]["volumeType"] == "gp3"
    assert t["iamInstanceProfile"]["arn"] == mocks.one(INSTANCE_PROFILE).outputs["arn"]
    tagged = {spec["resourceType"]: spec["tags"] for spec in t["tagSpecifications"]}
    assert tagged["instance"][HOST_TAG] == HOST_ID


@pytest.mark.parametrize("architecture", ["arm64", "x86_64"])
def test_image_is_the_ecs_optimized_al2023_ami_of_the_architecture(
    mocks: RecordingMonitor, architecture: str
) -> None:
    build(
        mocks, architecture=architecture, instance_type="t4g.small" if architecture == "arm64" else "t3.small"
    )
    asked = [call for token, call in mocks.mocks.calls if token == GET_PARAMETER]  # type: ignore[attr-defined]
    assert [call["name"] for call in asked] == [AMI_PARAMETERS[architecture]]
    assert "amazon-linux-2023" in AMI_PARAMETERS[architecture]


def test_a_pinned_image_skips_the_parameter(mocks: RecordingMonitor) -> None:
    build(mocks, image_id="ami-0fedcba9876543210")
    assert mocks.one(LAUNCH_TEMPLATE).inputs["imageId"] == "ami-0fedcba9876543210"
    assert not [t for t, _ in mocks.mocks.calls if t == GET_PARAMETER]  # type: ignore[attr-defined]


def test_group_is_exactly_one_in_the_subnet_and_terminates_before_launching(mocks: RecordingMonitor) -> None:
    build(mocks)
    g = mocks.one(AUTOSCALING_GROUP)
    i = g.inputs
    assert (i["minSize"], i["maxSize"], i["desiredCapacity"]) == (1, 1, 1)
    assert i["vpcZoneIdentifiers"] == [SUBNET]
    assert i["healthCheckType"] == "EC2"
    template = mocks.one(LAUNCH_TEMPLATE)
    assert i["launchTemplate"]["id"] == template.outputs["id"]
    assert template.urn in g.property_dependencies["launchTemplate"]
    assert i["instanceMaintenancePolicy"] == {"minHealthyPercentage": 0, "maxHealthyPercentage": 100}
    prefs = i["instanceRefresh"]["preferences"]
    assert (prefs["minHealthyPercentage"], prefs["maxHealthyPercentage"]) == (0, 100)
    assert mocks.one(ROLE_POLICY).urn in g.dependencies


# --- the role: what the host needs, nothing else ---------------------------------------------


def test_instance_role_carries_the_boundary_and_no_managed_policy(mocks: RecordingMonitor) -> None:
    build(mocks)
    role = instance_role(mocks, "wwhd-qdrant-host-instance", BOUNDARY)
    assert mocks.one(INSTANCE_PROFILE).inputs["role"] == role.outputs["name"]
    assert mocks.one(INSTANCE_PROFILE).outputs["name"].startswith("wwhd-")


def test_instance_policy_passes_the_packs_iam_policies(mocks: RecordingMonitor) -> None:
    build(mocks)
    assert iam_document_findings(ROLE_POLICY, mocks.one(ROLE_POLICY).inputs) == {}


def test_star_resources_only_for_actions_iam_scopes_to_nothing(mocks: RecordingMonitor) -> None:
    build(mocks)
    for sid, s in statements(mocks).items():
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        for action in actions:
            service, name = action.split(":")
            if s["Resource"] == "*":
                wildcard_only = {a.lower() for a in get_actions_that_support_wildcard_arns_only(service)}
                assert action.lower() in wildcard_only, f"{sid}: {action} can be scoped"
            else:
                formats = [row["resource_arn_format"] for row in get_action_data(service, name)[service]]
                assert formats != ["*"], f"{sid}: {action} takes no resource"


def test_ecs_agent_is_confined_to_the_cluster(mocks: RecordingMonitor) -> None:
    build(mocks)
    s = statements(mocks)
    assert s["EcsAgentCluster"]["Resource"] == f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:cluster/{CLUSTER}"
    assert (
        s["EcsAgentInstance"]["Resource"]
        == f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:container-instance/{CLUSTER}/*"
    )
    granted = {
        a for st in s.values() for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
    }
    assert "ecs:CreateCluster" not in granted
    assert not any(a.startswith(("ecr:", "logs:", "s3:", "iam:")) for a in granted)


def test_attach_is_limited_to_this_hosts_volume_and_instances(mocks: RecordingMonitor) -> None:
    build(mocks)
    s = statements(mocks)
    volume, instance = s["AttachOwnVolume"], s["AttachToOwnInstances"]
    assert volume["Resource"] == f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:volume/*"
    assert volume["Condition"] == {"StringEquals": {f"aws:ResourceTag/{VOLUME_TAG}": HOST_ID}}
    assert instance["Resource"] == f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:instance/*"
    assert instance["Condition"] == {"StringEquals": {f"aws:ResourceTag/{HOST_TAG}": HOST_ID}}
    # The tags the conditions ask for are the ones the program sets.
    assert mocks.one(EBS_VOLUME).inputs["tags"][VOLUME_TAG] == HOST_ID
    assert "ec2:DetachVolume" not in json.dumps(s)


def test_key_is_used_only_through_ec2_and_metrics_only_in_the_hosts_namespace(
    mocks: RecordingMonitor,
) -> None:
    host = build(mocks)
    s = statements(mocks)
    via = {"kms:ViaService": f"ec2.{REGION}.amazonaws.com"}
    # The stack key through its alias: the key's id is unknown until it exists.
    aliased = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": KEY_ALIAS}}
    assert s["GrantVolumeKeyToEc2"]["Condition"] == {
        "StringEquals": via,
        "Bool": {"kms:GrantIsForAWSResource": "true"},
        **aliased,
    }
    assert s["UseVolumeKeyThroughEc2"]["Condition"] == {"StringEquals": via, **aliased}
    assert {s["GrantVolumeKeyToEc2"]["Resource"], s["UseVolumeKeyThroughEc2"]["Resource"]} == {
        f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/*"
    }
    assert s["PublishHostMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": host.volume.free_space.namespace}
    }


def test_policy_is_known_at_preview_without_any_created_resource(new_stack: RecordingMonitor) -> None:
    """On a new stack the key's ARN is unknown (issue 19): the policy is built without it."""
    answer_ami(new_stack)
    WwhdContainerHost("wwhd-qdrant-host", args(key_arn=aws.kms.Key("k").arn))
    settle()
    policy = new_stack.one(ROLE_POLICY, "wwhd-qdrant-host-instance").inputs["policy"]
    assert isinstance(policy, str) and "vol-" not in policy and "i-" not in policy.replace("Poll", "")


# --- outputs -----------------------------------------------------------------------------------


def test_outputs(mocks: RecordingMonitor) -> None:
    host = build(mocks)
    volume, instances = host.volume, host.instances
    assert resolve(volume.id) == mocks.one(EBS_VOLUME).outputs["id"]
    assert resolve(instances.group_name) == "wwhd-qdrant-host-test"
    assert resolve(instances.profile_name) == mocks.one(INSTANCE_PROFILE).outputs["name"]
    assert host.placement_constraint == "attribute:wwhd.role == qdrant"
    assert (volume.mount_path, volume.storage_path, volume.snapshots_path) == (
        "/var/lib/qdrant",
        "/var/lib/qdrant/storage",
        "/var/lib/qdrant/snapshots",
    )
    metric = volume.free_space
    assert (metric.namespace, metric.name, dict(metric.dimensions)) == (
        "WWHD/test/wwhd-qdrant-host",
        "disk_used_percent",
        {"path": "/var/lib/qdrant"},
    )
    backup_role = mocks.one(ROLE, "wwhd-qdrant-host-backup-role")
    assert resolve(host.backups.role_arn) == backup_role.outputs["arn"]
    assert host.backups.copy_vault_arn is None
    component = next(r for r in mocks.registrations if r.type == "wwhd:index:WwhdContainerHost")
    outputs = mocks.outputs[component.urn]
    assert set(outputs) == {"volume", "instances", "placement_constraint", "backups"}
    assert outputs["placement_constraint"] == host.placement_constraint
    assert outputs["volume"]["free_space"]["dimensions"] == {"path": "/var/lib/qdrant"}
    assert outputs["backups"]["role_arn"] == backup_role.outputs["arn"]


def test_region_and_protection_come_from_the_backup_policy() -> None:
    host = args(backups=backups(region="eu-central-1", protect=True))
    assert (host.region, host.protect) == ("eu-central-1", True)


def test_every_child_is_parented_to_the_component(mocks: RecordingMonitor) -> None:
    build(mocks)
    component = next(r for r in mocks.registrations if r.type == "wwhd:index:WwhdContainerHost")
    children = [r for r in mocks.registrations if r.urn not in (component.urn, component.parent)]
    assert children and all(r.parent == component.urn for r in children), [
        r.name for r in children if r.parent != component.urn
    ]


def test_metric_namespace_keeps_cloudwatch_characters() -> None:
    assert metric_namespace("prod", "wwhd-qdrant-host") == "WWHD/prod/wwhd-qdrant-host"
    assert metric_namespace("my stack", "h") == "WWHD/my-stack/h"


def test_agent_rolls_the_metric_up_to_the_mount_path() -> None:
    config = agent_config(boot())
    assert config["agent"]["omit_hostname"] is True
    assert config["metrics"]["aggregation_dimensions"] == [["path"]]
    disk = config["metrics"]["metrics_collected"]["disk"]
    assert disk == {"resources": ["/var/lib/qdrant"], "measurement": ["used_percent"], "drop_device": True}


# --- the boot script ---------------------------------------------------------------------------

VOLUME_ID = "vol-0123456789abcdef0"


def boot(paths: HostPaths | None = None) -> HostBoot:
    return HostBoot(
        region=REGION,
        mount_path="/var/lib/qdrant",
        cluster_name=CLUSTER,
        instance_attribute=("wwhd.role", "qdrant"),
        metric_namespace="WWHD/test/wwhd-qdrant-host",
        paths=paths or HostPaths(),
    )


def test_script_in_the_template_is_the_rendered_boot_script(mocks: RecordingMonitor) -> None:
    build(mocks)
    script = script_of(mocks)
    volume_id = mocks.one(EBS_VOLUME).outputs["id"]
    assert script == user_data(replace(boot(), metric_namespace="WWHD/test/wwhd-qdrant-host"), volume_id)


def test_script_parses() -> None:
    subprocess.run(["bash", "-n"], input=user_data(boot(), VOLUME_ID), text=True, check=True)


# Stand-ins for what the script calls on the AMI. Each records its arguments in $STATE/calls;
# `aws ec2 describe-volumes` answers the lines of $STATE/volume one call at a time (the last
# one repeats), and `attach-volume` makes the volume in-use by this instance.
STUBS = {
    "curl": """case "$*" in *api/token*) echo token ;; *instance-id*) echo i-new ;;
               *availability-zone*) echo us-west-2a ;; *) exit 22 ;; esac""",
    "aws": """case "$*" in
               *describe-volumes*) head -n 1 "$STATE/volume"
                 if [ "$(wc -l < "$STATE/volume")" -gt 1 ]; then sed -i 1d "$STATE/volume"; fi ;;
               *attach-volume*) echo "in-use us-west-2a i-new" > "$STATE/volume" ;;
             esac""",
    "blkid": """case "$*" in *UUID*) echo 1b2c3d4e-uuid ;; *) exit "$(cat "$STATE/blkid")" ;; esac""",
    "mountpoint": """[ -e "$STATE/mounted" ]""",
    "mount": """touch "$STATE/mounted" """,
    "install": """mkdir -p "${@: -1}" """,
    "dnf": ":",
    "chattr": ":",
    "mkfs": ":",
    "xfs_growfs": ":",
    "sleep": ":",
    "shutdown": ":",
    "agent-ctl": ":",
}


def run_boot(
    tmp_path: Path, volume_states: list[str], blkid_exit: int, attach_timeout: int = 600
) -> tuple[subprocess.CompletedProcess[str], Path]:
    state, bin_dir = tmp_path / "state", tmp_path / "bin"
    state.mkdir()
    bin_dir.mkdir()
    (state / "volume").write_text("\n".join(volume_states) + "\n")
    (state / "blkid").write_text(str(blkid_exit))
    (state / "fstab").write_text("")
    (state / "ecs.config").write_text("")
    for name, body in STUBS.items():
        tool = bin_dir / name
        tool.write_text(f'#!/bin/bash\necho "{name} $*" >> "$STATE/calls"\n{textwrap.dedent(body)}\n')
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / f"nvme-Amazon_Elastic_Block_Store_{VOLUME_ID.replace('-', '')}").write_text("")
    paths = HostPaths(
        log=str(state / "log"),
        fstab=str(state / "fstab"),
        ecs_config=str(state / "ecs.config"),
        agent_config=str(state / "agent.json"),
        agent_ctl=str(bin_dir / "agent-ctl"),
        disk_by_id=str(by_id),
        metadata="http://metadata.test",
    )
    script = user_data(
        replace(boot(paths), mount_path=str(tmp_path / "mnt"), attach_timeout=attach_timeout), VOLUME_ID
    )
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STATE": str(state)}
    done = subprocess.run(["bash", "-c", script], env=env, text=True, capture_output=True, timeout=60)
    return done, state


def calls(state: Path) -> list[str]:
    return (state / "calls").read_text().splitlines()


def test_boot_formats_a_new_volume_mounts_it_then_joins(tmp_path: Path) -> None:
    done, state = run_boot(tmp_path, ["available us-west-2a None"], blkid_exit=2)
    assert done.returncode == 0, done.stderr
    made = calls(state)
    assert any(c.startswith("aws ec2 attach-volume") and "--instance-id i-new" in c for c in made)
    assert any(c.startswith("mkfs -t xfs") for c in made)
    assert (
        f"UUID=1b2c3d4e-uuid {tmp_path / 'mnt'} xfs defaults,noatime,nofail 0 2"
        in (state / "fstab").read_text()
    )
    ecs = (state / "ecs.config").read_text()
    assert f"ECS_CLUSTER={CLUSTER}\n" in ecs
    assert 'ECS_INSTANCE_ATTRIBUTES={"wwhd.role":"qdrant"}' in ecs
    assert (
        json.loads((state / "agent.json").read_text())["metrics"]["namespace"] == "WWHD/test/wwhd-qdrant-host"
    )
    assert any(c.startswith("agent-ctl -a fetch-config") for c in made)
    assert {p.name for p in (tmp_path / "mnt").iterdir()} == {"storage", "snapshots"}
    assert not any(c.startswith("shutdown") for c in made)
    # The cluster is joined last: after the mount and the agent.
    order = [c.split()[0] for c in made]
    assert order.index("mount") < order.index("agent-ctl")


def test_boot_never_formats_a_volume_that_holds_a_file_system(tmp_path: Path) -> None:
    done, state = run_boot(tmp_path, ["available us-west-2a None"], blkid_exit=0)
    assert done.returncode == 0, done.stderr
    assert not any(c.startswith("mkfs") for c in calls(state))
    assert "ECS_CLUSTER" in (state / "ecs.config").read_text()


def test_boot_waits_while_the_old_instance_holds_the_volume(tmp_path: Path) -> None:
    states = ["in-use us-west-2a i-old", "in-use us-west-2a i-old", "available us-west-2a None"]
    done, state = run_boot(tmp_path, states, blkid_exit=0)
    assert done.returncode == 0, done.stderr
    made = calls(state)
    attaches = [i for i, c in enumerate(made) if c.startswith("aws ec2 attach-volume")]
    described = [i for i, c in enumerate(made) if c.startswith("aws ec2 describe-volumes")]
    assert len(attaches) == 1 and len([i for i in described if i < attaches[0]]) == 3
    assert not any(c.startswith("shutdown") for c in made)


@pytest.mark.parametrize(
    ("volume_states", "blkid_exit", "attach_timeout", "reason"),
    [
        (["available us-west-2b None"], 2, 600, "is in us-west-2b, this instance in us-west-2a"),
        # No time to wait: a volume still held gives up at the first look.
        (["in-use us-west-2a i-old"], 2, 0, "still in-use (held by i-old)"),
        (["available us-west-2a None"], 4, 600, "not formatting it"),
    ],
)
def test_boot_gives_up_without_joining(
    tmp_path: Path, volume_states: list[str], blkid_exit: int, attach_timeout: int, reason: str
) -> None:
    done, state = run_boot(tmp_path, volume_states, blkid_exit, attach_timeout)
    assert done.returncode != 0
    assert reason in done.stdout + done.stderr
    made = calls(state)
    assert any(c.startswith("shutdown -h now") for c in made)
    assert not any(c.startswith("mkfs") for c in made)
    assert (state / "ecs.config").read_text() == ""


def test_registrations_name_this_host(mocks: RecordingMonitor) -> None:
    build(mocks)
    names = [r.name for r in mocks.registrations if isinstance(r, Registration) and r.custom]
    assert all(n.startswith("wwhd-qdrant-host") for n in names), names
