"""WwhdService: what each topology runs, what reaches the containers, who may do what, how it scales."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from components import containers as c
from components.load_balancer import SSL_POLICY
from components.roles import TaskRoles
from components.service import (
    WwhdService,
    WwhdServiceArgs,
    capacity_provider_strategy,
    physical_names,
)
from stack_config import StackConfig, parse_stack_config
from tools.mocks import ACCOUNT_ID, RecordingMocks, RecordingMonitor, Registration, resolve, settle

REGION = "us-west-2"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/test"
FS_ID = "fs-0123456789abcdef0"
FS_ARN = f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT_ID}:file-system/{FS_ID}"
API_AP = "fsap-0aaaaaaaaaaaaaaa1"
QDRANT_AP = "fsap-0bbbbbbbbbbbbbbb2"
API_AP_ARN = f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT_ID}:access-point/{API_AP}"
QDRANT_AP_ARN = f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT_ID}:access-point/{QDRANT_AP}"
DB_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:rds!db-0123-AbCdEf"
CERT = f"arn:aws:acm:{REGION}:{ACCOUNT_ID}:certificate/0f0e0d0c-1111-2222-3333-444455556666"
ELB_ACCOUNT = "797873946194"
QDRANT_KEY = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:qdrant-cloud-AbCdEf"

TASK_DEF = "aws:ecs/taskDefinition:TaskDefinition"
ECS_SERVICE = "aws:ecs/service:Service"
LISTENER = "aws:lb/listener:Listener"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY = "aws:appautoscaling/policy:Policy"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_CREDENTIALS = {"OPENAI_API_KEY", "JWT_SECRET", "DB_USER", "DB_PASSWORD", "QDRANT_API_KEY"}


@pytest.fixture
def aws_mocks(mocks: RecordingMonitor) -> Iterator[RecordingMonitor]:
    """The shared mocks plus the ELB log-delivery account invoke the access-log bucket uses
    (tools/mocks.py does not answer it yet)."""
    assert isinstance(mocks.mocks, RecordingMocks)
    mocks.mocks.invokes["aws:elb/getServiceAccount:getServiceAccount"] = lambda args: {
        "id": ELB_ACCOUNT,
        "arn": f"arn:aws:iam::{ELB_ACCOUNT}:root",
        "region": args.get("region") or REGION,
    }
    yield mocks


def config(environment: str, **sections: Any) -> StackConfig:
    raw: dict[str, Any] = {"environment": environment, "images": {"apiTag": "v1.4.2"}}
    if environment == "dev":
        raw["loadBalancer"] = {"allowPlainHttp": True}
    else:
        raw["loadBalancer"] = {"certificateArn": CERT}
    if environment == "prod":
        raw["monitoring"] = {"alarmEmails": ["oncall@wwhd.ai"]}
    for key, value in sections.items():
        raw[key] = raw.get(key, {}) | value
    return parse_stack_config(raw, REGION)


def dev(**sections: Any) -> StackConfig:
    return config("dev", **sections)


def prod(**sections: Any) -> StackConfig:
    return config("prod", **sections)


def build(monitor: RecordingMonitor, cfg: StackConfig, **overrides: Any) -> WwhdService:
    placement = cfg.qdrant.placement
    postgres = cfg.database.engine == "postgres"
    roles = TaskRoles(
        api_task_role_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/api-task",
        api_task_role_name="api-task",
        execution_role_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/execution",
        execution_role_name="execution",
        **(
            {
                "qdrant_task_role_arn": f"arn:aws:iam::{ACCOUNT_ID}:role/qdrant-task",
                "qdrant_task_role_name": "qdrant-task",
                "qdrant_execution_role_arn": f"arn:aws:iam::{ACCOUNT_ID}:role/qdrant-execution",
                "qdrant_execution_role_name": "qdrant-execution",
            }
            if placement == "service"
            else {}
        ),
    )
    kwargs: dict[str, Any] = {
        "environment": cfg.environment,
        "region": cfg.region,
        "service": cfg.service,
        "images": cfg.images,
        "qdrant": cfg.qdrant,
        "load_balancer": cfg.load_balancer,
        "monitoring": cfg.monitoring,
        "database_engine": cfg.database.engine,
        "deployment_percents": cfg.deployment_percents,
        "key_arn": KEY,
        "vpc_id": "vpc-0123456789abcdef0",
        "public_subnet_ids": ["subnet-0000000000000000a", "subnet-0000000000000000b"],
        "private_subnet_ids": ["subnet-1000000000000000a", "subnet-1000000000000000b"],
        "lb_security_group_id": "sg-00000000000000001",
        "api_security_group_id": "sg-00000000000000002",
        "qdrant_security_group_id": "sg-00000000000000003" if placement == "service" else None,
        "roles": roles,
        "file_system_id": FS_ID,
        "file_system_arn": FS_ARN,
        "api_access_point_id": None if postgres else API_AP,
        "api_access_point_arn": None if postgres else API_AP_ARN,
        "qdrant_access_point_id": None if placement == "external" else QDRANT_AP,
        "qdrant_access_point_arn": None if placement == "external" else QDRANT_AP_ARN,
        "protect": cfg.storage.protect,
    }
    if postgres:
        kwargs |= {
            "database_address": "wwhd.abc123.us-west-2.rds.amazonaws.com",
            "database_port": 5432,
            "database_name": "wwhd",
            "database_secret_arn": DB_SECRET,
        }
    service = WwhdService("t", WwhdServiceArgs(**(kwargs | overrides)))
    settle()
    return service


def containers(task_def: Registration) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in json.loads(task_def.inputs["containerDefinitions"])}


def api_task(monitor: RecordingMonitor) -> Registration:
    return monitor.one(TASK_DEF, "t-api")


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def secrets(container: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["valueFrom"] for s in container.get("secrets", [])}


def secret_arn(monitor: RecordingMonitor, key: str) -> str:
    return monitor.one(SECRET, f"t-{key}").outputs["arn"]


def policy_doc(monitor: RecordingMonitor, name: str) -> dict[str, Any]:
    return json.loads(monitor.one(ROLE_POLICY, name).inputs["policy"])


def grants(doc: dict[str, Any]) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Sid -> (actions, resources) of each Allow statement."""
    out = {}
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow"
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        out[st["Sid"]] = (frozenset(actions), frozenset(resources))
    return out


