"""The pack as the engine runs it: `python -u -m pulumi.policy <engine> .` in policies/, spoken to
over the Analyzer gRPC interface (GetAnalyzerInfo, Configure, Analyze, AnalyzeStack).

The Python policy host never dials the engine address (it only configures the runtime from the
PULUMI_* environment), so a closed local port stands in for the engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2 as pb
from pulumi.runtime.proto import analyzer_pb2_grpc

from .conftest import PACK_DIR, UNKNOWN, urn

# The brief's list: every policy with its default level.
EXPECTED = {
    "efs-encrypted": "mandatory",
    "ecs-efs-transit-encryption": "mandatory",
    "log-group-encrypted": "mandatory",
    "log-group-retention": "mandatory",
    "sns-topic-encrypted": "mandatory",
    "s3-bucket-encrypted-private": "mandatory",
    "rds-encrypted": "mandatory",
    "kms-key-rotation": "mandatory",
    "secret-encrypted-with-cmk": "advisory",
    "ecr-repository-hardened": "mandatory",
    "alb-https-only": "mandatory",
    "lb-tls13-policy": "advisory",
    "ecs-service-private-networking": "mandatory",
    "security-group-no-public-ingress": "mandatory",
    "rds-not-public": "mandatory",
    "efs-mount-target-private": "mandatory",
    "vpc-flow-logs-enabled": "advisory",
    "alb-drop-invalid-headers": "advisory",
    "single-writer-storage": "mandatory",
    "efs-backup-enabled": "mandatory",
    "rds-backup-retention": "mandatory",
    "stateful-resources-protected": "advisory",
    "qdrant-on-network-storage": "advisory",
    "fargate-task-size-valid": "mandatory",
    "ecs-deployment-circuit-breaker": "mandatory",
    "container-health-check": "advisory",
    "image-pinned": "mandatory",
    "alarm-has-actions": "advisory",
    "target-group-health-check": "advisory",
    "iam-no-wildcard-actions": "mandatory",
    "iam-no-admin-policies": "mandatory",
    "iam-wildcard-resource-justified": "advisory",
    "ecs-secrets-not-in-environment": "mandatory",
    "ecs-task-role-separate": "advisory",
    "ecs-no-privileged-containers": "mandatory",
    "ecs-read-only-root-filesystem": "advisory",
    "lb-access-logs": "mandatory",
    "s3-bucket-access-logging": "advisory",
    "rds-performance-insights": "advisory",
    "iam-no-privilege-escalation": "mandatory",
    "ebs-encrypted": "mandatory",
    "ec2-imdsv2-required": "mandatory",
    "ec2-no-public-ip": "mandatory",
    "ec2-private-subnets": "mandatory",
    "ebs-volume-backed-up": "mandatory",
    "container-memory-fits": "mandatory",
    "image-from-private-registry": "advisory",
    "rotating-secret-readers-refreshed": "mandatory",
    "cost-ceiling": "mandatory",
    "cost-increase-ceiling": "advisory",
}
LEVELS = {
    "advisory": pb.ADVISORY,
    "mandatory": pb.MANDATORY,
    "disabled": pb.DISABLED,
    "remediate": pb.REMEDIATE,
}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    env = dict(os.environ)
    env.update(
        PULUMI_CONFIG=json.dumps({"aws:region": "us-west-2", "wwhd:environment": "prod"}),
        PULUMI_PROJECT="wwhd",
        PULUMI_STACK="prod",
        PULUMI_DRY_RUN="true",
    )
    env.pop("PYTHONPATH", None)  # the pack must stand on its own directory
    # Leaving the block closes the pipes and reaps the host; the host keeps no state, so
    # killing it is a clean end.
    with subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=PACK_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        try:
            port_line: list[bytes] = []
            reader = threading.Thread(
                target=lambda: port_line.append(proc.stdout.readline()) if proc.stdout else None
            )
            reader.start()
            reader.join(timeout=30)
            first = port_line[0].decode().strip() if port_line else ""
            if not first.isdigit():
                proc.kill()
                _, err = proc.communicate(timeout=5)
                pytest.fail(f"pack did not print its port first (got {first!r}); stderr:\n{err.decode()}")
            channel = grpc.insecure_channel(f"127.0.0.1:{first}")
            grpc.channel_ready_future(channel).result(timeout=10)
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
            channel.close()
        finally:
            proc.kill()


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


def configure_from_file(stub: analyzer_pb2_grpc.AnalyzerStub, path: str) -> None:
    """What the CLI does with --policy-pack-config: "all" sets every policy's level, a policy's
    own entry overrides it; the rest of an entry is the policy's properties."""
    data = json.loads((PACK_DIR / path).read_text())
    all_level = data.get("all")
    request = pb.ConfigureAnalyzerRequest()
    for name, default in EXPECTED.items():
        entry = data.get(name, {})
        entry = {"enforcementLevel": entry} if isinstance(entry, str) else dict(entry)
        level = entry.pop("enforcementLevel", None) or all_level or default
        request.policyConfig[name].CopyFrom(
            pb.PolicyConfig(enforcementLevel=LEVELS[level], properties=struct(entry))
        )
    stub.Configure(request)


