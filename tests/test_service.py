"""WwhdService: one ECS service as a value -- its roles, log groups, task definition, routing
(the platform's default target group, or a target group and listener rule of its own),
discovery and scaling -- built from typed args, without the rest of the program."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components import service as ecs
from components.legacy import Legacy
from components.load_balancer import TargetGroupRef
from components.service_iam import Scope, execution_policy, secret_source
from tests.support import BOUNDARY
from tools.mocks import ACCOUNT_ID, RecordingMonitor, resolve, settle

REGION = "us-west-2"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/test"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:wwhd/test/token-AbCdEf"
LISTENER_ARN = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT_ID}:listener/app/wwhd/0123/4567"
SCOPE = Scope(REGION, ACCOUNT_ID, "alias/wwhd-test")
STACK_KEY = {
    "Resource": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/*",
    "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/wwhd-test"}},
}


def container(**extra: Any) -> dict[str, Any]:
    return {
        "name": "web",
        "image": "123456789012.dkr.ecr.us-west-2.amazonaws.com/wwhd/test/web:v1",
        "essential": True,
        "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
        **extra,
    }


def args(**overrides: Any) -> ecs.WwhdServiceArgs:
    listener = pulumi.CustomResource("test:index:Listener", "listener")
    values: dict[str, Any] = {
        "cluster": ecs.ClusterRef(
            name="wwhd-test", arn=f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:cluster/wwhd-test", region=REGION
        ),
        "task": ecs.TaskSpec(family="wwhd-test-web", containers=[container()], cpu=256, memory=512),
        "network": ecs.ServiceNetwork(["subnet-0a", "subnet-0b"], ["sg-0web"]),
        "scaling": ecs.Scaling(desired=1, minimum=1, maximum=3, spot_percent=50, on_demand_base=1),
        "logs": ecs.Logs(ecs.LogGroupSpec("/ecs/wwhd-test-web", 14)),
        "encryption": ecs.Encryption(KEY, "alias/wwhd-test"),
        "permissions": ecs.Permissions(boundary_arn=BOUNDARY),
        "routing": ecs.Route(
            container="web",
            port=8080,
            load_balancer_arn_suffix="app/wwhd/0123",
            listeners=[listener],
            listener_arn=LISTENER_ARN,
            vpc_id="vpc-0test",
            paths=["/web/*"],
            host="web.wwhd.ai",
            priority=10,
            health_check_path="/ready",
        ),
    }
    return ecs.WwhdServiceArgs(**(values | overrides))


def build(monitor: RecordingMonitor, name: str = "wwhd-svc-web", **overrides: Any) -> ecs.WwhdService:
    service = ecs.WwhdService(name, args(**overrides))
    settle()
    return service


def test_own_target_group_and_rule_by_path_and_host(mocks: RecordingMonitor) -> None:
    build(mocks)
    tg = mocks.one("aws:lb/targetGroup:TargetGroup")
    assert (tg.inputs["port"], tg.inputs["protocol"], tg.inputs["targetType"]) == (8080, "HTTP", "ip")
    assert tg.inputs["healthCheck"]["path"] == "/ready"
    rule = mocks.one("aws:lb/listenerRule:ListenerRule").inputs
    assert rule["listenerArn"] == LISTENER_ARN and rule["priority"] == 10
    assert rule["conditions"] == [
        {"pathPattern": {"values": ["/web/*"]}},
        {"hostHeader": {"values": ["web.wwhd.ai"]}},
    ]
    assert rule["actions"] == [{"type": "forward", "targetGroupArn": tg.outputs["arn"]}]
    svc = mocks.one("aws:ecs/service:Service")
    assert svc.inputs["loadBalancers"] == [
        {"targetGroupArn": tg.outputs["arn"], "containerName": "web", "containerPort": 8080}
    ]
    listener = mocks.one("test:index:Listener")
    assert listener.urn in svc.dependencies


def test_attaching_to_an_existing_target_group_creates_none(mocks: RecordingMonitor) -> None:
    listener = pulumi.CustomResource("test:index:Listener", "default-listener")
    route = ecs.Route(
        container="web",
        port=8080,
        load_balancer_arn_suffix="app/wwhd/0123",
        listeners=[listener],
        target_group=TargetGroupRef(arn="arn:tg/default", arn_suffix="targetgroup/default/0"),
    )
    service = build(mocks, routing=route)
    assert mocks.of_type("aws:lb/targetGroup:TargetGroup") == []
    assert mocks.of_type("aws:lb/listenerRule:ListenerRule") == []
    assert (
        mocks.one("aws:ecs/service:Service").inputs["loadBalancers"][0]["targetGroupArn"] == "arn:tg/default"
    )
    assert resolve(service.target_group_arn_suffix) == "targetgroup/default/0"


@pytest.mark.parametrize(
    ("given", "missing"), [({"paths": ["/a"]}, "priority"), ({"priority": 1}, "paths or host")]
)
def test_a_route_of_its_own_needs_a_listener_priority_and_a_condition(
    given: dict[str, Any], missing: str
) -> None:
    with pytest.raises(ValueError, match=missing):
        ecs.Route(
            container="w",
            port=80,
            load_balancer_arn_suffix="x",
            listeners=[],
            listener_arn="l",
            vpc_id="v",
            **given,
        )


def test_a_worker_is_not_routed(mocks: RecordingMonitor) -> None:
    service = build(mocks, routing=None)
    svc = mocks.one("aws:ecs/service:Service").inputs
    assert "loadBalancers" not in svc and "healthCheckGracePeriodSeconds" not in svc
    assert resolve(service.target_group_arn_suffix) is None
    # Scaling on CPU and memory only: no request count without a target group.
    metrics = {
        p.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"][
            "predefinedMetricType"
        ]
        for p in mocks.of_type("aws:appautoscaling/policy:Policy")
    }
    assert metrics == {"ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization"}


def test_roles_trust_this_accounts_ecs_tasks_only(mocks: RecordingMonitor) -> None:
    build(mocks)
    roles = {r.name: r for r in mocks.of_type("aws:iam/role:Role")}
    assert set(roles) == {"wwhd-svc-web-task", "wwhd-svc-web-execution"}
    for role in roles.values():
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert statement["Condition"] == {
            "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:*"},
        }
        assert role.inputs["permissionsBoundary"] == BOUNDARY
    # The task definition names the roles by ARNs formed from their names, known before they exist.
    task = mocks.one("aws:ecs/taskDefinition:TaskDefinition")
    for kind in ("task", "execution"):
        role = roles[f"wwhd-svc-web-{kind}"]
        assert task.inputs[f"{kind}RoleArn"] == f"arn:aws:iam::{ACCOUNT_ID}:role/{role.outputs['name']}"
        assert role.urn in task.dependencies
    assert task.inputs["taskRoleArn"] != task.inputs["executionRoleArn"]


def test_execution_role_reads_exactly_what_the_containers_inject(mocks: RecordingMonitor) -> None:
    secrets = [
        {"name": "TOKEN", "valueFrom": SECRET_ARN + ":token::"},
        {"name": "FLAG", "valueFrom": "/wwhd/test/flag"},
    ]
    build(mocks, task=ecs.TaskSpec(family="f", containers=[container(secrets=secrets)], cpu=256, memory=512))
    doc = json.loads(mocks.one("aws:iam/rolePolicy:RolePolicy", "wwhd-svc-web-execution").inputs["policy"])
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["ReadInjectedSecrets"]["Resource"] == [SECRET_ARN]
    assert by_sid["ReadInjectedParameters"]["Resource"] == [
        f"arn:aws:ssm:{REGION}:{ACCOUNT_ID}:parameter/wwhd/test/flag"
    ]
    assert {k: by_sid["DecryptWithStackKey"][k] for k in ("Resource", "Condition")} == STACK_KEY


def test_no_secrets_no_execution_policy_and_no_task_policy(mocks: RecordingMonitor) -> None:
    build(mocks)
    assert [p.name for p in mocks.of_type("aws:iam/rolePolicy:RolePolicy")] == []
    attachment = mocks.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment").inputs
    assert attachment["policyArn"].endswith("service-role/AmazonECSTaskExecutionRolePolicy")


def test_task_role_holds_the_given_statements(mocks: RecordingMonitor) -> None:
    statement = {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    build(mocks, permissions=ecs.Permissions(task=[statement]))
    policy = mocks.one("aws:iam/rolePolicy:RolePolicy", "wwhd-svc-web-task").inputs["policy"]
    assert json.loads(policy) == {"Version": "2012-10-17", "Statement": [statement]}


def test_log_groups_are_the_services_and_encrypted(mocks: RecordingMonitor) -> None:
    service = build(
        mocks,
        logs=ecs.Logs(ecs.LogGroupSpec("/ecs/web", 14), {"audit": ecs.LogGroupSpec("/ecs/web/audit", 90)}),
    )
    groups = {g.name: g.inputs for g in mocks.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert groups == {
        "wwhd-svc-web-logs": {"name": "/ecs/web", "retentionInDays": 14, "kmsKeyId": KEY},
        "wwhd-svc-web-audit-logs": {"name": "/ecs/web/audit", "retentionInDays": 90, "kmsKeyId": KEY},
    }
    assert resolve(service.extra_log_group_names["audit"]) == "/ecs/web/audit"


def test_task_definition_and_volumes(mocks: RecordingMonitor) -> None:
    task = ecs.TaskSpec(
        family="wwhd-test-web",
        containers=[container()],
        cpu=512,
        memory=1024,
        architecture="arm64",
        efs_volumes=[ecs.EfsVolume("data", "fs-0a", "fsap-0a")],
        scratch_volumes=["tmp"],
    )
    build(mocks, task=task)
    i = mocks.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    assert (i["family"], i["cpu"], i["memory"], i["networkMode"]) == (
        "wwhd-test-web",
        "512",
        "1024",
        "awsvpc",
    )
    assert i["requiresCompatibilities"] == ["FARGATE"]
    assert i["runtimePlatform"] == {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}
    assert i["volumes"] == [
        {"name": "tmp"},
        {
            "name": "data",
            "efsVolumeConfiguration": {
                "fileSystemId": "fs-0a",
                "rootDirectory": "/",
                "transitEncryption": "ENABLED",
                "authorizationConfig": {"accessPointId": "fsap-0a", "iam": "ENABLED"},
            },
        },
    ]
    assert json.loads(i["containerDefinitions"]) == [container()]


def test_service_runs_private_rolls_back_and_waits(mocks: RecordingMonitor) -> None:
    storage = pulumi.CustomResource("test:index:MountTarget", "mount")
    capacity = pulumi.CustomResource("test:index:Capacity", "capacity")
    build(
        mocks,
        cluster=ecs.ClusterRef(name="c", arn="arn:c", region=REGION, ready=[capacity]),
        task=ecs.TaskSpec(family="f", containers=[container()], cpu=256, memory=512, start_after=[storage]),
        deployment=ecs.Deployment(
            minimum_healthy_percent=0, maximum_percent=100, health_check_grace_seconds=45
        ),
    )
    svc = mocks.one("aws:ecs/service:Service")
    i = svc.inputs
    assert i["networkConfiguration"] == {
        "subnets": ["subnet-0a", "subnet-0b"],
        "securityGroups": ["sg-0web"],
        "assignPublicIp": False,
    }
    assert i["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert (i["deploymentMinimumHealthyPercent"], i["deploymentMaximumPercent"]) == (0, 100)
    assert i["healthCheckGracePeriodSeconds"] == 45
    assert i["capacityProviderStrategies"] == [
        {"capacityProvider": "FARGATE", "weight": 1, "base": 1},
        {"capacityProvider": "FARGATE_SPOT", "weight": 1},
    ]
    for typ in ("test:index:MountTarget", "test:index:Capacity"):
        assert mocks.one(typ).urn in svc.dependencies


def test_discovery_registers_an_a_record(mocks: RecordingMonitor) -> None:
    build(mocks, routing=None, discovery=ecs.Discovery("ns-0123", "web"))
    registry = mocks.one("aws:servicediscovery/service:Service")
    assert registry.inputs["name"] == "web"
    assert registry.inputs["dnsConfig"] == {
        "namespaceId": "ns-0123",
        "dnsRecords": [{"type": "A", "ttl": 10}],
        "routingPolicy": "MULTIVALUE",
    }
    assert mocks.one("aws:ecs/service:Service").inputs["serviceRegistries"] == {
        "registryArn": registry.outputs["arn"]
    }


def test_autoscaling_owns_the_count(mocks: RecordingMonitor) -> None:
    build(mocks)
    target = mocks.one("aws:appautoscaling/target:Target").inputs
    assert (target["minCapacity"], target["maxCapacity"]) == (1, 3)
    assert target["resourceId"].startswith("service/wwhd-test/")
    label = next(
        p.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"].get(
            "resourceLabel"
        )
        for p in mocks.of_type("aws:appautoscaling/policy:Policy")
        if p.name.endswith("-requests")
    )
    tg = mocks.one("aws:lb/targetGroup:TargetGroup").outputs["arnSuffix"]
    assert label == f"app/wwhd/0123/{tg}"


@pytest.mark.parametrize(("desired", "minimum", "ignored"), [(1, 1, ["desiredCount"]), (0, 0, [])])
def test_a_parked_service_gets_its_count_from_the_program(
    mocks: RecordingMonitor, monkeypatch: pytest.MonkeyPatch, desired: int, minimum: int, ignored: list[str]
) -> None:
    """Autoscaling owns a running service's count, so the program ignores it; parked (0 tasks),
    there is no scalable target and the program sets the count, so a running service stops."""
    seen: dict[str, list[str]] = {}
    original = RecordingMonitor.RegisterResource

    def register(self: RecordingMonitor, request: Any) -> Any:
        seen[request.type] = list(request.ignoreChanges)
        return original(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", register)
    build(mocks, scaling=ecs.Scaling(desired=desired, minimum=minimum, maximum=3))
    assert mocks.one("aws:ecs/service:Service").inputs["desiredCount"] == desired
    assert seen["aws:ecs/service:Service"] == ignored
    assert len(mocks.of_type("aws:appautoscaling/target:Target")) == (1 if desired else 0)


def test_scaling_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="minimum <= desired <= maximum"):
        ecs.Scaling(desired=3, minimum=1, maximum=2)
    with pytest.raises(ValueError, match="maximum >= 1"):
        ecs.Scaling(desired=0, minimum=0, maximum=0)


def test_legacy_aliases_every_child(mocks: RecordingMonitor, monkeypatch: pytest.MonkeyPatch) -> None:
    """A service moved out of an older component carries an alias per child under each old parent."""
    seen: dict[tuple[str, str], list[Any]] = {}
    original = RecordingMonitor.RegisterResource

    def register(self: RecordingMonitor, request: Any) -> Any:
        seen[(request.type, request.name)] = [(a.spec.name, a.spec.parentUrn) for a in request.aliases]
        return original(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", register)
    build(
        mocks,
        legacy=Legacy(parents=("wwhd:index:Old::wwhd",), names={"wwhd-svc-web-execution": "old-execution"}),
    )
    old_parent = "urn:pulumi:test::wwhd::wwhd:index:Old::wwhd"
    assert seen[("aws:iam/role:Role", "wwhd-svc-web-task")] == [("", old_parent)]
    assert seen[("aws:iam/role:Role", "wwhd-svc-web-execution")] == [("old-execution", old_parent)]
    children = [
        key
        for key in seen
        if key[0] not in ("wwhd:index:WwhdService", "test:index:Listener", "pulumi:pulumi:Stack")
    ]
    assert len(children) >= 8 and all(seen[key] for key in children), seen
    assert seen[("wwhd:index:WwhdService", "wwhd-svc-web")] == []


def test_outputs_are_registered_once(mocks: RecordingMonitor) -> None:
    service = build(mocks)
    component = mocks.one("wwhd:index:WwhdService")
    registered = mocks.outputs[component.urn]
    assert set(registered) == {
        "service_name", "task_definition_arn", "task_role", "execution_role_arn",
        "log_group_name", "extra_log_group_names", "target_group_arn_suffix",
    }  # fmt: skip
    assert resolve(service.service_name) == mocks.one("aws:ecs/service:Service").outputs["name"]
    task_role = mocks.one("aws:iam/role:Role", "wwhd-svc-web-task")
    assert registered["task_role"] == {"arn": task_role.outputs["arn"], "name": task_role.outputs["name"]}
    for r in mocks.registrations:
        if r.type not in ("pulumi:pulumi:Stack", "wwhd:index:WwhdService") and not r.type.startswith("test:"):
            assert r.parent == component.urn, r.name


# --- pure helpers -----------------------------------------------------------------------------


def test_secret_sources() -> None:
    assert secret_source(SECRET_ARN + ":password::", SCOPE) == ("secretsmanager", SECRET_ARN)
    assert secret_source("/wwhd/test/flag", SCOPE) == (
        "ssm", f"arn:aws:ssm:{REGION}:{ACCOUNT_ID}:parameter/wwhd/test/flag",
    )  # fmt: skip
    arn = f"arn:aws:ssm:eu-west-1:{ACCOUNT_ID}:parameter/x"
    assert secret_source(arn, SCOPE) == ("ssm", arn)
    assert ecs.secret_references([container(secrets=[{"name": "A", "valueFrom": "/a"}]), container()]) == [
        "/a"
    ]
    doc = execution_policy(["/a", "/a"], SCOPE)
    assert [s["Sid"] for s in doc["Statement"]] == ["ReadInjectedParameters", "DecryptWithStackKey"]
    assert execution_policy([], SCOPE)["Statement"] == []
    assert execution_policy([], SCOPE, ["wwhd-test/docker-hub"])["Statement"] == [
        {
            "Sid": "PullThroughCache",
            "Effect": "Allow",
            "Action": ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"],
            "Resource": [f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/wwhd-test/docker-hub/*"],
        }
    ]


@pytest.mark.parametrize("spot", [0, 1, 25, 50, 67, 99, 100])
@pytest.mark.parametrize("base", [0, 1, 3])
def test_capacity_strategy_obeys_ecs_rules(spot: int, base: int) -> None:
    entries = [s.api() for s in ecs.capacity_provider_strategy(spot, base)]
    assert len({e["capacityProvider"] for e in entries}) == len(entries)
    assert sum(1 for e in entries if "base" in e) <= 1  # only one provider may have a base
    assert all(0 <= e["weight"] <= 1000 for e in entries)
    assert any(e["weight"] > 0 for e in entries)
    weights = {e["capacityProvider"]: e["weight"] for e in entries}
    assert weights.get("FARGATE_SPOT", 0) / sum(weights.values()) == pytest.approx(spot / 100, abs=1e-9)
    assert {e["capacityProvider"]: e.get("base", 0) for e in entries}.get("FARGATE", 0) == base


def test_capacity_strategy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        ecs.capacity_provider_strategy(101, 0)