TOPOLOGIES = {
    "dev-sidecar-sqlite": lambda: dev(),
    "dev-sidecar-tracing-exec": lambda: dev(monitoring={"tracing": True}, service={"ecsExec": True}),
    "prod-service-postgres": lambda: prod(),
    "prod-external-postgres": lambda: prod(
        qdrant={"placement": "external", "url": "https://q.cloud.qdrant.io"}
    ),
    "staging-service-sqlite": lambda: config("staging", qdrant={"placement": "service"}),
}


# --- what reaches the containers ---------------------------------------------------------------


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_credentials_only_through_secrets(aws_mocks: RecordingMonitor, topology: str) -> None:
    build(aws_mocks, TOPOLOGIES[topology]())
    for task in aws_mocks.of_type(TASK_DEF):
        for container in containers(task).values():
            assert not SECRET_CREDENTIALS & set(env(container)), container["name"]
            for value in env(container).values():
                assert "@" not in value.split("//", 1)[-1].split("/", 1)[0], f"credentials in {value}"
    api = containers(api_task(aws_mocks))[c.API_CONTAINER]
    injected = secrets(api)
    assert injected["OPENAI_API_KEY"] == secret_arn(aws_mocks, "openai-api-key")
    assert injected["JWT_SECRET"] == secret_arn(aws_mocks, "jwt-secret")


def test_postgres_credentials_from_the_rds_secret(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, prod())
    api = containers(api_task(aws_mocks))[c.API_CONTAINER]
    assert secrets(api)["DB_USER"] == f"{DB_SECRET}:username::"
    assert secrets(api)["DB_PASSWORD"] == f"{DB_SECRET}:password::"
    assert (
        env(api)["DATABASE_URL"]
        == "postgresql://wwhd.abc123.us-west-2.rds.amazonaws.com:5432/wwhd?sslmode=require"
    )
    assert not any(m["sourceVolume"] == c.DATA_VOLUME for m in api["mountPoints"])


def test_sqlite_on_the_api_access_point(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, dev())
    task = api_task(aws_mocks)
    api = containers(task)[c.API_CONTAINER]
    assert env(api)["DATABASE_URL"] == "sqlite:////data/wwhd.db"
    assert {"sourceVolume": c.DATA_VOLUME, "containerPath": "/data", "readOnly": False} in api["mountPoints"]
    volumes = {v["name"]: v for v in task.inputs["volumes"]}
    efs = volumes[c.DATA_VOLUME]["efsVolumeConfiguration"]
    assert efs["fileSystemId"] == FS_ID and efs["rootDirectory"] == "/"
    assert efs["transitEncryption"] == "ENABLED"
    assert efs["authorizationConfig"] == {"accessPointId": API_AP, "iam": "ENABLED"}


def test_app_environment_from_config(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, dev(service={"allowOrigins": ["https://a.example", "http://localhost:3000"]}))
    api = containers(api_task(aws_mocks))[c.API_CONTAINER]
    e = env(api)
    assert e["APP_ENV"] == "development" and e["LOG_LEVEL"] == "DEBUG"
    assert e["MODEL_CHAT"] == "gpt-4o-mini" and e["MODEL_EMBED"] == "text-embedding-3-small"
    assert e["JWT_ISSUER"] == "wwhd" and e["JWT_AUDIENCE"] == "wwhd-users"
    assert e["ALLOW_ORIGINS"] == "https://a.example,http://localhost:3000"
    assert e["DOCUMENTS_BUCKET"] == aws_mocks.one("aws:s3/bucket:Bucket", "t-documents").outputs["bucket"]
    repo = aws_mocks.one("aws:ecr/repository:Repository").outputs["repositoryUrl"]
    assert api["image"] == f"{repo}:v1.4.2"
    assert api["portMappings"] == [{"containerPort": 8000, "protocol": "tcp", "name": "http"}]


def test_api_image_by_digest(aws_mocks: RecordingMonitor) -> None:
    digest = "sha256:" + "ab" * 32
    build(aws_mocks, dev(images={"apiTag": digest}))
    repo = aws_mocks.one("aws:ecr/repository:Repository").outputs["repositoryUrl"]
    assert containers(api_task(aws_mocks))[c.API_CONTAINER]["image"] == f"{repo}@{digest}"


def test_containers_are_hardened(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, dev(monitoring={"tracing": True}))
    task = api_task(aws_mocks)
    defs = containers(task)
    for d in defs.values():
        assert d.get("privileged") is False, d["name"]
        assert d["logConfiguration"]["logDriver"] == "awslogs"
    api = defs[c.API_CONTAINER]
    assert api["essential"] is True and api["readonlyRootFilesystem"] is True
    # A read-only root needs a writable /tmp: a task volume (Fargate has no tmpfs).
    assert {"sourceVolume": c.TMP_VOLUME, "containerPath": "/tmp", "readOnly": False} in api["mountPoints"]
    assert {"name": c.TMP_VOLUME} in task.inputs["volumes"]
    assert 0 < api["stopTimeout"] <= 120  # Fargate's ceiling
    assert api["healthCheck"]["command"][:2] == ["CMD", "python"]  # python:3.11-slim has no curl
    assert "http://localhost:8000/health" in api["healthCheck"]["command"][-1]


def test_ecs_exec_gets_the_writable_root_its_agent_needs(aws_mocks: RecordingMonitor) -> None:
    """The SSM agent ECS Exec injects writes under /managed-agents and /var/lib/amazon/ssm;
    AWS does not support ECS Exec with a read-only root, so the switch trades one for the other."""
    build(aws_mocks, dev(service={"ecsExec": True}))
    api = containers(api_task(aws_mocks))[c.API_CONTAINER]
    assert api["readonlyRootFilesystem"] is False
    assert api["linuxParameters"]["initProcessEnabled"] is True


