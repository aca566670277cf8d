"""The whole program, per stack file: it builds, and holds the stack-wide rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, RunStack
from tests.test_monitoring import assert_log_groups_retained_and_encrypted


@pytest.fixture(params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


def test_stack_builds_and_exports(run_stack: RunStack, stack: str) -> None:
    run = run_stack(stack)
    out = run.outputs
    assert out["vpcId"].startswith("vpc-")
    assert len(out["privateSubnetIds"]) == 2
    assert out["stackKeyArn"].startswith("arn:aws:kms:us-west-2:")
    assert out["fileSystemId"].startswith("fs-")
    assert out["dashboardUrl"].endswith(f"#dashboards:name=wwhd-{stack}")
    assert ".dkr.ecr.us-west-2.amazonaws.com/" in out["ecrRepositoryUrl"]
    assert out["qdrantLogGroupName"] == f"/ecs/wwhd-qdrant-{stack}"
    # The restore runbook passes this role to start-restore-job: it must be the one Backup uses.
    selection = run.monitor.one("aws:backup/selection:Selection", "wwhd-backup-efs")
    assert out["backupRoleArn"] == selection.inputs["iamRoleArn"]
    assert ":role/" in out["backupRoleArn"]
    if stack == "prod":
        assert out["serviceUrl"] == "https://api.wwhd.ai"
        assert out["qdrantUrl"] == "http://qdrant.prod.wwhd.local:6333"
        assert out["databaseAddress"].endswith(".rds.amazonaws.com")
        host_selection = run.monitor.one("aws:backup/selection:Selection", "wwhd-qdrant-host-backup-ebs")
        assert out["qdrantHostBackupRoleArn"] == host_selection.inputs["iamRoleArn"]
        assert out["qdrantVolumeId"].startswith("vol-") and out["qdrantHostGroupName"]
    else:
        assert out["serviceUrl"].startswith("http://") and out["qdrantUrl"] == "http://localhost:6333"
        assert out["databaseAddress"] is None and out["qdrantServiceName"] is None


def test_every_log_group_expires_and_is_encrypted(run_stack: RunStack, stack: str) -> None:
    run = run_stack(stack)
    assert len(run.monitor.of_type("aws:cloudwatch/logGroup:LogGroup")) >= 2
    assert_log_groups_retained_and_encrypted(run.registrations)


def test_postgres_with_external_qdrant_keeps_nothing_on_efs(run_stack: RunStack) -> None:
    run = run_stack(
        "prod",
        qdrant={"placement": "external", "url": "https://qdrant.example.cloud:6333"},
        storage={"transitionToIaDays": 30, "backupRetentionDays": 30, "protect": True},
    )
    assert run.monitor.of_type("aws:efs/fileSystem:FileSystem") == []
    assert [s.name for s in run.monitor.of_type("aws:ecs/service:Service")] == ["wwhd-api"]
    assert run.outputs["qdrantUrl"] == "https://qdrant.example.cloud:6333"
    assert run.outputs["qdrantLogGroupName"] is None
    # No file system, so no EFS alarm or widget with an empty FileSystemId dimension.
    alarms = run.monitor.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarms and not [a.name for a in alarms if "efs" in a.name]
    assert all(a.inputs.get("namespace") != "AWS/EFS" for a in alarms)
    dashboard = run.monitor.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"]
    assert "AWS/EFS" not in dashboard and "FileSystemId" not in dashboard
    # ...while the database alarms that replace them are there.
    assert any(a.inputs.get("namespace") == "AWS/RDS" for a in alarms)


def test_every_resource_belongs_to_a_component(run_stack: RunStack, stack: str) -> None:
    """Only the provider and the components sit at the top; everything else is a child."""
    run = run_stack(stack)
    stack_urn = next(r.urn for r in run.registrations if r.type == "pulumi:pulumi:Stack")
    top = {r.type for r in run.registrations if r.parent == stack_urn}
    assert all(t.startswith("wwhd:index:") or t == "pulumi:providers:aws" for t in top), top


def test_every_aws_resource_uses_the_tagging_provider(run_stack: RunStack, stack: str) -> None:
    run = run_stack(stack)
    providers = run.monitor.of_type("pulumi:providers:aws")
    for provider in providers:
        # Provider inputs reach the engine as strings: nested objects are JSON text.
        tags = json.loads(provider.inputs["defaultTags"])["tags"]
        assert tags["Environment"] == stack and tags["Project"] == "wwhd" and tags["ManagedBy"] == "pulumi"
        assert tags["CostCenter"] == f"wwhd-{stack}"
    # The backup copy region (prod) has a provider in each component that copies: the data
    # volume's and the Qdrant host's.
    assert len(providers) == (3 if stack == "prod" else 1)
    urns = tuple(p.urn for p in providers)
    for r in run.registrations:
        if r.custom and r.type.startswith("aws:"):
            assert r.provider.startswith(urns), f"{r.type} {r.name} uses {r.provider}"


def test_prod_differs_from_dev(run_stack: RunStack) -> None:
    dev, prod = run_stack("dev"), run_stack("prod")
    assert prod.monitor.one("awsx:ec2:Vpc").inputs["natGateways"] == {"strategy": "Single"}
    assert dev.monitor.of_type("aws:ec2/flowLog:FlowLog") == []
    assert len(prod.monitor.of_type("aws:ec2/flowLog:FlowLog")) == 1
    assert not dev.monitor.one("aws:kms/key:Key").protect
    assert prod.monitor.one("aws:kms/key:Key").protect
    # Qdrant beside the API on EFS in dev; on its own instance and EBS volume in prod.
    assert dev.monitor.of_type("aws:ebs/volume:Volume") == []
    assert prod.monitor.one("aws:ebs/volume:Volume").inputs["encrypted"] is True


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_services_wait_for_the_mount_targets(run_stack: RunStack, stack: str) -> None:
    """A task that starts before its mount target exists fails its first deploy."""
    run = run_stack(stack)
    mount_targets = {r.urn for r in run.monitor.of_type("aws:efs/mountTarget:MountTarget")}
    assert mount_targets
    task_defs = {r.outputs["arn"]: r for r in run.monitor.of_type("aws:ecs/taskDefinition:TaskDefinition")}
    mounting = 0
    for svc in run.monitor.of_type("aws:ecs/service:Service"):
        volumes = task_defs[svc.inputs["taskDefinition"]].inputs.get("volumes") or []
        if any("efsVolumeConfiguration" in v for v in volumes):
            mounting += 1
            assert mount_targets <= set(svc.dependencies), svc.name
    # dev's API mounts EFS; prod keeps its (retained) file system unmounted.
    assert mounting == (1 if stack == "dev" else 0)


def test_many_services_on_one_load_balancer_pass_the_pack(tmp_path: Path) -> None:
    """The API, the Qdrant singleton and two extra services -- one routed by path, one by host --
    on one load balancer: the offline preview, with the pack as the engine runs it, finds no
    mandatory violation."""
    for item in ("__main__.py", "workloads.py", "stack_config.py", "components", "Pulumi.yaml"):
        (tmp_path / item).symlink_to(ROOT / item)
    doc = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    image = "123456789012.dkr.ecr.us-west-2.amazonaws.com/wwhd/prod/{}:v1.0.0"
    doc["config"]["wwhd:services"] = [
        {
            "name": "admin", "image": image.format("admin"), "cpu": 256, "memory": 512, "port": 8080,
            "paths": ["/admin", "/admin/*"], "priority": 10, "desiredCount": 1, "minCount": 1, "maxCount": 2,
        },
        {
            "name": "docs", "image": image.format("docs"), "cpu": 256, "memory": 512, "port": 3000,
            "host": "docs.wwhd.ai", "priority": 20, "healthCheckPath": "/",
        },
    ]  # fmt: skip
    (tmp_path / "Pulumi.many.yaml").write_text(yaml.safe_dump(doc))
    # Two more services cost more than prod's budget: this stack gets its own ceiling, the rest of
    # prod's policy configuration as it is.
    config = json.loads((ROOT / "policies" / "config" / "prod.json").read_text())
    config["cost-ceiling"] |= {"maxMonthlyUsd": 260, "maxPeakMonthlyUsd": 500}
    (tmp_path / "many.json").write_text(json.dumps(config))
    proc = subprocess.run(
        [sys.executable, "-m", "tools.preview", "--cwd", str(tmp_path), "--stack", "many", "--policy-pack",
         "policies", "--policy-pack-config", str(tmp_path / "many.json"), "--json"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    result = json.loads(proc.stdout)
    assert not [v for v in result["violations"] if v["enforcementLevel"] == "mandatory"]
    services = {r["name"] for r in result["resources"] if r["type"] == "aws:ecs/service:Service"}
    assert services == {"wwhd-api", "wwhd-qdrant", "wwhd-svc-admin", "wwhd-svc-docs"}
    rules = [r["inputs"] for r in result["resources"] if r["type"] == "aws:lb/listenerRule:ListenerRule"]
    assert sorted(json.dumps(r["conditions"]) for r in rules) == sorted(
        [
            json.dumps([{"pathPattern": {"values": ["/admin", "/admin/*"]}}]),
            json.dumps([{"hostHeader": {"values": ["docs.wwhd.ai"]}}]),
        ]
    )
    # One load balancer, one HTTPS listener: the rules hang off it.
    (lb,) = [r for r in result["resources"] if r["type"] == "aws:lb/loadBalancer:LoadBalancer"]
    https = [
        r
        for r in result["resources"]
        if r["type"] == "aws:lb/listener:Listener" and r["inputs"]["port"] == 443
    ]
    assert len(https) == 1 and lb
