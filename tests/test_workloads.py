"""The services the program composes on the platform, per topology: what reaches the containers,
who may do what, how they are found, routed and scaled. Each topology is the real program run
under the mocks with its stack file and a few keys changed."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.validate import ParamValidator

from components import containers as c
from components.load_balancer import SSL_POLICY
from tests.support import (
    ECS_SERVICE,
    LISTENER,
    LOG_GROUP,
    ROLE,
    ROLE_POLICY,
    SCALING_POLICY,
    SSM_PARAMETER,
    TASK_DEFINITION,
)
from tools.mocks import ACCOUNT_ID, ProgramRun, Registration, load_stack_config, run_program
from workloads import physical_names

from .conftest import ROOT

REGION = "us-west-2"
CERT = f"arn:aws:acm:{REGION}:{ACCOUNT_ID}:certificate/0f0e0d0c-1111-2222-3333-444455556666"
QDRANT_KEY = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:qdrant-cloud-AbCdEf"
ELB_ACCOUNT = "797873946194"

# DB_USER is the app's database user name: with IAM authentication, no password goes with it.
SECRET_CREDENTIALS = {"OPENAI_API_KEY", "JWT_SECRET", "DB_PASSWORD", "QDRANT_API_KEY"}
# Prod's file places Qdrant on its own instance; these switch it to the other placements (and
# drop the instance-only keys, which the other placements refuse).
_NOT_ON_AN_INSTANCE = {"instanceType": None, "volumeGb": None}
EXTERNAL = {"placement": "external", "url": "https://q.cloud.qdrant.io", **_NOT_ON_AN_INSTANCE}
SERVICE = {
    "placement": "service", "acceptNetworkStorage": True, "cpu": 512, "memory": 1024, **_NOT_ON_AN_INSTANCE,
}  # fmt: skip


@cache
def _run(stack: str, changes: str) -> ProgramRun:
    current = load_stack_config(ROOT, stack).config
    overrides = {}
    for key, value in json.loads(changes).items():
        full = f"wwhd:{key}"
        if isinstance(value, dict) and full in current:
            value = {k: v for k, v in (json.loads(current[full]) | value).items() if v is not None}
        overrides[full] = value if isinstance(value, str) else json.dumps(value)
    return run_program(ROOT, stack, overrides)


def program(stack: str, **changes: Any) -> ProgramRun:
    """The program for a stack file with keys of some sections changed (merged into the file's
    section; a None value removes a key). Runs once per distinct configuration."""
    return _run(stack, json.dumps(changes, sort_keys=True))


TOPOLOGIES: dict[str, tuple[str, dict[str, Any]]] = {
    "dev-sidecar-sqlite": ("dev", {}),
    "dev-sidecar-tracing-exec": ("dev", {"monitoring": {"tracing": True}, "service": {"ecsExec": True}}),
    "prod-instance-postgres": ("prod", {}),
    "prod-service-postgres": ("prod", {"qdrant": SERVICE}),
    "prod-external-postgres": ("prod", {"qdrant": EXTERNAL}),
    "staging-service-sqlite": (
        "dev",
        {
            "environment": "staging",
            "qdrant": {"placement": "service"},
            "loadBalancer": {"allowPlainHttp": None, "certificateArn": CERT},
        },
    ),
}


def topology(name: str) -> ProgramRun:
    stack, changes = TOPOLOGIES[name]
    return program(stack, **changes)


def one(run: ProgramRun, typ: str, name: str | None = None) -> Registration:
    return run.monitor.one(typ, name)


def of_type(run: ProgramRun, typ: str) -> list[Registration]:
    return run.monitor.of_type(typ)


def containers(task_def: Registration) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in json.loads(task_def.inputs["containerDefinitions"])}


def api_containers(run: ProgramRun) -> dict[str, dict[str, Any]]:
    return containers(one(run, TASK_DEFINITION, "wwhd-api"))


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def secrets(container: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["valueFrom"] for s in container.get("secrets", [])}


def key_arn(run: ProgramRun) -> str:
    return one(run, "aws:kms/key:Key").outputs["arn"]


def policy_doc(run: ProgramRun, name: str) -> dict[str, Any]:
    return json.loads(one(run, ROLE_POLICY, name).inputs["policy"])


def grants(doc: dict[str, Any]) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Sid -> (actions, resources) of each Allow statement."""
    out = {}
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow"
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        out[st["Sid"]] = (frozenset(actions), frozenset(resources))
    return out


# --- what reaches the containers ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_credentials_only_through_secrets(name: str) -> None:
    run = topology(name)
    for task in of_type(run, TASK_DEFINITION):
        for container in containers(task).values():
            assert not SECRET_CREDENTIALS & set(env(container)), container["name"]
            for value in env(container).values():
                assert "@" not in value.split("//", 1)[-1].split("/", 1)[0], f"credentials in {value}"
    injected = secrets(api_containers(run)[c.API_CONTAINER])
    stack = run.stack
    # Parameters by name: known before they exist, so a new stack's task definition is judged whole.
    assert injected["OPENAI_API_KEY"] == one(run, SSM_PARAMETER, "wwhd-openai-api-key").inputs["name"]
    assert injected["OPENAI_API_KEY"] == f"/wwhd/{stack}/openai-api-key"
    assert injected["JWT_SECRET"] == f"/wwhd/{stack}/jwt-secret"
    assert "DB_PASSWORD" not in injected


def test_postgres_with_iam_authentication_as_the_app_user() -> None:
    """Issue 17, day 8: RDS rotates the master secret every 7 days and ECS injects secrets only
    when a task starts. The API injects no database password at all: it connects as its own
    user with an IAM token per connection, so no rotation can strand a running task."""
    run = program("prod")
    api = api_containers(run)[c.API_CONTAINER]
    db = one(run, "aws:rds/instance:Instance")
    secret = db.outputs["masterUserSecrets"][0]["secretArn"]
    for container in api_containers(run).values():
        assert not any(secret in ref for ref in secrets(container).values()), container["name"]
    host = one(run, SSM_PARAMETER, "wwhd-db-host")
    assert host.inputs["name"] == secrets(api)["DB_HOST"] == "/wwhd/prod/database-host"
    # The provider marks every parameter value secret; this one is a plain host name.
    assert host.inputs["value"]["value"] == db.outputs["address"] and host.inputs["type"] == "String"
    assert {k: env(api)[k] for k in ("DB_PORT", "DB_NAME", "DB_USER", "DB_AUTH", "DB_SSLMODE")} == {
        "DB_PORT": "5432", "DB_NAME": "wwhd", "DB_USER": "wwhd_app", "DB_AUTH": "iam", "DB_SSLMODE": "require",
    }  # fmt: skip
    assert db.inputs["iamDatabaseAuthenticationEnabled"] is True
    connect = grants(policy_doc(run, "wwhd-api-task"))["DatabaseConnect"]
    assert connect == (
        frozenset({"rds-db:connect"}),
        frozenset({f"arn:aws:rds-db:{REGION}:{ACCOUNT_ID}:dbuser:*/wwhd_app"}),
    )
    assert not any(m["sourceVolume"] == c.DATA_VOLUME for m in api["mountPoints"])