def test_qdrant_health_check_runs_in_the_qdrant_image(aws_mocks: RecordingMonitor) -> None:
    """The image (debian:12-slim) has bash but no curl/wget/nc, and /bin/sh (dash) has no /dev/tcp."""
    build(aws_mocks, dev())
    qdrant = containers(api_task(aws_mocks))[c.QDRANT_CONTAINER]
    command = qdrant["healthCheck"]["command"]
    assert command[:3] == ["CMD", "bash", "-c"]
    assert not {"curl", "wget", "nc"} & set(command[-1].replace("|", " ").split())
    assert "/dev/tcp/127.0.0.1/6333" in command[-1] and "/readyz" in command[-1]


# --- valid for ECS ----------------------------------------------------------------------------


def _register_params(task: Registration) -> dict[str, Any]:
    """The RegisterTaskDefinition request the provider would send, from the recorded inputs
    (camelCase already, as in the API)."""
    i = task.inputs
    params: dict[str, Any] = {
        "family": i["family"],
        "containerDefinitions": json.loads(i["containerDefinitions"]),
        "cpu": i["cpu"],
        "memory": i["memory"],
        "networkMode": i["networkMode"],
        "requiresCompatibilities": i["requiresCompatibilities"],
        "runtimePlatform": i["runtimePlatform"],
        "executionRoleArn": i["executionRoleArn"],
        "taskRoleArn": i["taskRoleArn"],
    }
    if i.get("volumes"):
        params["volumes"] = i["volumes"]
    return params


VALIDATION_CASES = [
    (topology, arch) for topology in ("dev-sidecar-tracing-exec", "prod-service-postgres", "prod-external-postgres")
    for arch in ("x86_64", "arm64")
] + [("dev-sidecar-sqlite", "x86_64"), ("staging-service-sqlite", "arm64")]  # fmt: skip


@pytest.mark.parametrize(("topology", "arch"), VALIDATION_CASES)
def test_task_definitions_pass_the_ecs_api_model(
    aws_mocks: RecordingMonitor, topology: str, arch: str
) -> None:
    cfg = TOPOLOGIES[topology]()
    cfg = cfg.model_copy(update={"service": cfg.service.model_copy(update={"cpu_architecture": arch})})
    build(aws_mocks, cfg)
    shape = (
        botocore.session.get_session()
        .get_service_model("ecs")
        .operation_model("RegisterTaskDefinition")
        .input_shape
    )
    tasks = aws_mocks.of_type(TASK_DEF)
    assert len(tasks) == (2 if cfg.qdrant.placement == "service" else 1)
    for task in tasks:
        params = _register_params(task)
        report = ParamValidator().validate(params, shape)
        assert not report.has_errors(), report.generate_report()
        assert params["runtimePlatform"] == {
            "cpuArchitecture": arch.upper(),
            "operatingSystemFamily": "LINUX",
        }
        # Container sizes add up to no more than the task's, and every mount has a volume.
        defs = params["containerDefinitions"]
        assert c.total(defs, "cpu") <= int(params["cpu"])
        assert c.total(defs, "memory") <= int(params["memory"])
        volumes = {v["name"] for v in params.get("volumes", [])}
        for d in defs:
            assert {m["sourceVolume"] for m in d.get("mountPoints", [])} <= volumes
            for dep in d.get("dependsOn", []):
                assert dep["containerName"] in {x["name"] for x in defs}


def test_botocore_validation_catches_a_bad_definition() -> None:
    """The check above can fail: a float port or an unknown key is refused."""
    shape = (
        botocore.session.get_session()
        .get_service_model("ecs")
        .operation_model("RegisterTaskDefinition")
        .input_shape
    )
    bad = {
        "family": "f",
        "containerDefinitions": [{"name": "a", "portMappings": [{"containerPort": 80.0}], "bogus": 1}],
    }
    assert ParamValidator().validate(bad, shape).has_errors()


@pytest.mark.parametrize(("cpu", "memory"), [(256, 512), (512, 1024), (2048, 4096), (16384, 122880)])
@pytest.mark.parametrize("sidecar", [True, False])
@pytest.mark.parametrize("tracing", [True, False])
def test_container_shares_fill_the_task(cpu: int, memory: int, sidecar: bool, tracing: bool) -> None:
    shares = c.split_task(cpu, memory, qdrant_sidecar=sidecar, tracing=tracing)
    assert sum(s.cpu for s in shares.values()) == cpu
    assert sum(s.memory for s in shares.values()) == memory
    assert all(s.cpu > 0 and s.memory >= 128 for s in shares.values())


# --- topologies -------------------------------------------------------------------------------


def test_sidecar_topology(aws_mocks: RecordingMonitor) -> None:
    service = build(aws_mocks, dev())
    defs = containers(api_task(aws_mocks))
    assert set(defs) == {c.API_CONTAINER, c.QDRANT_CONTAINER}
    api, qdrant = defs[c.API_CONTAINER], defs[c.QDRANT_CONTAINER]
    assert env(api)["QDRANT_URL"] == "http://localhost:6333"
    assert api["dependsOn"] == [{"containerName": "qdrant", "condition": "HEALTHY"}]
    assert qdrant["image"] == "qdrant/qdrant:v1.16.2" and qdrant["essential"] is True
    assert env(qdrant) == {
        "QDRANT__SERVICE__HTTP_PORT": "6333",
        "QDRANT__TELEMETRY_DISABLED": "true",
        "QDRANT__SERVICE__HOST": "127.0.0.1",
    }
    assert qdrant["mountPoints"] == [
        {"sourceVolume": c.QDRANT_VOLUME, "containerPath": "/qdrant/storage", "readOnly": False}
    ]
    volumes = {v["name"]: v for v in api_task(aws_mocks).inputs["volumes"]}
    assert (
        volumes[c.QDRANT_VOLUME]["efsVolumeConfiguration"]["authorizationConfig"]["accessPointId"]
        == QDRANT_AP
    )
    assert qdrant["logConfiguration"]["options"]["awslogs-group"] == resolve(service.qdrant_log_group_name)
    assert len(aws_mocks.of_type(ECS_SERVICE)) == 1
    assert aws_mocks.of_type("aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace") == []
    assert resolve(service.qdrant_service_name) is None


