"""The services the program composes on the platform, per topology: what reaches the containers,
who may do what, how they are found, routed and scaled. Each topology is the real program run
under the mocks with its stack file and a few keys changed."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from components import containers as c
from components.load_balancer import SSL_POLICY
from tools.mocks import ACCOUNT_ID, ProgramRun, Registration, load_stack_config, run_program
from workloads import physical_names

from .conftest import ROOT

REGION = "us-west-2"
CERT = f"arn:aws:acm:{REGION}:{ACCOUNT_ID}:certificate/0f0e0d0c-1111-2222-3333-444455556666"
QDRANT_KEY = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:qdrant-cloud-AbCdEf"
ELB_ACCOUNT = "797873946194"

TASK_DEF = "aws:ecs/taskDefinition:TaskDefinition"
ECS_SERVICE = "aws:ecs/service:Service"
LISTENER = "aws:lb/listener:Listener"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY = "aws:appautoscaling/policy:Policy"
SECRET = "aws:secretsmanager/secret:Secret"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SECRET_CREDENTIALS = {"OPENAI_API_KEY", "JWT_SECRET", "DB_USER", "DB_PASSWORD", "QDRANT_API_KEY"}
EXTERNAL = {"placement": "external", "url": "https://q.cloud.qdrant.io"}


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
    "prod-service-postgres": ("prod", {}),
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
    return containers(one(run, TASK_DEF, "wwhd-api"))


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
    for task in of_type(run, TASK_DEF):
        for container in containers(task).values():
            assert not SECRET_CREDENTIALS & set(env(container)), container["name"]
            for value in env(container).values():
                assert "@" not in value.split("//", 1)[-1].split("/", 1)[0], f"credentials in {value}"
    injected = secrets(api_containers(run)[c.API_CONTAINER])
    assert injected["OPENAI_API_KEY"] == one(run, SECRET, "wwhd-openai-api-key").outputs["arn"]
    assert injected["JWT_SECRET"] == one(run, SECRET, "wwhd-jwt-secret").outputs["arn"]


def test_postgres_credentials_from_the_rds_secret() -> None:
    run = program("prod")
    api = api_containers(run)[c.API_CONTAINER]
    db = one(run, "aws:rds/instance:Instance").outputs
    secret = db["masterUserSecrets"][0]["secretArn"]
    assert secrets(api)["DB_USER"] == f"{secret}:username::"
    assert secrets(api)["DB_PASSWORD"] == f"{secret}:password::"
    assert env(api)["DATABASE_URL"] == f"postgresql://{db['address']}:5432/wwhd?sslmode=require"
    assert not any(m["sourceVolume"] == c.DATA_VOLUME for m in api["mountPoints"])


def test_sqlite_on_the_api_access_point() -> None:
    run = program("dev")
    task = one(run, TASK_DEF, "wwhd-api")
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
    assert api["image"] == f"{repo}:v0.1.0"
    assert api["portMappings"] == [{"containerPort": 8000, "protocol": "tcp", "name": "http"}]


def test_api_image_by_digest() -> None:
    digest = "sha256:" + "ab" * 32
    run = program("dev", images={"apiTag": digest})
    repo = one(run, "aws:ecr/repository:Repository").outputs["repositoryUrl"]
    assert api_containers(run)[c.API_CONTAINER]["image"] == f"{repo}@{digest}"


def test_containers_are_hardened() -> None:
    run = program("dev", monitoring={"tracing": True})
    task = one(run, TASK_DEF, "wwhd-api")
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
        params["volumes"] = i["volumes"]
    return params


def _shape() -> Any:
    return (
        botocore.session.get_session()
        .get_service_model("ecs")
        .operation_model("RegisterTaskDefinition")
        .input_shape
    )


VALIDATION_CASES = [
    (name, arch) for name in ("dev-sidecar-tracing-exec", "prod-service-postgres", "prod-external-postgres")
    for arch in ("x86_64", "arm64")
] + [("dev-sidecar-sqlite", "x86_64"), ("staging-service-sqlite", "arm64")]  # fmt: skip


@pytest.mark.parametrize(("name", "arch"), VALIDATION_CASES)
def test_task_definitions_pass_the_ecs_api_model(name: str, arch: str) -> None:
    stack, changes = TOPOLOGIES[name]
    service = {**changes.get("service", {}), "cpuArchitecture": arch}
    run = program(stack, **{**changes, "service": service})
    tasks = of_type(run, TASK_DEF)
    assert len(tasks) == (2 if "-service-" in name else 1)
    for task in tasks:
        params = _register_params(task)
        report = ParamValidator().validate(params, _shape())
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
    bad = {
        "family": "f",
        "containerDefinitions": [{"name": "a", "portMappings": [{"containerPort": 80.0}], "bogus": 1}],
    }
    assert ParamValidator().validate(bad, _shape()).has_errors()


@pytest.mark.parametrize(("cpu", "memory"), [(256, 512), (512, 1024), (2048, 4096), (16384, 122880)])
@pytest.mark.parametrize("sidecar", [True, False])
@pytest.mark.parametrize("tracing", [True, False])
def test_container_shares_fill_the_task(cpu: int, memory: int, sidecar: bool, tracing: bool) -> None:
    shares = c.split_task(cpu, memory, qdrant_sidecar=sidecar, tracing=tracing)
    assert sum(s.cpu for s in shares.values()) == cpu
    assert sum(s.memory for s in shares.values()) == memory
    assert all(s.cpu > 0 and s.memory >= 128 for s in shares.values())


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
    volumes = {v["name"]: v for v in one(run, TASK_DEF, "wwhd-api").inputs["volumes"]}
    ap = one(run, "aws:efs/accessPoint:AccessPoint", "wwhd-qdrant-ap").outputs["id"]
    assert volumes[c.QDRANT_VOLUME]["efsVolumeConfiguration"]["authorizationConfig"]["accessPointId"] == ap
    assert qdrant["logConfiguration"]["options"]["awslogs-group"] == run.outputs["qdrantLogGroupName"]
    assert len(of_type(run, ECS_SERVICE)) == 1
    assert of_type(run, "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace") == []
    assert run.outputs["qdrantServiceName"] is None


def test_service_topology() -> None:
    run = program("prod")
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

    task = one(run, TASK_DEF, "wwhd-qdrant")
    assert (task.inputs["cpu"], task.inputs["memory"]) == ("512", "1024")
    assert task.inputs["taskRoleArn"] == one(run, ROLE, "wwhd-qdrant-task").outputs["arn"]
    assert task.inputs["executionRoleArn"] == one(run, ROLE, "wwhd-qdrant-execution").outputs["arn"]
    qdrant = containers(task)[c.QDRANT_CONTAINER]
    assert "QDRANT__SERVICE__HOST" not in env(qdrant)  # must listen on the task's ENI
    targets = of_type(run, "aws:appautoscaling/target:Target")
    assert all("wwhd-qdrant" not in t.inputs["resourceId"] for t in targets)


def test_external_topology_creates_the_key_secret() -> None:
    run = program("prod", qdrant=EXTERNAL)
    api = api_containers(run)[c.API_CONTAINER]
    assert env(api)["QDRANT_URL"] == "https://q.cloud.qdrant.io"
    key = one(run, SECRET, "wwhd-qdrant-api-key")
    assert key.inputs["name"] == "wwhd/prod/qdrant-api-key"
    assert secrets(api)["QDRANT_API_KEY"] == key.outputs["arn"]
    # The operator fills it: no version from the stack.
    versions = of_type(run, "aws:secretsmanager/secretVersion:SecretVersion")
    assert all(v.inputs["secretId"] != key.outputs["id"] for v in versions)
    assert set(api_containers(run)) == {c.API_CONTAINER, c.XRAY_CONTAINER}
    assert run.outputs["qdrantLogGroupName"] is None


def test_external_topology_uses_a_given_key_secret() -> None:
    run = program("prod", qdrant={**EXTERNAL, "apiKeySecretArn": QDRANT_KEY})
    api = api_containers(run)[c.API_CONTAINER]
    assert secrets(api)["QDRANT_API_KEY"] == QDRANT_KEY
    assert [s.name for s in of_type(run, SECRET) if "qdrant" in s.name] == []
    assert QDRANT_KEY in grants(policy_doc(run, "wwhd-api-execution"))["ReadInjectedSecrets"][1]


def test_tracing_adds_the_xray_daemon() -> None:
    defs = api_containers(program("prod"))
    xray = defs[c.XRAY_CONTAINER]
    assert xray["image"].startswith("public.ecr.aws/xray/aws-xray-daemon:3.")
    assert xray["essential"] is False
    assert xray["portMappings"] == [{"containerPort": 2000, "protocol": "udp"}]
    assert xray["logConfiguration"]["options"]["awslogs-group"] == "/ecs/wwhd-backend"
    assert env(defs[c.API_CONTAINER])["AWS_XRAY_DAEMON_ADDRESS"] == "localhost:2000"


def test_no_tracing_no_daemon() -> None:
    defs = api_containers(program("dev"))
    assert c.XRAY_CONTAINER not in defs
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
    db_secret = one(run, "aws:rds/instance:Instance").outputs["masterUserSecrets"][0]["secretArn"]
    assert grants(policy_doc(run, "wwhd-api-execution")) == {
        "ReadInjectedSecrets": (
            frozenset({"secretsmanager:GetSecretValue"}),
            frozenset(
                {
                    one(run, SECRET, "wwhd-openai-api-key").outputs["arn"],
                    one(run, SECRET, "wwhd-jwt-secret").outputs["arn"],
                    db_secret,
                }
            ),
        ),
        "DecryptWithStackKey": (frozenset({"kms:Decrypt"}), frozenset({key_arn(run)})),
    }
    # The Qdrant service's execution role gets the managed policy only: no secret at all.
    assert [
        p.name for p in of_type(run, ROLE_POLICY) if p.inputs["role"] == roles["wwhd-qdrant-execution"]
    ] == []


@pytest.mark.parametrize(("tracing", "ecs_exec"), [(False, False), (True, True)])
def test_api_task_role_grants(tracing: bool, ecs_exec: bool) -> None:
    run = program("dev", monitoring={"tracing": tracing}, service={"ecsExec": ecs_exec})
    role = one(run, ROLE, "wwhd-api-task").outputs["name"]
    assert one(run, ROLE_POLICY, "wwhd-api-task").inputs["role"] == role
    doc = policy_doc(run, "wwhd-api-task")
    bucket = one(run, "aws:s3/bucket:Bucket", "wwhd-documents").outputs["arn"]
    perf = one(run, LOG_GROUP, "wwhd-api-performance-logs").outputs["arn"]
    fs = one(run, "aws:efs/fileSystem:FileSystem").outputs["arn"]
    efs = frozenset({"elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"})
    expected = {
        "SqliteAccessPoint": (efs, frozenset({fs})),
        "QdrantAccessPoint": (efs, frozenset({fs})),
        "DocumentsObjects": (
            frozenset({"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}),
            frozenset({f"{bucket}/*"}),
        ),
        "DocumentsList": (frozenset({"s3:ListBucket"}), frozenset({bucket})),
        "DocumentsEncryption": (frozenset({"kms:Decrypt", "kms:GenerateDataKey"}), frozenset({key_arn(run)})),
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
    for sid, ap in (("SqliteAccessPoint", "wwhd-api-ap"), ("QdrantAccessPoint", "wwhd-qdrant-ap")):
        arn = one(run, "aws:efs/accessPoint:AccessPoint", ap).outputs["arn"]
        assert conditions[sid] == {"StringEquals": {"elasticfilesystem:AccessPointArn": arn}}
    assert one(run, ECS_SERVICE, "wwhd-api").inputs["enableExecuteCommand"] is ecs_exec


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_no_wildcard_actions_and_star_resources_only_where_unscoped(name: str) -> None:
    run = topology(name)
    for policy in of_type(run, ROLE_POLICY):
        for st in json.loads(policy.inputs["policy"])["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            assert not any("*" in a for a in actions), (policy.name, actions)
            if "*" in resources:
                assert all(a.split(":")[0] in ("xray", "ssmmessages", "logs") for a in actions), (
                    policy.name,
                    actions,
                )


def test_qdrant_task_role_mounts_its_access_point_only() -> None:
    run = program("prod")
    assert (
        one(run, ROLE_POLICY, "wwhd-qdrant-task").inputs["role"]
        == one(run, ROLE, "wwhd-qdrant-task").outputs["name"]
    )
    doc = policy_doc(run, "wwhd-qdrant-task")
    fs = one(run, "aws:efs/fileSystem:FileSystem").outputs["arn"]
    assert grants(doc) == {
        "QdrantStorage": (
            frozenset({"elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"}),
            frozenset({fs}),
        )
    }
    ap = one(run, "aws:efs/accessPoint:AccessPoint", "wwhd-qdrant-ap").outputs["arn"]
    assert doc["Statement"][0]["Condition"] == {"StringEquals": {"elasticfilesystem:AccessPointArn": ap}}
    # With Qdrant elsewhere and Postgres, the API task mounts nothing.
    assert not any(sid.endswith("AccessPoint") for sid in grants(policy_doc(run, "wwhd-api-task")))


def test_the_file_system_policy_admits_each_writer_through_its_access_point() -> None:
    run = program("prod")
    policy = json.loads(one(run, "aws:efs/fileSystemPolicy:FileSystemPolicy").inputs["policy"])
    allowed = {s["Sid"]: s for s in policy["Statement"] if s["Effect"] == "Allow"}
    assert set(allowed) == {"QdrantMountsQdrant"}
    assert allowed["QdrantMountsQdrant"]["Principal"] == {
        "AWS": one(run, ROLE, "wwhd-qdrant-task").outputs["arn"]
    }


# --- secrets, images, logs, bucket ------------------------------------------------------------


def test_secrets_encrypted_named_and_recoverable() -> None:
    run = program("dev")
    names = {s.inputs["name"] for s in of_type(run, SECRET)}
    assert names == {"wwhd/dev/openai-api-key", "wwhd/dev/jwt-secret"}
    for s in of_type(run, SECRET):
        assert s.inputs["kmsKeyId"] == key_arn(run)
        assert s.inputs["recoveryWindowInDays"] == 7
    versions = {v.name: v for v in of_type(run, "aws:secretsmanager/secretVersion:SecretVersion")}
    # No OpenAI key in the stack file: the operator sets it; the JWT secret is generated.
    assert set(versions) == {"wwhd-jwt-secret"}
    random = one(run, "random:index/randomPassword:RandomPassword")
    assert random.inputs["length"] == 64
    assert random.urn in versions["wwhd-jwt-secret"].dependencies


def test_openai_key_from_the_stack_config() -> None:
    run = program("dev", openaiApiKey="sk-test-not-a-real-key")
    versions = {v.name for v in of_type(run, "aws:secretsmanager/secretVersion:SecretVersion")}
    assert versions == {"wwhd-openai-api-key", "wwhd-jwt-secret"}


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
    assert api[c.XRAY_CONTAINER]["logConfiguration"]["options"]["awslogs-group"] == "/ecs/wwhd-backend"
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
            "images": {"apiTag": "v1"},
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
    assert i["taskDefinition"] == one(run, TASK_DEF, "wwhd-api").outputs["arn"]
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
    assert prod_api["capacityProviderStrategies"] == [{"capacityProvider": "FARGATE", "weight": 1}]
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
    qdrant = one(program("prod", service={"spotPercent": spot_percent}), ECS_SERVICE, "wwhd-qdrant").inputs
    assert qdrant["capacityProviderStrategies"] == [{"capacityProvider": qdrant_provider, "weight": 1}]


def test_autoscaling_targets_and_policies() -> None:
    run = program("prod", service={"requestsPerTarget": 500})
    target = one(run, "aws:appautoscaling/target:Target")
    svc = one(run, ECS_SERVICE, "wwhd-api")
    cluster = one(run, "aws:ecs/cluster:Cluster")
    assert target.inputs["resourceId"] == f"service/{cluster.outputs['name']}/{svc.outputs['name']}"
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (2, 10)
    assert target.inputs["scalableDimension"] == "ecs:service:DesiredCount"
    policies = {}
    for p in of_type(run, POLICY):
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
    assert of_type(run, POLICY) == []


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
    assert owner(SECRET, "wwhd-jwt-secret") == "WwhdPlatform wwhd"
    for name in ("wwhd-api-task", "wwhd-api-execution"):
        assert owner(ROLE, name) == "WwhdService wwhd-api"
    assert owner(ECS_SERVICE, "wwhd-qdrant") == "WwhdService wwhd-qdrant"
    assert owner(LOG_GROUP, "wwhd-qdrant-logs") == "WwhdService wwhd-qdrant"