def test_sqlite_on_the_api_access_point() -> None:
    run = program("dev")
    task = one(run, TASK_DEFINITION, "wwhd-api")
    api = containers(task)[c.API_CONTAINER]
    assert env(api)["DATABASE_URL"] == "sqlite:////data/wwhd.db"
    assert {"sourceVolume": c.DATA_VOLUME, "containerPath": "/data", "readOnly": False} in api["mountPoints"]
    volumes = {v["name"]: v for v in task.inputs["volumes"]}
    efs = volumes[c.DATA_VOLUME]["efsVolumeConfiguration"]
    access_point = one(run, "aws:efs/accessPoint:AccessPoint", "wwhd-api-ap").outputs["id"]
    assert efs["fileSystemId"] == one(run, "aws:efs/fileSystem:FileSystem").outputs["id"]
    assert efs["rootDirectory"] == "/" and efs["transitEncryption"] == "ENABLED"
    assert efs["authorizationConfig"] == {"accessPointId": access_point, "iam": "ENABLED"}


def test_app_environment_from_config() -> None:
    run = program("dev", service={"allowOrigins": ["https://a.example", "http://localhost:3000"]})
    api = api_containers(run)[c.API_CONTAINER]
    e = env(api)
    assert e["APP_ENV"] == "development" and e["LOG_LEVEL"] == "DEBUG"
    assert e["MODEL_CHAT"] == "gpt-4o-mini" and e["MODEL_EMBED"] == "text-embedding-3-small"
    assert e["JWT_ISSUER"] == "wwhd" and e["JWT_AUDIENCE"] == "wwhd-users"
    assert e["ALLOW_ORIGINS"] == "https://a.example,http://localhost:3000"
    assert e["DOCUMENTS_BUCKET"] == one(run, "aws:s3/bucket:Bucket", "wwhd-documents").outputs["bucket"]
    repo = one(run, "aws:ecr/repository:Repository").outputs["repositoryUrl"]
    assert repo == f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/wwhd/dev/api"
    assert api["image"] == f"{repo}:v0.1.0"
    assert api["portMappings"] == [{"containerPort": 8000, "protocol": "tcp", "name": "http"}]


def test_api_image_by_digest() -> None:
    digest = "sha256:" + "ab" * 32
    run = program("dev", images={"apiTag": digest})
    repo = one(run, "aws:ecr/repository:Repository").outputs["repositoryUrl"]
    assert api_containers(run)[c.API_CONTAINER]["image"] == f"{repo}@{digest}"


def test_containers_are_hardened() -> None:
    run = program("dev", monitoring={"tracing": True})
    task = one(run, TASK_DEFINITION, "wwhd-api")
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


def test_ecs_exec_gets_the_writable_root_its_agent_needs() -> None:
    """The SSM agent ECS Exec injects writes under /managed-agents and /var/lib/amazon/ssm;
    AWS does not support ECS Exec with a read-only root, so the switch trades one for the other."""
    run = topology("dev-sidecar-tracing-exec")
    api = api_containers(run)[c.API_CONTAINER]
    assert api["readonlyRootFilesystem"] is False
    assert api["linuxParameters"]["initProcessEnabled"] is True
    assert one(run, ECS_SERVICE, "wwhd-api").inputs["enableExecuteCommand"] is True


def test_qdrant_health_check_runs_in_the_qdrant_image() -> None:
    """The image (debian slim) has bash but no curl/wget/nc, and /bin/sh (dash) has no /dev/tcp."""
    qdrant = api_containers(program("dev"))[c.QDRANT_CONTAINER]
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
        key: i[key]
        for key in (
            "family",
            "cpu",
            "memory",
            "networkMode",
            "requiresCompatibilities",
            "runtimePlatform",
            "executionRoleArn",
            "taskRoleArn",
        )
    }
    params["containerDefinitions"] = json.loads(i["containerDefinitions"])
    if i.get("volumes"):
        # The provider sends a volume's host_path as the API's host.sourcePath.
        params["volumes"] = [
            {k: v for k, v in vol.items() if k != "hostPath"}
            | ({"host": {"sourcePath": vol["hostPath"]}} if "hostPath" in vol else {})
            for vol in i["volumes"]
        ]
    return params


def _shape() -> Any:
    return (
        botocore.session.get_session()
        .get_service_model("ecs")
        .operation_model("RegisterTaskDefinition")
        .input_shape
    )


VALIDATION_CASES = [
    (name, arch)
    for name in ("dev-sidecar-tracing-exec", "prod-instance-postgres", "prod-service-postgres", "prod-external-postgres")
    for arch in ("x86_64", "arm64")
] + [("dev-sidecar-sqlite", "x86_64"), ("staging-service-sqlite", "arm64")]  # fmt: skip