def test_service_topology(aws_mocks: RecordingMonitor) -> None:
    service = build(aws_mocks, prod())
    namespace = aws_mocks.one("aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace")
    assert namespace.inputs["name"] == "test.wwhd.local"
    assert namespace.inputs["vpc"] == "vpc-0123456789abcdef0"
    registry = aws_mocks.one("aws:servicediscovery/service:Service")
    assert registry.inputs["name"] == "qdrant"
    assert registry.inputs["dnsConfig"]["dnsRecords"] == [{"type": "A", "ttl": 10}]
    assert registry.inputs["dnsConfig"]["namespaceId"] == namespace.outputs["id"]

    api = containers(api_task(aws_mocks))[c.API_CONTAINER]
    assert env(api)["QDRANT_URL"] == "http://qdrant.test.wwhd.local:6333"
    assert "dependsOn" not in api

    qdrant_svc = aws_mocks.one(ECS_SERVICE, "t-qdrant")
    i = qdrant_svc.inputs
    assert i["desiredCount"] == 1
    # Never two writers: stop the old task before starting the new one.
    assert (i["deploymentMinimumHealthyPercent"], i["deploymentMaximumPercent"]) == (0, 100)
    assert i["networkConfiguration"]["securityGroups"] == ["sg-00000000000000003"]
    assert i["networkConfiguration"]["assignPublicIp"] is False
    assert i["serviceRegistries"]["registryArn"] == registry.outputs["arn"]
    assert i["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert resolve(service.qdrant_service_name) == qdrant_svc.outputs["name"]

    task = aws_mocks.one(TASK_DEF, "t-qdrant")
    assert (task.inputs["cpu"], task.inputs["memory"]) == ("512", "1024")
    assert task.inputs["taskRoleArn"].endswith("role/qdrant-task")
    assert task.inputs["executionRoleArn"].endswith("role/qdrant-execution")
    qdrant = containers(task)[c.QDRANT_CONTAINER]
    assert "QDRANT__SERVICE__HOST" not in env(qdrant)  # must listen on the task's ENI
    targets = aws_mocks.of_type("aws:appautoscaling/target:Target")
    assert all("t-qdrant" not in t.inputs["resourceId"] for t in targets)


def test_external_topology_creates_the_key_secret(aws_mocks: RecordingMonitor) -> None:
    service = build(aws_mocks, prod(qdrant={"placement": "external", "url": "https://q.cloud.qdrant.io"}))
    api = containers(api_task(aws_mocks))[c.API_CONTAINER]
    assert env(api)["QDRANT_URL"] == "https://q.cloud.qdrant.io"
    key = aws_mocks.one(SECRET, "t-qdrant-api-key")
    assert key.inputs["name"] == "wwhd/test/qdrant-api-key"
    assert secrets(api)["QDRANT_API_KEY"] == key.outputs["arn"]
    # The operator fills it: no version from the stack.
    versions = aws_mocks.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert all(v.inputs["secretId"] != key.outputs["id"] for v in versions)
    assert set(containers(api_task(aws_mocks))) == {c.API_CONTAINER, c.XRAY_CONTAINER}
    assert (
        aws_mocks.of_type("aws:cloudwatch/logGroup:LogGroup")
        and resolve(service.qdrant_log_group_name) is None
    )


def test_external_topology_uses_a_given_key_secret(aws_mocks: RecordingMonitor) -> None:
    build(
        aws_mocks,
        prod(
            qdrant={
                "placement": "external",
                "url": "https://q.cloud.qdrant.io",
                "apiKeySecretArn": QDRANT_KEY,
            }
        ),
    )
    api = containers(api_task(aws_mocks))[c.API_CONTAINER]
    assert secrets(api)["QDRANT_API_KEY"] == QDRANT_KEY
    assert [s.name for s in aws_mocks.of_type(SECRET) if "qdrant" in s.name] == []
    assert QDRANT_KEY in grants(policy_doc(aws_mocks, "t-execution"))["ReadInjectedSecrets"][1]


def test_tracing_adds_the_xray_daemon(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, prod())
    defs = containers(api_task(aws_mocks))
    xray = defs[c.XRAY_CONTAINER]
    assert xray["image"].startswith("public.ecr.aws/xray/aws-xray-daemon:3.")
    assert xray["essential"] is False
    assert xray["portMappings"] == [{"containerPort": 2000, "protocol": "udp"}]
    assert xray["logConfiguration"]["options"]["awslogs-group"] == "/ecs/wwhd-backend-test"
    assert env(defs[c.API_CONTAINER])["AWS_XRAY_DAEMON_ADDRESS"] == "localhost:2000"


def test_no_tracing_no_daemon(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, dev())
    defs = containers(api_task(aws_mocks))
    assert c.XRAY_CONTAINER not in defs
    assert "AWS_XRAY_DAEMON_ADDRESS" not in env(defs[c.API_CONTAINER])


# --- permissions ------------------------------------------------------------------------------


def test_execution_role_reads_exactly_the_injected_secrets(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, prod())
    managed = aws_mocks.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert {(a.inputs["role"], a.inputs["policyArn"]) for a in managed} == {
        ("execution", "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"),
        ("qdrant-execution", "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"),
    }
    assert aws_mocks.one(ROLE_POLICY, "t-execution").inputs["role"] == "execution"
    assert grants(policy_doc(aws_mocks, "t-execution")) == {
        "ReadInjectedSecrets": (
            frozenset({"secretsmanager:GetSecretValue"}),
            frozenset(
                {secret_arn(aws_mocks, "openai-api-key"), secret_arn(aws_mocks, "jwt-secret"), DB_SECRET}
            ),
        ),
        "DecryptWithStackKey": (frozenset({"kms:Decrypt"}), frozenset({KEY})),
    }
    # The Qdrant service's execution role gets the managed policy only: no secret at all.
    assert [p.name for p in aws_mocks.of_type(ROLE_POLICY) if p.inputs["role"] == "qdrant-execution"] == []


@pytest.mark.parametrize(("tracing", "ecs_exec"), [(False, False), (True, True)])
def test_api_task_role_grants(aws_mocks: RecordingMonitor, tracing: bool, ecs_exec: bool) -> None:
    build(aws_mocks, dev(monitoring={"tracing": tracing}, service={"ecsExec": ecs_exec}))
    assert aws_mocks.one(ROLE_POLICY, "t-api-task").inputs["role"] == "api-task"
    doc = policy_doc(aws_mocks, "t-api-task")
    bucket = aws_mocks.one("aws:s3/bucket:Bucket", "t-documents").outputs["arn"]
    perf = aws_mocks.one("aws:cloudwatch/logGroup:LogGroup", "t-performance-logs").outputs["arn"]
    efs = frozenset({"elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"})
    expected = {
        "SqliteAccessPoint": (efs, frozenset({FS_ARN})),
        "QdrantAccessPoint": (efs, frozenset({FS_ARN})),
        "DocumentsObjects": (
            frozenset({"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}),
            frozenset({f"{bucket}/*"}),
        ),
        "DocumentsList": (frozenset({"s3:ListBucket"}), frozenset({bucket})),
        "DocumentsEncryption": (frozenset({"kms:Decrypt", "kms:GenerateDataKey"}), frozenset({KEY})),
        "PerformanceLogs": (
            frozenset({"logs:CreateLogStream", "logs:PutLogEvents"}),
            frozenset({f"{perf}:*"}),
        ),
    }
    if tracing:
        expected["XRayWrite"] = (
            frozenset(
                {
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                    "xray:GetSamplingStatisticSummaries",
                }
            ),
            frozenset({"*"}),
        )
    if ecs_exec:
        expected["EcsExec"] = (
            frozenset(
                {
                    "ssmmessages:CreateControlChannel",
                    "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenControlChannel",
                    "ssmmessages:OpenDataChannel",
                }
            ),
            frozenset({"*"}),
        )
    assert grants(doc) == expected
    conditions = {st["Sid"]: st.get("Condition") for st in doc["Statement"]}
    assert conditions["SqliteAccessPoint"] == {
        "StringEquals": {"elasticfilesystem:AccessPointArn": API_AP_ARN}
    }
    assert conditions["QdrantAccessPoint"] == {
        "StringEquals": {"elasticfilesystem:AccessPointArn": QDRANT_AP_ARN}
    }
    assert aws_mocks.one(ECS_SERVICE, "t-api").inputs["enableExecuteCommand"] is ecs_exec


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_no_wildcard_actions_and_star_resources_only_where_unscoped(
    aws_mocks: RecordingMonitor, topology: str
) -> None:
    build(aws_mocks, TOPOLOGIES[topology]())
    for policy in aws_mocks.of_type(ROLE_POLICY):
        for st in json.loads(policy.inputs["policy"])["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            assert not any("*" in a for a in actions), (policy.name, actions)
            if "*" in resources:
                assert all(a.split(":")[0] in ("xray", "ssmmessages") for a in actions), (
                    policy.name,
                    actions,
                )


def test_qdrant_task_role_mounts_its_access_point_only(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, prod())
    assert aws_mocks.one(ROLE_POLICY, "t-qdrant-task").inputs["role"] == "qdrant-task"
    doc = policy_doc(aws_mocks, "t-qdrant-task")
    assert grants(doc) == {
        "QdrantStorage": (
            frozenset({"elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"}),
            frozenset({FS_ARN}),
        )
    }
    assert doc["Statement"][0]["Condition"] == {
        "StringEquals": {"elasticfilesystem:AccessPointArn": QDRANT_AP_ARN}
    }
    # With Qdrant elsewhere and Postgres, the API task mounts nothing.
    assert not any(sid.endswith("AccessPoint") for sid in grants(policy_doc(aws_mocks, "t-api-task")))


# --- secrets, images, logs, bucket ------------------------------------------------------------


def test_secrets_encrypted_named_and_recoverable(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, dev(), openai_api_key="sk-test")
    names = {s.inputs["name"] for s in aws_mocks.of_type(SECRET)}
    assert names == {"wwhd/test/openai-api-key", "wwhd/test/jwt-secret"}
    for s in aws_mocks.of_type(SECRET):
        assert s.inputs["kmsKeyId"] == KEY
        assert s.inputs["recoveryWindowInDays"] == 7
    versions = {v.name: v for v in aws_mocks.of_type("aws:secretsmanager/secretVersion:SecretVersion")}
    assert set(versions) == {"t-openai-api-key", "t-jwt-secret"}
    random = aws_mocks.one("random:index/randomPassword:RandomPassword")
    assert random.inputs["length"] == 64
    assert random.urn in versions["t-jwt-secret"].dependencies


def test_openai_secret_left_for_the_operator(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, dev(), jwt_secret="given")
    versions = {v.name for v in aws_mocks.of_type("aws:secretsmanager/secretVersion:SecretVersion")}
    assert versions == {"t-jwt-secret"}
    assert aws_mocks.of_type("random:index/randomPassword:RandomPassword") == []


def test_ecr_repository_hardened_with_lifecycle(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, dev())
    repo = aws_mocks.one("aws:ecr/repository:Repository")
    assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
    assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": KEY}]
    lifecycle = aws_mocks.one("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert lifecycle.inputs["repository"] == repo.outputs["name"]
    rules = sorted(json.loads(lifecycle.inputs["policy"])["rules"], key=lambda r: r["rulePriority"])
    assert [r["selection"] for r in rules] == [
        {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30},
        {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 20},
    ]
    assert all(r["action"] == {"type": "expire"} for r in rules)
    # ECR requires a tagStatus "any" rule to have the lowest priority (the highest number).
    assert rules[-1]["selection"]["tagStatus"] == "any"


def test_log_groups(aws_mocks: RecordingMonitor) -> None:
    service = build(aws_mocks, prod())
    groups = {g.inputs["name"]: g.inputs for g in aws_mocks.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert {n: g["retentionInDays"] for n, g in groups.items()} == {
        "/ecs/wwhd-backend-test": 30,
        "/ecs/wwhd-backend-test/performance": 7,
        "/ecs/wwhd-qdrant-test": 30,
    }
    assert all(g["kmsKeyId"] == KEY for g in groups.values())
    assert resolve(service.api_log_group_name) == "/ecs/wwhd-backend-test"
    assert resolve(service.performance_log_group_name) == "/ecs/wwhd-backend-test/performance"
    api = containers(api_task(aws_mocks))[c.API_CONTAINER]
    assert api["logConfiguration"]["options"] == {
        "awslogs-group": "/ecs/wwhd-backend-test",
        "awslogs-region": REGION,
        "awslogs-stream-prefix": "api",
    }
    assert aws_mocks.one("aws:ecs/cluster:Cluster").inputs["name"] == "wwhd-test"


def test_adopted_names_reach_the_cluster_log_groups_and_containers(aws_mocks: RecordingMonitor) -> None:
    """Prod adopts infra-change-001's cluster and log group (imports/prod.json) by name."""
    service = build(
        aws_mocks, prod(service={"clusterName": "wwhd-cluster", "logGroupName": "/ecs/wwhd-backend"})
    )
    cluster = aws_mocks.one("aws:ecs/cluster:Cluster")
    assert cluster.inputs["name"] == "wwhd-cluster"
    providers = aws_mocks.one("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")
    assert providers.inputs["clusterName"] == "wwhd-cluster"
    groups = {g.inputs["name"] for g in aws_mocks.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert groups == {"/ecs/wwhd-backend", "/ecs/wwhd-backend/performance", "/ecs/wwhd-qdrant-test"}
    assert resolve(service.cluster_name) == "wwhd-cluster"
    assert resolve(service.api_log_group_name) == "/ecs/wwhd-backend"
    api = containers(api_task(aws_mocks))
    assert api[c.API_CONTAINER]["logConfiguration"]["options"]["awslogs-group"] == "/ecs/wwhd-backend"
    assert api[c.XRAY_CONTAINER]["logConfiguration"]["options"]["awslogs-group"] == "/ecs/wwhd-backend"


def test_physical_names_default_per_stack() -> None:
    names = physical_names(prod().service, "dev")
    assert (names.cluster, names.api_log_group, names.performance_log_group) == (
        "wwhd-dev",
        "/ecs/wwhd-backend-dev",
        "/ecs/wwhd-backend-dev/performance",
    )
    adopted = physical_names(prod(service={"clusterName": "c_1", "logGroupName": "/a/b#c"}).service, "prod")
    assert (adopted.cluster, adopted.performance_log_group) == ("c_1", "/a/b#c/performance")


def test_documents_bucket_private_encrypted_versioned_tls_only(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, prod())
    bucket = aws_mocks.one("aws:s3/bucket:Bucket", "t-documents")
    assert bucket.protect  # storage.protect in prod

    def on_bucket(typ: str) -> Registration:
        return aws_mocks.one(typ, "t-documents")

    sse = on_bucket(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs
    assert sse["bucket"] == bucket.outputs["id"]
    assert sse["rules"] == [
        {
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY},
            "bucketKeyEnabled": True,
        }
    ]
    block = on_bucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(
        block[k] is True
        for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    assert on_bucket("aws:s3/bucketVersioning:BucketVersioning").inputs["versioningConfiguration"] == {
        "status": "Enabled"
    }
    ownership = on_bucket("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    policy = json.loads(on_bucket("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    (deny,) = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(deny["Resource"]) == {bucket.outputs["arn"], bucket.outputs["arn"] + "/*"}


# --- load balancer ----------------------------------------------------------------------------


def listeners(monitor: RecordingMonitor) -> dict[int, dict[str, Any]]:
    return {int(r.inputs["port"]): r.inputs for r in monitor.of_type(LISTENER)}


def test_https_with_certificate_arn_and_redirect(aws_mocks: RecordingMonitor) -> None:
    service = build(aws_mocks, prod())
    found = listeners(aws_mocks)
    assert set(found) == {80, 443}
    https = found[443]
    assert (
        https["protocol"] == "HTTPS"
        and https["sslPolicy"] == SSL_POLICY == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    )
    assert https["certificateArn"] == CERT
    tg = aws_mocks.one("aws:lb/targetGroup:TargetGroup")
    assert https["defaultActions"] == [{"type": "forward", "targetGroupArn": tg.outputs["arn"]}]
    assert found[80]["defaultActions"] == [
        {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
    ]
    alb = aws_mocks.one("aws:lb/loadBalancer:LoadBalancer")
    assert resolve(service.service_url) == f"https://{alb.outputs['dnsName']}"
    assert aws_mocks.of_type("aws:acm/certificate:Certificate") == []


def test_https_with_domain_issues_and_validates_a_certificate(aws_mocks: RecordingMonitor) -> None:
    service = build(
        aws_mocks,
        prod(
            loadBalancer={"certificateArn": None, "domain": "api.wwhd.ai", "hostedZoneId": "Z0123456789ABC"}
        ),
    )
    cert = aws_mocks.one("aws:acm/certificate:Certificate")
    assert cert.inputs["domainName"] == "api.wwhd.ai" and cert.inputs["validationMethod"] == "DNS"
    option = cert.outputs["domainValidationOptions"][0]
    records = {r.name: r.inputs for r in aws_mocks.of_type("aws:route53/record:Record")}
    validation_record = records["t-lb-cert-validation"]
    assert validation_record["zoneId"] == "Z0123456789ABC"
    assert validation_record["name"] == option["resourceRecordName"]
    assert validation_record["type"] == "CNAME"
    assert validation_record["records"] == [option["resourceRecordValue"]]
    validation = aws_mocks.one("aws:acm/certificateValidation:CertificateValidation")
    assert validation.inputs["certificateArn"] == cert.outputs["arn"]
    alias = records["t-lb-alias"]
    alb = aws_mocks.one("aws:lb/loadBalancer:LoadBalancer")
    assert alias["name"] == "api.wwhd.ai" and alias["type"] == "A"
    assert alias["aliases"] == [
        {"name": alb.outputs["dnsName"], "zoneId": alb.outputs["zoneId"], "evaluateTargetHealth": True}
    ]
    https = aws_mocks.one(LISTENER, "t-lb-https")
    # The listener takes the certificate through its validation, so it waits for issuance.
    assert validation.urn in https.dependencies
    assert resolve(service.service_url) == "https://api.wwhd.ai"


def test_plain_http_in_dev(aws_mocks: RecordingMonitor) -> None:
    service = build(aws_mocks, dev())
    found = listeners(aws_mocks)
    assert set(found) == {80}
    assert found[80]["protocol"] == "HTTP" and found[80]["defaultActions"][0]["type"] == "forward"
    alb = aws_mocks.one("aws:lb/loadBalancer:LoadBalancer")
    assert resolve(service.service_url) == f"http://{alb.outputs['dnsName']}"


def test_plain_http_beside_a_certificate_in_dev(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, dev(loadBalancer={"certificateArn": CERT}))
    found = listeners(aws_mocks)
    assert set(found) == {80, 443}
    assert found[80]["defaultActions"][0]["type"] == "forward"


def test_alb_and_target_group(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, dev(loadBalancer={"idleTimeout": 120, "deregistrationDelay": 15}))
    alb = aws_mocks.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert alb["internal"] is False and alb["loadBalancerType"] == "application"
    assert alb["subnets"] == ["subnet-0000000000000000a", "subnet-0000000000000000b"]
    assert alb["securityGroups"] == ["sg-00000000000000001"]
    assert alb["idleTimeout"] == 120 and alb["dropInvalidHeaderFields"] is True
    tg = aws_mocks.one("aws:lb/targetGroup:TargetGroup").inputs
    assert (tg["port"], tg["protocol"], tg["targetType"]) == (8000, "HTTP", "ip")
    assert tg["deregistrationDelay"] == "15" or tg["deregistrationDelay"] == 15
    hc = tg["healthCheck"]
    assert (hc["path"], hc["healthyThreshold"], hc["unhealthyThreshold"], hc["timeout"], hc["interval"], hc["matcher"]) == (
        "/health", 2, 3, 5, 30, "200",
    )  # fmt: skip
    assert tg["stickiness"]["type"] == "lb_cookie" and tg["stickiness"]["enabled"] is True


def test_access_logs_in_prod(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, prod())
    alb = aws_mocks.one("aws:lb/loadBalancer:LoadBalancer")
    assert alb.inputs["enableDeletionProtection"] is True
    bucket = aws_mocks.one("aws:s3/bucket:Bucket", "t-lb-alb-logs")
    assert alb.inputs["accessLogs"] == {"bucket": bucket.outputs["bucket"], "enabled": True}
    sse = aws_mocks.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "t-lb-alb-logs",
    )
    # ALB access logs accept SSE-S3 only.
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    block = aws_mocks.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "t-lb-alb-logs").inputs
    assert all(
        block[k] is True
        for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    lifecycle = aws_mocks.one(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "t-lb-alb-logs"
    )
    assert lifecycle.inputs["rules"][0]["expiration"] == {"days": 90}
    policy = aws_mocks.one("aws:s3/bucketPolicy:BucketPolicy", "t-lb-alb-logs")
    allow = next(s for s in json.loads(policy.inputs["policy"])["Statement"] if s["Effect"] == "Allow")
    assert allow["Principal"] == {"AWS": f"arn:aws:iam::{ELB_ACCOUNT}:root"}
    assert allow["Action"] == "s3:PutObject"
    assert allow["Resource"] == f"{bucket.outputs['arn']}/AWSLogs/{ACCOUNT_ID}/*"
    assert policy.urn in alb.dependencies  # ELB checks write access when logging is enabled


def test_no_access_logs_or_protection_in_dev(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, dev())
    alb = aws_mocks.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert alb["enableDeletionProtection"] is False and "accessLogs" not in alb
    assert [b.name for b in aws_mocks.of_type("aws:s3/bucket:Bucket")] == ["t-documents"]
    assert not aws_mocks.one("aws:s3/bucket:Bucket", "t-documents").protect


# --- the service and its scaling --------------------------------------------------------------


def test_api_service(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, prod(service={"healthCheckGraceSeconds": 90}))
    svc = aws_mocks.one(ECS_SERVICE, "t-api")
    i = svc.inputs
    cluster = aws_mocks.one("aws:ecs/cluster:Cluster")
    assert i["cluster"] == cluster.outputs["arn"]
    assert i["taskDefinition"] == api_task(aws_mocks).outputs["arn"]
    assert i["desiredCount"] == 2 and "launchType" not in i
    assert i["networkConfiguration"] == {
        "subnets": ["subnet-1000000000000000a", "subnet-1000000000000000b"],
        "securityGroups": ["sg-00000000000000002"],
        "assignPublicIp": False,
    }
    tg = aws_mocks.one("aws:lb/targetGroup:TargetGroup")
    assert i["loadBalancers"] == [
        {"targetGroupArn": tg.outputs["arn"], "containerName": "api", "containerPort": 8000}
    ]
    assert i["healthCheckGracePeriodSeconds"] == 90
    assert i["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert (i["propagateTags"], i["enableEcsManagedTags"], i["waitForSteadyState"]) == (
        "SERVICE",
        True,
        False,
    )
    # The target group must be attached to the ALB (through a listener) first.
    for listener in aws_mocks.of_type(LISTENER):
        assert listener.urn in svc.dependencies
    assert aws_mocks.one(ROLE_POLICY, "t-execution").urn in svc.dependencies
    assert cluster.inputs["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    providers = aws_mocks.one("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")
    assert providers.inputs["clusterName"] == cluster.outputs["name"]
    assert set(providers.inputs["capacityProviders"]) == {"FARGATE", "FARGATE_SPOT"}


def test_prod_and_dev_differ(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, prod())
    prod_api = aws_mocks.one(ECS_SERVICE, "t-api").inputs
    assert prod_api["capacityProviderStrategies"] == [{"capacityProvider": "FARGATE", "weight": 1}]
    assert (prod_api["deploymentMinimumHealthyPercent"], prod_api["deploymentMaximumPercent"]) == (100, 200)
    assert env(containers(api_task(aws_mocks))[c.API_CONTAINER])["APP_ENV"] == "production"


def test_dev_runs_on_spot_single_writer(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, dev())
    api = aws_mocks.one(ECS_SERVICE, "t-api").inputs
    assert api["capacityProviderStrategies"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    # SQLite and Qdrant on EFS in the task: stop the old task before starting the new one.
    assert (api["deploymentMinimumHealthyPercent"], api["deploymentMaximumPercent"]) == (0, 100)
    assert api["desiredCount"] == 1


@pytest.mark.parametrize(
    ("spot_percent", "qdrant_provider"), [(0, "FARGATE"), (50, "FARGATE"), (100, "FARGATE_SPOT")]
)
def test_qdrant_singleton_is_on_spot_only_in_an_all_spot_stack(
    aws_mocks: RecordingMonitor, spot_percent: int, qdrant_provider: str
) -> None:
    """An API Spot share spreads many tasks; applied to the only Qdrant task it is a coin toss."""
    build(aws_mocks, prod(service={"spotPercent": spot_percent}))
    qdrant = aws_mocks.one(ECS_SERVICE, "t-qdrant").inputs
    assert qdrant["capacityProviderStrategies"] == [{"capacityProvider": qdrant_provider, "weight": 1}]


def test_autoscaling_targets_and_policies(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, prod(service={"requestsPerTarget": 500}))
    target = aws_mocks.one("aws:appautoscaling/target:Target")
    svc = aws_mocks.one(ECS_SERVICE, "t-api")
    cluster = aws_mocks.one("aws:ecs/cluster:Cluster")
    assert target.inputs["resourceId"] == f"service/{cluster.outputs['name']}/{svc.outputs['name']}"
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (2, 10)
    assert target.inputs["scalableDimension"] == "ecs:service:DesiredCount"
    policies = {}
    for p in aws_mocks.of_type(POLICY):
        assert p.inputs["policyType"] == "TargetTrackingScaling"
        assert p.inputs["resourceId"] == target.inputs["resourceId"]
        conf = p.inputs["targetTrackingScalingPolicyConfiguration"]
        assert (conf["scaleInCooldown"], conf["scaleOutCooldown"]) == (300, 60)
        spec = conf["predefinedMetricSpecification"]
        policies[spec["predefinedMetricType"]] = (conf["targetValue"], spec.get("resourceLabel"))
    alb = aws_mocks.one("aws:lb/loadBalancer:LoadBalancer").outputs["arnSuffix"]
    tg = aws_mocks.one("aws:lb/targetGroup:TargetGroup").outputs["arnSuffix"]
    assert policies == {
        "ECSServiceAverageCPUUtilization": (70, None),
        "ECSServiceAverageMemoryUtilization": (80, None),
        "ALBRequestCountPerTarget": (500, f"{alb}/{tg}"),
    }
    # Autoscaling owns the running count.
    assert svc.inputs["desiredCount"] == 2


def test_no_autoscaling_when_max_equals_min(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, prod(service={"minCount": 2, "desiredCount": 2, "maxCount": 2}))
    assert aws_mocks.of_type("aws:appautoscaling/target:Target") == []
    assert aws_mocks.of_type(POLICY) == []


def test_outputs(aws_mocks: RecordingMonitor) -> None:
    service = build(aws_mocks, prod())
    alb = aws_mocks.one("aws:lb/loadBalancer:LoadBalancer").outputs
    assert resolve(service.alb_dns_name) == alb["dnsName"]
    assert resolve(service.alb_arn_suffix) == alb["arnSuffix"]
    assert resolve(service.target_group_arn_suffix).startswith("targetgroup/")
    assert resolve(service.ecr_repository_url).endswith("/wwhd-test-backend")
    assert resolve(service.cluster_name) == aws_mocks.one("aws:ecs/cluster:Cluster").outputs["name"]
    assert resolve(service.api_service_name) == aws_mocks.one(ECS_SERVICE, "t-api").outputs["name"]
    assert resolve(service.task_definition_arn) == api_task(aws_mocks).outputs["arn"]
    assert (
        resolve(service.documents_bucket_name)
        == aws_mocks.one("aws:s3/bucket:Bucket", "t-documents").outputs["bucket"]
    )
    component = aws_mocks.one("wwhd:index:WwhdService")
    registered = aws_mocks.outputs[component.urn]
    for key in ("cluster_name", "api_service_name", "qdrant_service_name", "alb_arn_suffix",
                "target_group_arn_suffix", "api_log_group_name", "service_url"):  # fmt: skip
        assert key in registered


def test_children_are_parented_to_the_components(aws_mocks: RecordingMonitor) -> None:
    build(aws_mocks, prod())
    service = aws_mocks.one("wwhd:index:WwhdService")
    lb = aws_mocks.one("wwhd:index:WwhdLoadBalancer")
    assert lb.parent == service.urn
    lb_children = {r.urn for r in aws_mocks.registrations if r.parent == lb.urn}
    assert aws_mocks.one("aws:lb/loadBalancer:LoadBalancer").urn in lb_children
    for r in aws_mocks.registrations:
        if r.type in ("pulumi:pulumi:Stack", "wwhd:index:WwhdService"):
            continue
        assert r.parent in (service.urn, lb.urn), r.name


def test_args_refuse_missing_topology_inputs(aws_mocks: RecordingMonitor) -> None:
    with pytest.raises(ValueError, match="api_access_point_id"):
        build(aws_mocks, dev(), api_access_point_id=None)
    with pytest.raises(ValueError, match="database_address"):
        build(aws_mocks, prod(), database_address=None)
    with pytest.raises(ValueError, match="qdrant_security_group_id"):
        build(aws_mocks, prod(), qdrant_security_group_id=None)
    with pytest.raises(ValueError, match=r"roles\.qdrant"):
        build(
            aws_mocks,
            prod(),
            roles=TaskRoles(
                api_task_role_arn="a", api_task_role_name="a", execution_role_arn="e", execution_role_name="e"
            ),
        )


# --- capacity provider strategy (pure) --------------------------------------------------------


@pytest.mark.parametrize("spot", [0, 1, 25, 50, 67, 99, 100])
@pytest.mark.parametrize("base", [0, 1, 3])
def test_capacity_strategy_obeys_ecs_rules(spot: int, base: int) -> None:
    strategy = capacity_provider_strategy(spot, base)
    entries = [s.api() for s in strategy]
    assert len({e["capacityProvider"] for e in entries}) == len(entries)
    assert sum(1 for e in entries if "base" in e) <= 1  # only one provider may have a base
    assert all(0 <= e["weight"] <= 1000 for e in entries)
    assert any(e["weight"] > 0 for e in entries)
    weights = {e["capacityProvider"]: e["weight"] for e in entries}
    total = sum(weights.values())
    assert weights.get("FARGATE_SPOT", 0) / total == pytest.approx(spot / 100, abs=1e-9)
    bases = {e["capacityProvider"]: e.get("base", 0) for e in entries}
    assert bases.get("FARGATE", 0) == base


def test_capacity_strategy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        capacity_provider_strategy(101, 0)
