"""container-memory-fits and image-from-private-registry, over the Analyzer gRPC interface."""

from __future__ import annotations

import json
from typing import Any

import pytest
from wwhd_policies import reliability

from tools.preview.analyzer import load_policy_config

from .conftest import PACK_DIR, UNKNOWN, R, check_resource

TD = "aws:ecs/taskDefinition:TaskDefinition"
ECR = "123456789012.dkr.ecr.us-west-2.amazonaws.com"


def td(containers: list[dict[str, Any]], **props: Any) -> R:
    return R(TD, "td", {"containerDefinitions": json.dumps(containers), **props})


def container(name: str, image: str = f"{ECR}/wwhd/api:v1", **limits: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **limits}


# --- container-memory-fits ----------------------------------------------------------------------


def test_hard_limits_that_fit_and_a_small_non_essential_sidecar_pass(pack) -> None:
    """The API's own shape: 3840 + a 256 MiB collector that may die without stopping the task."""
    fits = td(
        [
            container("api", memory=3840, memoryReservation=2880),
            container("collector", memory=256, memoryReservation=128, essential=False),
        ],
        memory="4096",
    )
    assert pack.run("container-memory-fits", [fits]) == []


def test_a_container_without_a_hard_limit_is_bounded_by_the_task(pack) -> None:
    assert (
        pack.run("container-memory-fits", [td([container("api", memoryReservation=512)], memory="1024")])
        == []
    )


def test_hard_limits_above_the_task_memory_violate(pack) -> None:
    over = td(
        [container("api", memory=3840), container("collector", memory=512, essential=False)], memory="4096"
    )
    [found] = pack.run("container-memory-fits", [over])
    assert found.text == (
        "TaskDefinition 'td': its containers' hard memory limits (api 3840 + collector 512 = 4352 MiB) exceed "
        "the task's 4096 MiB."
    )


def test_an_essential_container_below_the_floor_violates_unless_the_floor_is_lowered(pack) -> None:
    small = td([container("api", memory=256)], memory="512")
    [found] = pack.run("container-memory-fits", [small])
    assert (
        "essential container 'api' has a hard memory limit of 256 MiB, below the floor of 512 MiB"
        in found.text
    )
    assert pack.run("container-memory-fits", [small], {"minEssentialMemoryMib": 256}) == []
    # "essential" unset is ECS's true.
    assert pack.run("container-memory-fits", [td([container("api", memory=256, essential=True)])]) != []


def test_a_reservation_above_the_hard_limit_violates(pack) -> None:
    [found] = pack.run("container-memory-fits", [td([container("api", memory=512, memoryReservation=1024)])])
    assert "reserves 1024 MiB, more than its hard limit of 512 MiB" in found.text


def test_without_task_memory_the_containers_decide(pack) -> None:
    """EC2 launch type: no task-level memory, so no sum to check; each container must say a limit."""
    on_ec2 = td([container("qdrant", memory=1024), container("agent", memoryReservation=64, essential=False)])
    assert pack.run("container-memory-fits", [on_ec2]) == []
    [found] = pack.run("container-memory-fits", [td([container("qdrant")])])
    assert "sets neither memory nor memoryReservation" in found.text


def test_an_unknown_task_memory_is_undecided_but_the_floor_still_judged(pack) -> None:
    found = pack.run("container-memory-fits", [td([container("api", memory=128)], memory=UNKNOWN)])
    assert sorted(f.undecided for f in found) == [False, True]


# --- image-from-private-registry ----------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        f"{ECR}/wwhd-prod-backend:v0.1.0",
        f"{ECR}/wwhd-prod/docker-hub/qdrant/qdrant:v1.16.2",  # a pull-through cache path
        f"{ECR}/wwhd-prod/ecr-public/aws-observability/aws-otel-collector@sha256:{'a' * 64}",
        "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/wwhd/api:v1",
    ],
)
def test_images_from_a_private_ecr_registry_pass(pack, image: str) -> None:
    assert pack.run("image-from-private-registry", [td([container("c", image)])]) == []


@pytest.mark.parametrize(
    ("image", "host"),
    [
        ("qdrant/qdrant:v1.16.2", "docker.io"),
        ("library/python:3.12", "docker.io"),
        ("public.ecr.aws/aws-observability/aws-otel-collector:v0.48.0", "public.ecr.aws"),
        ("ghcr.io/org/app:v1", "ghcr.io"),
        ("registry.example.com:5000/app:v1", "registry.example.com:5000"),
        # Looks like ECR, is not: a private registry's host has the account's 12 digits.
        ("dkr.ecr.us-west-2.amazonaws.com/app:v1", "dkr.ecr.us-west-2.amazonaws.com"),
    ],
)
def test_images_from_anywhere_else_violate(pack, image: str, host: str) -> None:
    [found] = pack.run("image-from-private-registry", [td([container("c", image)])])
    assert (
        found.text == f"TaskDefinition 'td': container 'c' pulls {image} from {host}, not from the account's "
        "private ECR registry."
    )


def test_the_configured_accounts_are_the_only_private_ones(pack) -> None:
    spec = td([container("c", f"{ECR}/app:v1")])
    assert pack.run("image-from-private-registry", [spec], {"accountIds": ["123456789012"]}) == []
    [found] = pack.run("image-from-private-registry", [spec], {"accountIds": ["210987654321"]})
    assert "the ECR registry of account 123456789012, not of 210987654321" in found.text


def test_the_providers_allowed_accounts_name_the_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"aws:allowedAccountIds": '["210987654321"]'}))
    props = {"containerDefinitions": json.dumps([container("c", f"{ECR}/app:v1")])}
    [message] = check_resource(reliability.image_from_private_registry, TD, props, name="td")
    assert "not of 210987654321" in message
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"aws:allowedAccountIds": '["123456789012"]'}))
    assert check_resource(reliability.image_from_private_registry, TD, props) == []


@pytest.mark.parametrize(("stack", "level"), [("dev", "advisory"), ("prod", "mandatory")])
def test_advisory_in_dev_mandatory_in_prod(pack, stack: str, level: str) -> None:
    configs = load_policy_config(PACK_DIR / "config" / f"{stack}.json")
    found = pack.run_all(
        [td([container("qdrant", "qdrant/qdrant:v1.16.2", memory=1024)], memory="1024")], configs
    )
    [image] = [f for f in found if f.policy == "image-from-private-registry"]
    assert image.level == level