def analyze(stub, typ: str, name: str, props: dict[str, Any]) -> list[pb.AnalyzeDiagnostic]:
    request = pb.AnalyzeRequest(type=typ, name=name, urn=urn(typ, name), properties=struct(props))
    return list(stub.Analyze(request).diagnostics)


def test_analyzer_info_lists_every_policy_with_its_level(analyzer) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "wwhd-policies"
    got = {p.name: LEVEL_NAMES[p.enforcementLevel] for p in info.policies}
    assert got == EXPECTED
    schemas = {p.name: p.configSchema for p in info.policies}
    assert "maxMonthlyUsd" in schemas["cost-ceiling"].properties
    assert all(p.remediation_steps and p.description for p in info.policies)


def test_configure_with_prod_file_then_analyze_a_resource(analyzer) -> None:
    configure_from_file(analyzer, "config/prod.json")
    diags = analyze(analyzer, "aws:efs/fileSystem:FileSystem", "data", {"encrypted": True})
    by_policy = {d.policyName: d for d in diags}
    assert by_policy["efs-encrypted"].enforcementLevel == pb.MANDATORY
    # prod.json makes stateful-resources-protected mandatory for the "prod" stack (PULUMI_STACK).
    assert by_policy["stateful-resources-protected"].enforcementLevel == pb.MANDATORY
    # An unknown value during preview: undecided at the policy's level (mandatory in prod), never a pass.
    diags = analyze(
        analyzer,
        "aws:rds/instance:Instance",
        "db",
        {"publiclyAccessible": UNKNOWN, "deletionProtection": True},
    )
    rds = [d for d in diags if d.policyName == "rds-not-public"]
    assert rds and rds[0].enforcementLevel == pb.MANDATORY
    assert rds[0].message.splitlines()[-1].startswith("undecided [publiclyAccessible]: Instance 'db': ")


def test_analyze_stack_reports_stack_level_violations(analyzer) -> None:
    configure_from_file(analyzer, "config/prod.json")
    td_arn = "arn:aws:ecs:us-west-2:123456789012:task-definition/wwhd-qdrant:1"
    containers = [
        {
            "name": "qdrant",
            "image": "qdrant/qdrant:v1.16.2",
            "mountPoints": [{"sourceVolume": "data", "containerPath": "/qdrant/storage"}],
        }
    ]
    resources = [
        (
            "aws:ecs/taskDefinition:TaskDefinition",
            "qdrant",
            {
                "arn": td_arn,
                "cpu": "512",
                "memory": "1024",
                "requiresCompatibilities": ["FARGATE"],
                "containerDefinitions": json.dumps(containers),
                "volumes": [{"name": "data", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}],
            },
        ),
        (
            "aws:ecs/service:Service",
            "qdrant",
            {
                "name": "qdrant",
                "taskDefinition": td_arn,
                "desiredCount": 2,
                "deploymentMaximumPercent": 100,
                "networkConfiguration": {"subnets": ["subnet-priv"], "assignPublicIp": False},
            },
        ),
        (
            "awsx:ec2:Vpc",
            "vpc",
            {"vpcId": "vpc-1", "privateSubnetIds": ["subnet-priv"], "publicSubnetIds": []},
        ),
    ]
    request = pb.AnalyzeStackRequest(
        resources=[
            pb.AnalyzerResource(type=t, name=n, urn=urn(t, n), properties=struct(p)) for t, n, p in resources
        ]
    )
    diags = list(analyzer.AnalyzeStack(request).diagnostics)
    writer = [d for d in diags if d.policyName == "single-writer-storage"]
    assert writer and writer[0].enforcementLevel == pb.MANDATORY
    assert writer[0].urn == urn("aws:ecs/service:Service", "qdrant") and "desiredCount=2" in writer[0].message
    assert not [d for d in diags if d.policyName == "ecs-service-private-networking"]
    # prod.json makes vpc flow logs mandatory; dev.json disables them.
    assert [d.enforcementLevel for d in diags if d.policyName == "vpc-flow-logs-enabled"] == [pb.MANDATORY]
    configure_from_file(analyzer, "config/dev.json")
    diags = list(analyzer.AnalyzeStack(request).diagnostics)
    assert not [d for d in diags if d.policyName == "vpc-flow-logs-enabled"]
