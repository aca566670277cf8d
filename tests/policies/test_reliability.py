"""Reliability policies."""

from __future__ import annotations

import json

import pytest
from wwhd_policies import _aws
from wwhd_policies import reliability as rel

import stack_config

from .conftest import UNKNOWN, R, check_resource, check_stack

TD = "aws:ecs/taskDefinition:TaskDefinition"


def fargate(cpu, memory) -> dict:
    return {"requiresCompatibilities": ["FARGATE"], "cpu": cpu, "memory": memory}


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [
        ("256", "512"),
        ("512", "1024"),
        ("2048", "4096"),
        ("4096", "30720"),
        ("8192", "20480"),
        ("16384", "122880"),
    ],
)
def test_fargate_sizes_that_exist(cpu: str, memory: str) -> None:
    assert check_resource(rel.fargate_task_size_valid, TD, fargate(cpu, memory)) == []


@pytest.mark.parametrize(
    ("cpu", "memory"), [("256", "4096"), ("512", "512"), ("1024", "9216"), ("8192", "18432"), ("300", "1024")]
)
def test_fargate_sizes_that_do_not_exist(cpu: str, memory: str) -> None:
    assert check_resource(rel.fargate_task_size_valid, TD, fargate(cpu, memory))


def test_the_pack_and_the_program_know_the_same_fargate_sizes() -> None:
    """The pack cannot import the program (only policies/ is published), so each keeps a copy of
    the guide's table: a stack the program accepts is one the pack accepts."""
    assert {cpu: tuple(memory) for cpu, memory in _aws.FARGATE_SIZES.items()} == stack_config.FARGATE_SIZES


def test_fargate_size_unknown_is_undecided() -> None:
    [message] = check_resource(rel.fargate_task_size_valid, TD, fargate(UNKNOWN, "1024"))
    assert message.startswith("undecided [cpu]: ")


def test_circuit_breaker() -> None:
    svc = "aws:ecs/service:Service"
    ok = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    assert check_resource(rel.ecs_deployment_circuit_breaker, svc, ok) == []
    assert check_resource(
        rel.ecs_deployment_circuit_breaker,
        svc,
        {"deploymentCircuitBreaker": {"enable": True, "rollback": False}},
    )
    assert check_resource(rel.ecs_deployment_circuit_breaker, svc, {})


def containers(**extra) -> dict:
    base = {"name": "api", "image": "123.dkr.ecr.us-west-2.amazonaws.com/wwhd:1.4.2", "essential": True}
    return {"containerDefinitions": json.dumps([base | extra])}


def test_container_health_check() -> None:
    hc = {"command": ["CMD-SHELL", "curl -f http://localhost:8000/health || exit 1"], "interval": 30}
    assert check_resource(rel.container_health_check, TD, containers(healthCheck=hc)) == []
    assert check_resource(rel.container_health_check, TD, containers())
    assert check_resource(rel.container_health_check, TD, containers(essential=False)) == []


@pytest.mark.parametrize(
    "image",
    ["qdrant/qdrant:v1.16.2", "repo@sha256:" + "a" * 64, "localhost:5000/app:2.0", "public.ecr.aws/x/y:1"],
)
def test_image_pinned_accepts(image: str) -> None:
    assert check_resource(rel.image_pinned, TD, containers(image=image)) == []


@pytest.mark.parametrize(
    "image", ["qdrant/qdrant", "qdrant/qdrant:latest", "localhost:5000/app", "nginx:stable"]
)
def test_image_pinned_rejects(image: str) -> None:
    assert check_resource(rel.image_pinned, TD, containers(image=image))


def test_image_pinned_unknown_container_definitions() -> None:
    [message] = check_resource(rel.image_pinned, TD, {"containerDefinitions": UNKNOWN}, name="wwhd-api")
    assert message == (
        "undecided [containerDefinitions]: TaskDefinition 'wwhd-api': the container definitions are unknown "
        "before creation, so image pinning cannot be judged; build them from values known before creation "
        "(names you set, account and region from invokes)"
    )


def test_alarm_has_actions() -> None:
    alarm = "aws:cloudwatch/metricAlarm:MetricAlarm"
    assert check_stack(rel.alarm_has_actions, [R(alarm, "a", {"alarmActions": ["arn:aws:sns:t"]})]) == []
    assert check_stack(rel.alarm_has_actions, [R(alarm, "a", {"alarmActions": []})])
    assert check_stack(
        rel.alarm_has_actions, [R(alarm, "a", {"alarmActions": ["t"], "actionsEnabled": False})]
    )


def test_target_group_health_check() -> None:
    tg = "aws:lb/targetGroup:TargetGroup"
    ok = {
        "healthCheck": {
            "path": "/health",
            "healthyThreshold": 2,
            "unhealthyThreshold": 3,
            "timeout": 5,
            "interval": 30,
        }
    }
    assert check_resource(rel.target_group_health_check, tg, ok) == []
    bad = {"healthCheck": {"healthyThreshold": 1, "unhealthyThreshold": 11, "timeout": 30, "interval": 30}}
    msgs = check_resource(rel.target_group_health_check, tg, bad)
    assert len(msgs) == 4  # no path, two thresholds, timeout not below interval
    assert check_resource(rel.target_group_health_check, tg, {"protocol": "HTTP"})