@pytest.mark.parametrize(("name", "arch"), VALIDATION_CASES)
def test_task_definitions_pass_the_ecs_api_model(name: str, arch: str) -> None:
    stack, changes = TOPOLOGIES[name]
    service = {**changes.get("service", {}), "cpuArchitecture": arch}
    run = program(stack, **{**changes, "service": service})
    tasks = of_type(run, TASK_DEFINITION)
    assert len(tasks) == (1 if "-sidecar-" in name or "-external-" in name else 2)
    for task in tasks:
        params = _register_params(task)
        report = ParamValidator().validate(params, _shape())
        assert not report.has_errors(), report.generate_report()
        # Qdrant on its own instance runs on the host's architecture (prod's t4g is Graviton).
        on_host = "-instance-" in name and task.name == "wwhd-qdrant"
        assert params["runtimePlatform"] == {
            "cpuArchitecture": "ARM64" if on_host else arch.upper(),
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
    bad = {
        "family": "f",
        "containerDefinitions": [{"name": "a", "portMappings": [{"containerPort": 80.0}], "bogus": 1}],
    }
    assert ParamValidator().validate(bad, _shape()).has_errors()


@pytest.mark.parametrize(
    ("cpu", "memory"), [(256, 512), (512, 1024), (512, 2048), (2048, 4096), (16384, 122880)]
)
@pytest.mark.parametrize("sidecar", [True, False])
@pytest.mark.parametrize("tracing", [True, False])
def test_container_shares_fill_the_task(cpu: int, memory: int, sidecar: bool, tracing: bool) -> None:
    """Hard limits add up to the task's memory; every container has a reservation below its
    limit; no essential container's limit is under the floor -- or the split is refused."""
    try:
        shares = c.split_task(cpu, memory, qdrant_sidecar=sidecar, tracing=tracing)
    except ValueError as exc:
        assert "choose a larger memory size" in str(exc)
        needed = c.ESSENTIAL_MEMORY_FLOOR * (2 if sidecar else 1) + (c.COLLECTOR_MEMORY if tracing else 0)
        assert memory < needed
        return
    assert sum(s.cpu for s in shares.values()) == cpu
    assert sum(s.memory for s in shares.values()) == memory
    for name, share in shares.items():
        assert share.cpu > 0 and share.reservation is not None and 0 < share.reservation < share.memory
        if name != c.COLLECTOR_CONTAINER:
            assert share.memory >= c.ESSENTIAL_MEMORY_FLOOR, name


def test_an_essential_sidecar_keeps_its_memory_floor() -> None:
    """Issue 17, item 3: dev's Qdrant sidecar had a 256 MiB hard limit; one large collection and
    the kernel kills it, stopping the whole task."""
    run = program("dev")
    defs = api_containers(run)
    for name in (c.API_CONTAINER, c.QDRANT_CONTAINER):
        assert defs[name]["essential"] is True
        assert defs[name]["memory"] >= c.ESSENTIAL_MEMORY_FLOOR
        assert 0 < defs[name]["memoryReservation"] < defs[name]["memory"]
    assert sum(d["memory"] for d in defs.values()) <= int(
        one(run, TASK_DEFINITION, "wwhd-api").inputs["memory"]
    )


# --- topologies -------------------------------------------------------------------------------


def test_sidecar_topology() -> None:
    run = program("dev")
    defs = api_containers(run)
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
    volumes = {v["name"]: v for v in one(run, TASK_DEFINITION, "wwhd-api").inputs["volumes"]}
    ap = one(run, "aws:efs/accessPoint:AccessPoint", "wwhd-qdrant-ap").outputs["id"]
    assert volumes[c.QDRANT_VOLUME]["efsVolumeConfiguration"]["authorizationConfig"]["accessPointId"] == ap
    assert qdrant["logConfiguration"]["options"]["awslogs-group"] == run.outputs["qdrantLogGroupName"]
    assert len(of_type(run, ECS_SERVICE)) == 1
    assert of_type(run, "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace") == []
    assert run.outputs["qdrantServiceName"] is None


def test_service_topology() -> None:
    run = topology("prod-service-postgres")
    namespace = one(run, "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace")
    assert namespace.inputs["name"] == "prod.wwhd.local"
    assert namespace.inputs["vpc"] == run.outputs["vpcId"]
    registry = one(run, "aws:servicediscovery/service:Service")
    assert registry.inputs["name"] == "qdrant"
    assert registry.inputs["dnsConfig"]["dnsRecords"] == [{"type": "A", "ttl": 10}]
    assert registry.inputs["dnsConfig"]["namespaceId"] == namespace.outputs["id"]

    api = api_containers(run)[c.API_CONTAINER]
    assert env(api)["QDRANT_URL"] == "http://qdrant.prod.wwhd.local:6333"
    assert "dependsOn" not in api

    qdrant_svc = one(run, ECS_SERVICE, "wwhd-qdrant")
    i = qdrant_svc.inputs
    assert i["desiredCount"] == 1
    # Never two writers: stop the old task before starting the new one.
    assert (i["deploymentMinimumHealthyPercent"], i["deploymentMaximumPercent"]) == (0, 100)
    group = one(run, "aws:ec2/securityGroup:SecurityGroup", "wwhd-qdrant").outputs["id"]
    assert i["networkConfiguration"]["securityGroups"] == [group]
    assert i["networkConfiguration"]["assignPublicIp"] is False
    assert i["serviceRegistries"]["registryArn"] == registry.outputs["arn"]
    assert i["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert run.outputs["qdrantServiceName"] == qdrant_svc.outputs["name"]
    # The API starts once the service it searches exists.
    assert qdrant_svc.urn in one(run, ECS_SERVICE, "wwhd-api").dependencies

    task = one(run, TASK_DEFINITION, "wwhd-qdrant")
    assert (task.inputs["cpu"], task.inputs["memory"]) == ("512", "1024")
    assert task.inputs["taskRoleArn"] == one(run, ROLE, "wwhd-qdrant-task").outputs["arn"]
    assert task.inputs["executionRoleArn"] == one(run, ROLE, "wwhd-qdrant-execution").outputs["arn"]
    qdrant = containers(task)[c.QDRANT_CONTAINER]
    assert "QDRANT__SERVICE__HOST" not in env(qdrant)  # must listen on the task's ENI
    targets = of_type(run, "aws:appautoscaling/target:Target")
    assert all("wwhd-qdrant" not in t.inputs["resourceId"] for t in targets)


def test_instance_topology() -> None:
    """Issue 18: Qdrant on its container instance, its storage and snapshots on the host's EBS
    volume; found by the API through Cloud Map as on Fargate; no file system in reach."""
    run = topology("prod-instance-postgres")
    api = api_containers(run)[c.API_CONTAINER]
    assert env(api)["QDRANT_URL"] == "http://qdrant.prod.wwhd.local:6333"
    i = one(run, ECS_SERVICE, "wwhd-qdrant").inputs
    assert i["launchType"] == "EC2" and "capacityProviderStrategies" not in i
    assert i["placementConstraints"] == [{"type": "memberOf", "expression": "attribute:wwhd.role == qdrant"}]
    assert (i["deploymentMinimumHealthyPercent"], i["deploymentMaximumPercent"]) == (0, 100)
    # The task's network interface is in the host's subnet (the volume's AZ).
    assert i["networkConfiguration"]["subnets"] == [run.outputs["privateSubnetIds"][0]]
    task = one(run, TASK_DEFINITION, "wwhd-qdrant")
    assert task.inputs["requiresCompatibilities"] == ["EC2"]
    assert task.inputs["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    assert {v["name"]: v.get("hostPath") for v in task.inputs["volumes"]} == {
        c.QDRANT_VOLUME: "/var/lib/qdrant/storage",
        c.QDRANT_SNAPSHOTS_VOLUME: "/var/lib/qdrant/snapshots",
    }
    mounts = {
        m["sourceVolume"]: m["containerPath"] for m in containers(task)[c.QDRANT_CONTAINER]["mountPoints"]
    }
    assert mounts == {
        c.QDRANT_VOLUME: c.QDRANT_STORAGE_PATH,
        c.QDRANT_SNAPSHOTS_VOLUME: c.QDRANT_SNAPSHOTS_PATH,
    }
    # The host exists; Qdrant's role mounts nothing on the file system kept for the move.
    assert one(run, "aws:autoscaling/group:Group").inputs["maxSize"] == 1
    policy = json.loads(one(run, "aws:efs/fileSystemPolicy:FileSystemPolicy").inputs["policy"])
    assert [s["Sid"] for s in policy["Statement"] if s["Effect"] == "Allow"] == []


def test_external_topology_creates_the_key_parameter() -> None:
    run = program("prod", qdrant=EXTERNAL)
    api = api_containers(run)[c.API_CONTAINER]
    assert env(api)["QDRANT_URL"] == "https://q.cloud.qdrant.io"
    key = one(run, SSM_PARAMETER, "wwhd-qdrant-api-key")
    assert key.inputs["name"] == secrets(api)["QDRANT_API_KEY"] == "/wwhd/prod/qdrant-api-key"
    assert key.inputs["type"] == "SecureString"
    assert set(api_containers(run)) == {c.API_CONTAINER, c.COLLECTOR_CONTAINER}
    assert run.outputs["qdrantLogGroupName"] is None


def test_external_topology_uses_a_given_key_secret() -> None:
    run = program("prod", qdrant={**EXTERNAL, "apiKeySecretArn": QDRANT_KEY})
    api = api_containers(run)[c.API_CONTAINER]
    assert secrets(api)["QDRANT_API_KEY"] == QDRANT_KEY
    assert [s.name for s in of_type(run, SSM_PARAMETER) if "qdrant" in s.name] == []
    assert QDRANT_KEY in grants(policy_doc(run, "wwhd-api-execution"))["ReadInjectedSecrets"][1]


def test_tracing_runs_the_opentelemetry_collector() -> None:
    """Issue 17, item 7: the X-Ray daemon reaches end of support on 2027-02-25; the ADOT
    collector receives the same SDK segments (UDP 2000) and OTLP, and exports to X-Ray."""
    run = program("dev", monitoring={"tracing": True})
    defs = api_containers(run)
    collector = defs[c.COLLECTOR_CONTAINER]
    assert collector["image"].startswith("public.ecr.aws/aws-observability/aws-otel-collector:v")
    assert "@sha256:" in collector["image"] and len(collector["image"].rsplit(":", 1)[1]) == 64
    assert collector["essential"] is False and collector["readonlyRootFilesystem"] is True
    config = yaml.safe_load(env(collector)["AOT_CONFIG_CONTENT"])
    assert config["receivers"]["awsxray"]["endpoint"] == "127.0.0.1:2000"
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    assert config["service"]["pipelines"] == {
        "traces": {
            "receivers": ["awsxray", "otlp"],
            "processors": ["memory_limiter", "batch"],
            "exporters": ["awsxray"],
        }
    }
    assert collector["healthCheck"]["command"] == ["/healthcheck"]
    assert collector["logConfiguration"]["options"]["awslogs-group"] == "/ecs/wwhd-backend-dev"
    api = env(defs[c.API_CONTAINER])
    assert api["AWS_XRAY_DAEMON_ADDRESS"] == "localhost:2000"
    assert api["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4318"
    # Both SDKs name the service as the sampling rule expects.
    rule = one(run, "aws:xray/samplingRule:SamplingRule").inputs["serviceName"]
    assert api["AWS_XRAY_TRACING_NAME"] == api["OTEL_SERVICE_NAME"] == rule == "wwhd-backend"
    assert not [d for d in defs.values() if "xray-daemon" in d["image"]]


def test_no_tracing_no_collector() -> None:
    defs = api_containers(program("dev"))
    assert c.COLLECTOR_CONTAINER not in defs
    assert "AWS_XRAY_DAEMON_ADDRESS" not in env(defs[c.API_CONTAINER])


# --- permissions ------------------------------------------------------------------------------


def test_execution_role_reads_exactly_the_injected_secrets() -> None:
    run = program("prod")
    roles = {r.name: r.outputs["name"] for r in of_type(run, ROLE)}
    managed = of_type(run, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    executions = {roles["wwhd-api-execution"], roles["wwhd-qdrant-execution"]}
    assert {(a.inputs["role"], a.inputs["policyArn"]) for a in managed if a.inputs["role"] in executions} == {
        (role, "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy") for role in executions
    }
    assert one(run, ROLE_POLICY, "wwhd-api-execution").inputs["role"] == roles["wwhd-api-execution"]
    parameter = f"arn:aws:ssm:{REGION}:{ACCOUNT_ID}:parameter/wwhd/prod"
    doc = policy_doc(run, "wwhd-api-execution")
    cache = {
        f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/wwhd-prod/{r}/*" for r in ("docker-hub", "ecr-public")
    }
    assert grants(doc) == {
        "ReadInjectedParameters": (
            frozenset({"ssm:GetParameters"}),
            frozenset(
                {f"{parameter}/openai-api-key", f"{parameter}/jwt-secret", f"{parameter}/database-host"}
            ),
        ),
        "DecryptWithStackKey": (
            frozenset({"kms:Decrypt"}),
            frozenset({f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/*"}),
        ),
        "PullThroughCache": (
            frozenset({"ecr:BatchImportUpstreamImage", "ecr:CreateRepository"}),
            frozenset(cache),
        ),
    }
    decrypt = next(st for st in doc["Statement"] if st["Sid"] == "DecryptWithStackKey")
    assert decrypt["Condition"] == {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/wwhd-prod"}}
    # The Qdrant service's execution role reads no secret: only the cache it pulls through.
    (qdrant,) = [p for p in of_type(run, ROLE_POLICY) if p.inputs["role"] == roles["wwhd-qdrant-execution"]]
    assert set(grants(json.loads(qdrant.inputs["policy"]))) == {"PullThroughCache"}


@pytest.mark.parametrize(("tracing", "ecs_exec"), [(False, False), (True, True)])
def test_api_task_role_grants(tracing: bool, ecs_exec: bool) -> None:
    run = program("dev", monitoring={"tracing": tracing}, service={"ecsExec": ecs_exec})
    role = one(run, ROLE, "wwhd-api-task").outputs["name"]
    assert one(run, ROLE_POLICY, "wwhd-api-task").inputs["role"] == role
    doc = policy_doc(run, "wwhd-api-task")
    # ARNs formed from names, equal to the ones AWS gives the resources.
    bucket = one(run, "aws:s3/bucket:Bucket", "wwhd-documents").outputs["arn"]
    perf = one(run, LOG_GROUP, "wwhd-api-performance-logs").outputs["arn"]
    expected = {
        "DocumentsObjects": (
            frozenset({"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}),
            frozenset({f"{bucket}/*"}),
        ),
        "DocumentsList": (frozenset({"s3:ListBucket"}), frozenset({bucket})),
        "DocumentsEncryption": (
            frozenset({"kms:Decrypt", "kms:GenerateDataKey"}),
            frozenset({f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/*"}),
        ),
        "PerformanceLogs": (
            frozenset({"logs:CreateLogStream", "logs:PutLogEvents"}),
            frozenset({f"{perf}:*"}),
        ),
    }
    if tracing:
        expected["Tracing"] = (
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
    # EFS through the file system policy, which names the task role and its access points.
    policy = json.loads(one(run, "aws:efs/fileSystemPolicy:FileSystemPolicy").inputs["policy"])
    role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{role}"
    allowed = {st["Sid"]: st for st in policy["Statement"] if st["Effect"] == "Allow"}
    for sid, ap in (("ApiMountsData", "wwhd-api-ap"), ("QdrantMountsQdrant", "wwhd-qdrant-ap")):
        assert allowed[sid]["Principal"] == {"AWS": role_arn}
        arn = one(run, "aws:efs/accessPoint:AccessPoint", ap).outputs["arn"]
        assert allowed[sid]["Condition"] == {"StringEquals": {"elasticfilesystem:AccessPointArn": arn}}
    assert one(run, ECS_SERVICE, "wwhd-api").inputs["enableExecuteCommand"] is ecs_exec


# Actions the Service Authorization Reference lists with no resource type: "*" is their only
# form. Everything else names its resources.
UNSCOPED_SERVICES = ("xray", "ssmmessages", "ec2messages", "logs")
UNSCOPED_ACTIONS = {"ecs:DiscoverPollEndpoint", "ec2:DescribeVolumes", "cloudwatch:PutMetricData"}


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_no_wildcard_actions_and_star_resources_only_where_unscoped(name: str) -> None:
    run = topology(name)
    for policy in of_type(run, ROLE_POLICY):
        for st in json.loads(policy.inputs["policy"])["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            assert not any("*" in a for a in actions), (policy.name, actions)
            if "*" in resources:
                assert all(a in UNSCOPED_ACTIONS or a.split(":")[0] in UNSCOPED_SERVICES for a in actions), (
                    policy.name,
                    actions,
                )


def test_qdrant_task_role_holds_nothing() -> None:
    """The Qdrant service calls no AWS API; the file system policy admits its role through its
    own access point."""
    run = program("prod")
    assert [p.name for p in of_type(run, ROLE_POLICY) if p.name == "wwhd-qdrant-task"] == []


def test_the_file_system_policy_admits_each_writer_through_its_access_point() -> None:
    run = topology("prod-service-postgres")
    policy = json.loads(one(run, "aws:efs/fileSystemPolicy:FileSystemPolicy").inputs["policy"])
    allowed = {s["Sid"]: s for s in policy["Statement"] if s["Effect"] == "Allow"}
    assert set(allowed) == {"QdrantMountsQdrant"}
    name = one(run, ROLE, "wwhd-qdrant-task").outputs["name"]
    assert allowed["QdrantMountsQdrant"]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"}


# --- secrets, images, logs, bucket ------------------------------------------------------------


def test_secrets_are_encrypted_parameters() -> None:
    run = program("dev")
    parameters = {p.name: p for p in of_type(run, SSM_PARAMETER)}
    assert {p.inputs["name"] for p in parameters.values()} == {
        "/wwhd/dev/openai-api-key",
        "/wwhd/dev/jwt-secret",
    }
    for p in parameters.values():
        assert p.inputs["type"] == "SecureString" and p.inputs["keyId"] == key_arn(run)
    random = one(run, "random:index/randomPassword:RandomPassword")
    assert random.inputs["length"] == 64
    assert random.urn in parameters["wwhd-jwt-secret"].dependencies
    assert of_type(run, "aws:secretsmanager/secret:Secret") == []


def test_openai_key_from_the_stack_config() -> None:
    """With the key in the stack file the stack owns the value; without it the operator sets it."""
    given = one(program("dev", openaiApiKey="sk-test-not-a-real-key"), SSM_PARAMETER, "wwhd-openai-api-key")
    assert given.inputs["value"]["value"] == "sk-test-not-a-real-key"
    left = one(program("dev"), SSM_PARAMETER, "wwhd-openai-api-key")
    assert left.inputs["value"]["value"] == "set-by-the-operator"


def test_ecr_repository_hardened_with_lifecycle() -> None:
    run = program("dev")
    repo = one(run, "aws:ecr/repository:Repository")
    assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
    assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": key_arn(run)}]
    lifecycle = one(run, "aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert lifecycle.inputs["repository"] == repo.outputs["name"]
    rules = sorted(json.loads(lifecycle.inputs["policy"])["rules"], key=lambda r: r["rulePriority"])
    assert [r["selection"] for r in rules] == [
        {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30},
        {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 20},
    ]
    assert all(r["action"] == {"type": "expire"} for r in rules)
    # ECR requires a tagStatus "any" rule to have the lowest priority (the highest number).
    assert rules[-1]["selection"]["tagStatus"] == "any"


def test_log_groups() -> None:
    run = program("prod")
    groups = {
        g.inputs["name"]: g.inputs for g in of_type(run, LOG_GROUP) if g.inputs["name"].startswith("/ecs/")
    }
    assert {n: g["retentionInDays"] for n, g in groups.items()} == {
        "/ecs/wwhd-backend": 30,
        "/ecs/wwhd-backend/performance": 7,
        "/ecs/wwhd-qdrant-prod": 30,
    }
    assert all(g["kmsKeyId"] == key_arn(run) for g in groups.values())
    assert run.outputs["apiLogGroupName"] == "/ecs/wwhd-backend"
    assert run.outputs["performanceLogGroupName"] == "/ecs/wwhd-backend/performance"
    api = api_containers(run)
    assert api[c.API_CONTAINER]["logConfiguration"]["options"] == {
        "awslogs-group": "/ecs/wwhd-backend",
        "awslogs-region": REGION,
        "awslogs-stream-prefix": "api",
    }
    assert api[c.COLLECTOR_CONTAINER]["logConfiguration"]["options"]["awslogs-group"] == "/ecs/wwhd-backend"
    # Prod adopts infra-change-001's cluster and log group by name (imports/prod.json).
    assert one(run, "aws:ecs/cluster:Cluster").inputs["name"] == "wwhd-cluster"
    capacity = one(run, "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")
    assert capacity.inputs["clusterName"] == "wwhd-cluster"


def test_physical_names_default_per_stack() -> None:
    dev = program("dev")
    assert one(dev, "aws:ecs/cluster:Cluster").inputs["name"] == "wwhd-dev"
    assert dev.outputs["apiLogGroupName"] == "/ecs/wwhd-backend-dev"
    from stack_config import parse_stack_config

    cfg = parse_stack_config(
        {
            "environment": "prod",
            "images": {
                "apiTag": "v1",
                "dockerHubCredentialArn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf",
            },
            "loadBalancer": {"certificateArn": CERT},
            "monitoring": {"alarmEmails": ["a@wwhd.ai"]},
            "service": {"clusterName": "c_1", "logGroupName": "/a/b#c"},
        },
        REGION,
    )
    adopted = physical_names(cfg, "prod")
    assert (adopted.cluster, adopted.performance_log_group) == ("c_1", "/a/b#c/performance")


def test_documents_bucket_private_encrypted_versioned_tls_only() -> None:
    run = program("prod")
    bucket = one(run, "aws:s3/bucket:Bucket", "wwhd-documents")
    assert bucket.protect  # storage.protect in prod

    def on_bucket(typ: str) -> Registration:
        return one(run, typ, "wwhd-documents")

    sse = on_bucket(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs
    assert sse["bucket"] == bucket.outputs["id"]
    assert sse["rules"] == [
        {
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn(run)},
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


def listeners(run: ProgramRun) -> dict[int, dict[str, Any]]:
    return {int(r.inputs["port"]): r.inputs for r in of_type(run, LISTENER)}


def test_https_with_certificate_arn_and_redirect() -> None:
    run = program("prod", loadBalancer={"domain": None, "hostedZoneId": None, "certificateArn": CERT})
    found = listeners(run)
    assert set(found) == {80, 443}
    https = found[443]
    assert (
        https["protocol"] == "HTTPS"
        and https["sslPolicy"] == SSL_POLICY == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    )
    assert https["certificateArn"] == CERT
    tg = one(run, "aws:lb/targetGroup:TargetGroup")
    assert https["defaultActions"] == [{"type": "forward", "targetGroupArn": tg.outputs["arn"]}]
    assert found[80]["defaultActions"] == [
        {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
    ]
    alb = one(run, "aws:lb/loadBalancer:LoadBalancer")
    assert run.outputs["serviceUrl"] == f"https://{alb.outputs['dnsName']}"
    assert of_type(run, "aws:acm/certificate:Certificate") == []


def test_https_with_domain_issues_and_validates_a_certificate() -> None:
    run = program("prod")
    cert = one(run, "aws:acm/certificate:Certificate")
    assert cert.inputs["domainName"] == "api.wwhd.ai" and cert.inputs["validationMethod"] == "DNS"
    option = cert.outputs["domainValidationOptions"][0]
    records = {r.name: r.inputs for r in of_type(run, "aws:route53/record:Record")}
    validation_record = records["wwhd-lb-cert-validation"]
    assert validation_record["zoneId"] == "Z0123456789ABCDEFGHIJ"
    assert validation_record["name"] == option["resourceRecordName"]
    assert validation_record["type"] == "CNAME"
    assert validation_record["records"] == [option["resourceRecordValue"]]
    validation = one(run, "aws:acm/certificateValidation:CertificateValidation")
    assert validation.inputs["certificateArn"] == cert.outputs["arn"]
    alias = records["wwhd-lb-alias"]
    alb = one(run, "aws:lb/loadBalancer:LoadBalancer")
    assert alias["name"] == "api.wwhd.ai" and alias["type"] == "A"
    assert alias["aliases"] == [
        {"name": alb.outputs["dnsName"], "zoneId": alb.outputs["zoneId"], "evaluateTargetHealth": True}
    ]
    # The listener takes the certificate through its validation, so it waits for issuance.
    assert validation.urn in one(run, LISTENER, "wwhd-lb-https").dependencies
    assert run.outputs["serviceUrl"] == "https://api.wwhd.ai"


def test_plain_http_in_dev() -> None:
    run = program("dev")
    found = listeners(run)
    assert set(found) == {80}
    assert found[80]["protocol"] == "HTTP" and found[80]["defaultActions"][0]["type"] == "forward"
    alb = one(run, "aws:lb/loadBalancer:LoadBalancer")
    assert run.outputs["serviceUrl"] == f"http://{alb.outputs['dnsName']}"


def test_plain_http_beside_a_certificate_in_dev() -> None:
    found = listeners(program("dev", loadBalancer={"certificateArn": CERT}))
    assert set(found) == {80, 443}
    assert found[80]["defaultActions"][0]["type"] == "forward"


def test_alb_and_target_group() -> None:
    run = program("dev", loadBalancer={"idleTimeout": 120, "deregistrationDelay": 15})
    alb = one(run, "aws:lb/loadBalancer:LoadBalancer").inputs
    assert alb["internal"] is False and alb["loadBalancerType"] == "application"
    assert alb["subnets"] == run.outputs["publicSubnetIds"]
    assert alb["securityGroups"] == [one(run, "aws:ec2/securityGroup:SecurityGroup", "wwhd-lb").outputs["id"]]
    assert alb["idleTimeout"] == 120 and alb["dropInvalidHeaderFields"] is True
    tg = one(run, "aws:lb/targetGroup:TargetGroup").inputs
    assert (tg["port"], tg["protocol"], tg["targetType"]) == (8000, "HTTP", "ip")
    assert int(tg["deregistrationDelay"]) == 15
    hc = tg["healthCheck"]
    assert (hc["path"], hc["healthyThreshold"], hc["unhealthyThreshold"], hc["timeout"], hc["interval"], hc["matcher"]) == (
        "/health", 2, 3, 5, 30, "200",
    )  # fmt: skip
    assert tg["stickiness"]["type"] == "lb_cookie" and tg["stickiness"]["enabled"] is True


def test_access_logs_in_prod() -> None:
    run = program("prod")
    alb = one(run, "aws:lb/loadBalancer:LoadBalancer")
    assert alb.inputs["enableDeletionProtection"] is True
    bucket = one(run, "aws:s3/bucket:Bucket", "wwhd-lb-alb-logs")
    assert alb.inputs["accessLogs"] == {"bucket": bucket.outputs["bucket"], "enabled": True}
    sse = one(
        run,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "wwhd-lb-alb-logs",
    )
    # ALB access logs accept SSE-S3 only.
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    lifecycle = one(
        run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "wwhd-lb-alb-logs"
    )
    assert lifecycle.inputs["rules"][0]["expiration"] == {"days": 90}
    policy = one(run, "aws:s3/bucketPolicy:BucketPolicy", "wwhd-lb-alb-logs")
    allow = next(s for s in json.loads(policy.inputs["policy"])["Statement"] if s["Effect"] == "Allow")
    assert allow["Principal"] == {"AWS": f"arn:aws:iam::{ELB_ACCOUNT}:root"}
    assert allow["Action"] == "s3:PutObject"
    assert allow["Resource"] == f"{bucket.outputs['arn']}/AWSLogs/{ACCOUNT_ID}/*"
    assert policy.urn in alb.dependencies  # ELB checks write access when logging is enabled


def test_no_access_logs_or_protection_in_dev() -> None:
    run = program("dev")
    alb = one(run, "aws:lb/loadBalancer:LoadBalancer").inputs
    assert alb["enableDeletionProtection"] is False and "accessLogs" not in alb
    assert [b.name for b in of_type(run, "aws:s3/bucket:Bucket")] == ["wwhd-documents"]
    assert not one(run, "aws:s3/bucket:Bucket", "wwhd-documents").protect


# --- the API service and its scaling --------------------------------------------------------


def test_api_service() -> None:
    run = program("prod", service={"healthCheckGraceSeconds": 90})
    svc = one(run, ECS_SERVICE, "wwhd-api")
    i = svc.inputs
    cluster = one(run, "aws:ecs/cluster:Cluster")
    assert i["cluster"] == cluster.outputs["arn"]
    assert i["taskDefinition"] == one(run, TASK_DEFINITION, "wwhd-api").outputs["arn"]
    assert i["desiredCount"] == 2 and "launchType" not in i
    assert i["networkConfiguration"] == {
        "subnets": run.outputs["privateSubnetIds"],
        "securityGroups": [one(run, "aws:ec2/securityGroup:SecurityGroup", "wwhd-api").outputs["id"]],
        "assignPublicIp": False,
    }
    tg = one(run, "aws:lb/targetGroup:TargetGroup")
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
    for listener in of_type(run, LISTENER):
        assert listener.urn in svc.dependencies
    assert one(run, ROLE_POLICY, "wwhd-api-execution").urn in svc.dependencies
    assert cluster.inputs["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    providers = one(run, "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")
    assert providers.inputs["clusterName"] == cluster.outputs["name"]
    assert set(providers.inputs["capacityProviders"]) == {"FARGATE", "FARGATE_SPOT"}
    assert providers.urn in svc.dependencies


def test_prod_and_dev_differ() -> None:
    prod_api = one(program("prod"), ECS_SERVICE, "wwhd-api").inputs
    # One task always on demand, every further one on Spot (issue 20's budget).
    assert prod_api["capacityProviderStrategies"] == [
        {"capacityProvider": "FARGATE", "base": 1, "weight": 0},
        {"capacityProvider": "FARGATE_SPOT", "weight": 1},
    ]
    assert (prod_api["deploymentMinimumHealthyPercent"], prod_api["deploymentMaximumPercent"]) == (100, 200)
    assert env(api_containers(program("prod"))[c.API_CONTAINER])["APP_ENV"] == "production"


def test_dev_runs_on_spot_single_writer() -> None:
    api = one(program("dev"), ECS_SERVICE, "wwhd-api").inputs
    assert api["capacityProviderStrategies"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    # SQLite and Qdrant on EFS in the task: stop the old task before starting the new one.
    assert (api["deploymentMinimumHealthyPercent"], api["deploymentMaximumPercent"]) == (0, 100)
    assert api["desiredCount"] == 1


@pytest.mark.parametrize(
    ("spot_percent", "qdrant_provider"), [(0, "FARGATE"), (50, "FARGATE"), (100, "FARGATE_SPOT")]
)
def test_qdrant_singleton_is_on_spot_only_in_an_all_spot_stack(
    spot_percent: int, qdrant_provider: str
) -> None:
    """An API Spot share spreads many tasks; applied to the only Qdrant task it is a coin toss."""
    run = program("prod", service={"spotPercent": spot_percent, "onDemandBase": 0}, qdrant=SERVICE)
    qdrant = one(run, ECS_SERVICE, "wwhd-qdrant").inputs
    assert qdrant["capacityProviderStrategies"] == [{"capacityProvider": qdrant_provider, "weight": 1}]


def test_autoscaling_targets_and_policies() -> None:
    run = program("prod", service={"requestsPerTarget": 500})
    target = one(run, "aws:appautoscaling/target:Target")
    svc = one(run, ECS_SERVICE, "wwhd-api")
    cluster = one(run, "aws:ecs/cluster:Cluster")
    assert target.inputs["resourceId"] == f"service/{cluster.outputs['name']}/{svc.outputs['name']}"
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (2, 20)
    assert target.inputs["scalableDimension"] == "ecs:service:DesiredCount"
    policies = {}
    for p in of_type(run, SCALING_POLICY):
        assert p.inputs["policyType"] == "TargetTrackingScaling"
        assert p.inputs["resourceId"] == target.inputs["resourceId"]
        conf = p.inputs["targetTrackingScalingPolicyConfiguration"]
        assert (conf["scaleInCooldown"], conf["scaleOutCooldown"]) == (300, 60)
        spec = conf["predefinedMetricSpecification"]
        policies[spec["predefinedMetricType"]] = (conf["targetValue"], spec.get("resourceLabel"))
    alb = one(run, "aws:lb/loadBalancer:LoadBalancer").outputs["arnSuffix"]
    tg = one(run, "aws:lb/targetGroup:TargetGroup").outputs["arnSuffix"]
    assert policies == {
        "ECSServiceAverageCPUUtilization": (70, None),
        "ECSServiceAverageMemoryUtilization": (80, None),
        "ALBRequestCountPerTarget": (500, f"{alb}/{tg}"),
    }
    assert svc.inputs["desiredCount"] == 2


def test_no_autoscaling_when_max_equals_min() -> None:
    run = program("prod", service={"minCount": 2, "desiredCount": 2, "maxCount": 2})
    assert of_type(run, "aws:appautoscaling/target:Target") == []
    assert of_type(run, SCALING_POLICY) == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_parked_api_runs_no_task(stack: str) -> None:
    """desiredCount 0 with minCount 0 (docs/operations.md: stopping the tasks out of hours; the
    take-over's dark window): no task, no autoscaling to hold the count, no missing-task alarm."""
    run = program(stack, service={"desiredCount": 0, "minCount": 0})
    assert one(run, ECS_SERVICE, "wwhd-api").inputs["desiredCount"] == 0
    assert of_type(run, "aws:appautoscaling/target:Target") == []
    alarms = [a.inputs["name"] for a in of_type(run, "aws:cloudwatch/metricAlarm:MetricAlarm")]
    assert f"wwhd-{stack}-api-tasks-below-desired" not in alarms
    assert f"wwhd-{stack}-api-tasks-below-desired" in [
        a.inputs["name"] for a in of_type(program(stack), "aws:cloudwatch/metricAlarm:MetricAlarm")
    ]


def test_components_and_their_children() -> None:
    """The platform holds what services share; each service holds what is its own."""
    run = program("prod")
    by_urn = {r.urn: r for r in run.registrations}

    def owner(typ: str, name: str) -> str:
        parent = by_urn[one(run, typ, name).parent]
        while parent.type not in ("wwhd:index:WwhdPlatform", "wwhd:index:WwhdService"):
            parent = by_urn[parent.parent]
        return f"{parent.type.rsplit(':', 1)[1]} {parent.name}"

    assert owner("aws:ecs/cluster:Cluster", "wwhd-cluster") == "WwhdPlatform wwhd"
    assert owner("aws:lb/loadBalancer:LoadBalancer", "wwhd-lb-alb") == "WwhdPlatform wwhd"
    assert owner("aws:ecr/repository:Repository", "wwhd-api") == "WwhdPlatform wwhd"
    assert owner(SSM_PARAMETER, "wwhd-jwt-secret") == "WwhdPlatform wwhd"
    for name in ("wwhd-api-task", "wwhd-api-execution"):
        assert owner(ROLE, name) == "WwhdService wwhd-api"
    assert owner(ECS_SERVICE, "wwhd-qdrant") == "WwhdService wwhd-qdrant"
    assert owner(LOG_GROUP, "wwhd-qdrant-logs") == "WwhdService wwhd-qdrant"


# --- issue 17: what keeps working on day 8 -------------------------------------------------


@pytest.mark.parametrize(("stack", "idle"), [("dev", 60), ("prod", 600), ("dev", 4000)])
def test_server_keeps_idle_connections_longer_than_the_load_balancer(stack: str, idle: int) -> None:
    """Uvicorn closes idle keep-alive connections after 5 s by default; the load balancer keeps
    them for its idle timeout and would send the next request into a closing socket (a 502)."""
    run = program(stack, loadBalancer={"idleTimeout": idle})
    alb_idle = one(run, "aws:lb/loadBalancer:LoadBalancer").inputs["idleTimeout"]
    keep_alive = int(env(api_containers(run)[c.API_CONTAINER])["UVICORN_TIMEOUT_KEEP_ALIVE"])
    assert alb_idle == idle and keep_alive > alb_idle


def test_repositories_never_collide_with_the_hand_made_one() -> None:
    """Issue 17, item 5: the account holds a hand-made wwhd-dev-backend; dev's repository was
    named the same and `pulumi up -s dev` failed until it was deleted."""
    assert one(program("dev"), "aws:ecr/repository:Repository").inputs["name"] == "wwhd/dev/api"
    # Prod keeps the repository it has pushed to (ECR cannot rename one).
    assert one(program("prod"), "aws:ecr/repository:Repository").inputs["name"] == "wwhd-prod-backend"


def test_prod_pulls_only_from_the_accounts_registry() -> None:
    """Issue 17, item 6: Docker Hub limits anonymous pulls per IP and every task pulls through
    the same NAT address; prod's third-party images come through pull-through cache rules."""
    run = program("prod")
    registry = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/"
    for task in of_type(run, TASK_DEFINITION):
        for container in containers(task).values():
            assert container["image"].startswith(registry), container["image"]
    qdrant = containers(one(run, TASK_DEFINITION, "wwhd-qdrant"))[c.QDRANT_CONTAINER]["image"]
    assert qdrant == f"{registry}wwhd-prod/docker-hub/qdrant/qdrant:v1.16.2"
    collector = api_containers(run)[c.COLLECTOR_CONTAINER]["image"]
    assert collector.startswith(f"{registry}wwhd-prod/ecr-public/aws-observability/aws-otel-collector:v")
    rules = {
        r.inputs["ecrRepositoryPrefix"]: r.inputs
        for r in of_type(run, "aws:ecr/pullThroughCacheRule:PullThroughCacheRule")
    }
    assert rules["wwhd-prod/docker-hub"]["upstreamRegistryUrl"] == "registry-1.docker.io"
    assert (
        rules["wwhd-prod/docker-hub"]["credentialArn"]
        .split(":secret:")[1]
        .startswith("ecr-pullthroughcache/")
    )
    assert rules["wwhd-prod/ecr-public"]["upstreamRegistryUrl"] == "public.ecr.aws"
    assert "credentialArn" not in rules["wwhd-prod/ecr-public"]
    templates = of_type(run, "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate")
    assert {t.inputs["prefix"] for t in templates} == set(rules)
    assert all(t.inputs["imageTagMutability"] == "IMMUTABLE" for t in templates)
    # Dev pulls public images directly (the pack's advisory level there).
    assert (
        containers(one(program("dev"), TASK_DEFINITION, "wwhd-api"))[c.QDRANT_CONTAINER]["image"]
        == "qdrant/qdrant:v1.16.2"
    )


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("qdrant/qdrant:v1.16.2", "R/wwhd-prod/docker-hub/qdrant/qdrant:v1.16.2"),
        ("nginx:1.27", "R/wwhd-prod/docker-hub/library/nginx:1.27"),
        (
            "docker.io/qdrant/qdrant@sha256:" + "a" * 64,
            "R/wwhd-prod/docker-hub/qdrant/qdrant@sha256:" + "a" * 64,
        ),
        ("public.ecr.aws/a/b:1", "R/wwhd-prod/ecr-public/a/b:1"),
        ("ghcr.io/qdrant/qdrant/qdrant:v1.16.2", "ghcr.io/qdrant/qdrant/qdrant:v1.16.2"),
        (
            "1.dkr.ecr.us-west-2.amazonaws.com/wwhd/prod/api:v1",
            "1.dkr.ecr.us-west-2.amazonaws.com/wwhd/prod/api:v1",
        ),
    ],
)
def test_cached_references(reference: str, expected: str) -> None:
    from workloads import cached_reference

    prefixes = {"docker.io": "wwhd-prod/docker-hub", "public.ecr.aws": "wwhd-prod/ecr-public"}
    assert cached_reference(reference, "R", prefixes) == expected
    assert cached_reference(reference, "R", {}) == reference


def _rules(run: ProgramRun) -> set[tuple[str, str, int, str]]:
    """(direction, group, port, peer) of every security group rule, groups by logical name."""
    groups = {
        g.outputs["id"]: g.name.removeprefix("wwhd-")
        for g in of_type(run, "aws:ec2/securityGroup:SecurityGroup")
    }
    found = set()
    for typ, direction in (
        ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "in"),
        ("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "out"),
    ):
        for r in of_type(run, typ):
            i = r.inputs
            peer = groups.get(i.get("referencedSecurityGroupId", ""), i.get("cidrIpv4") or i.get("cidrIpv6"))
            found.add((direction, groups[i["securityGroupId"]], int(i["fromPort"]), peer))
    return found


def test_every_rule_follows_from_what_the_stack_has() -> None:
    """Issue 17, item 8: dev opened 443 without an HTTPS listener; prod's API group kept NFS rules
    though the API keeps nothing on EFS there."""
    dev, prod = _rules(program("dev")), _rules(program("prod"))
    assert not {r for r in dev if r[1] == "lb" and r[2] == 443}  # dev: plain HTTP only
    assert {("in", "lb", 443, "0.0.0.0/0"), ("in", "lb", 443, "::/0")} <= prod
    assert ("out", "api", 2049, "efs") in dev and ("in", "efs", 2049, "api") in dev
    assert not {r for r in prod if r[1] == "api" and r[2] == 2049}
    assert not {r for r in prod if r[1] == "efs" and r[3] == "api"}
    # Prod's Qdrant keeps its storage on its host's volume: it reaches no file system, and its
    # group lets in only the API (the instance's own group carries the host's egress).
    assert not {r for r in prod if r[2] == 2049}
    assert {r for r in prod if r[1] == "qdrant"} == {("in", "qdrant", 6333, "api")}
    # As a Fargate service its storage is on EFS, so it alone mounts there.
    assert ("in", "efs", 2049, "qdrant") in _rules(topology("prod-service-postgres"))
    # No file system at all when nothing keeps files on EFS.
    external = _rules(program("prod", qdrant=EXTERNAL))
    assert not {r for r in external if 2049 in (r[2],)}
    assert "efs" not in {r[1] for r in external}


def test_iam_database_authentication_is_used() -> None:
    """Issue 17, item 8: a setting that does nothing is gone or used. IAM authentication is on
    because the API connects with it."""
    run = program("prod")
    assert one(run, "aws:rds/instance:Instance").inputs["iamDatabaseAuthenticationEnabled"] is True
    assert "DatabaseConnect" in grants(policy_doc(run, "wwhd-api-task"))
    assert env(api_containers(run)[c.API_CONTAINER])["DB_AUTH"] == "iam"
