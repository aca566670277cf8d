"""Container definitions of the W.W.H.D. tasks, as data in the ECS RegisterTaskDefinition shape.

Values are plain strings, or Inputs (an image URL, a secret's ARN) that ``WwhdService`` resolves
when it renders the list with ``Output.json_dumps``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

Text = pulumi.Input[str]
"""A string, or an Output of one resolved when the definitions are rendered."""

API_CONTAINER = "api"
QDRANT_CONTAINER = "qdrant"
XRAY_CONTAINER = "xray-daemon"

QDRANT_PORT = 6333
XRAY_PORT = 2000

# Volume names (the task definition's ``volumes`` and the containers' ``mountPoints``).
DATA_VOLUME = "data"
QDRANT_VOLUME = "qdrant-storage"
TMP_VOLUME = "tmp"

DATA_PATH = "/data"
QDRANT_STORAGE_PATH = "/qdrant/storage"
SQLITE_URL = "sqlite:////data/wwhd.db"

# The X-Ray daemon, not the ADOT collector: the seeds name X-Ray, the daemon is one small Go
# binary (a few MiB of memory) while ADOT is a general OpenTelemetry collector that needs a
# configuration file and several times the memory. Pinned: 3.3.12 is a published tag of
# public.ecr.aws/xray/aws-xray-daemon (ECR Public avoids Docker Hub's pull rate limits).
XRAY_IMAGE = "public.ecr.aws/xray/aws-xray-daemon:3.3.12"
XRAY_CPU = 32
XRAY_MEMORY = 128

# Fargate's ceiling for stopTimeout: the time between SIGTERM and SIGKILL. ECS sends SIGTERM
# only after the load balancer has drained the task for its deregistration delay
# (loadBalancer.deregistrationDelay, 30 s by default) and closed what was still open, so that
# delay, not this one, bounds an SSE/WebSocket stream through the ALB during a deploy. This
# gives the process time to finish in-process work (flush SQLite, Qdrant's WAL, traces) and
# costs nothing when it exits sooner.
STOP_TIMEOUT_SECONDS = 120

# The issue asks for `curl -f http://localhost:8000/health`, but the API image is built from
# python:3.11-slim (seed 001), which ships no curl (the seed Dockerfile's own HEALTHCHECK has
# the same flaw). Python's urllib is in every Python image and behaves like `curl -f`:
# urlopen raises on a connection error, a timeout or any status >= 400, so the exit code is
# non-zero exactly when curl -f's would be. No shell is needed (CMD form).
API_HEALTH_COMMAND = [
    "CMD",
    "python",
    "-c",
    "import urllib.request; urllib.request.urlopen('http://localhost:8000/health', timeout=4)",
]

# qdrant/qdrant is built FROM debian:12-slim (bookworm) and installs only ca-certificates,
# tzdata and libunwind8: no curl, wget or nc (the maintainers refused curl for security,
# qdrant/qdrant#3491, #3505; #4250 suggests bash's /dev/tcp). Debian's /bin/sh is dash, which
# has no /dev/tcp, so the probe runs under bash (Essential in Debian, as are head and grep).
# It asks /readyz (200 once every shard is loaded), not just whether the port is open.
QDRANT_HEALTH_COMMAND = [
    "CMD",
    "bash",
    "-c",
    f"exec 3<>/dev/tcp/127.0.0.1/{QDRANT_PORT}"
    " && printf 'GET /readyz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3"
    " && head -n 1 <&3 | grep -q ' 200'",
]


@dataclass(frozen=True)
class LogTarget:
    """Where a container's stdout/stderr go (the awslogs driver)."""

    group: Text
    region: str


@dataclass(frozen=True)
class Share:
    """CPU units and memory (MiB, a hard limit) of one container."""

    cpu: int
    memory: int


def app_env(environment: str) -> str:
    """APP_ENV as the application names environments (seed 001)."""
    return {"prod": "production", "staging": "staging", "dev": "development"}[environment]


def api_image(repository_url: str, tag: str) -> str:
    """The pinned API image: ``repo:tag``, or ``repo@sha256:...`` for a digest."""
    return f"{repository_url}@{tag}" if tag.startswith("sha256:") else f"{repository_url}:{tag}"


def split_task(cpu: int, memory: int, *, qdrant_sidecar: bool, tracing: bool) -> dict[str, Share]:
    """Divide the API task's size among its containers; the shares add up to the task size.

    A Qdrant sidecar gets a quarter (seed 003: 256/512 of a 1024/2048 task), the X-Ray
    daemon a fixed sliver, the API the rest."""
    shares: dict[str, Share] = {}
    if qdrant_sidecar:
        shares[QDRANT_CONTAINER] = Share(cpu // 4, memory // 4)
    if tracing:
        shares[XRAY_CONTAINER] = Share(XRAY_CPU, XRAY_MEMORY)
    shares[API_CONTAINER] = Share(
        cpu - sum(s.cpu for s in shares.values()), memory - sum(s.memory for s in shares.values())
    )
    return shares


def log_configuration(target: LogTarget, prefix: str) -> dict[str, Any]:
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": target.group,
            "awslogs-region": target.region,
            "awslogs-stream-prefix": prefix,
        },
    }


def _pairs(values: Mapping[str, Text], value_key: str) -> list[dict[str, Text]]:
    return [{"name": k, value_key: values[k]} for k in sorted(values)]


def api_container(
    *,
    image: Text,
    port: int,
    share: Share,
    environment: Mapping[str, Text],
    secrets: Mapping[str, Text],
    log: LogTarget,
    data_volume: bool,
    wait_for_qdrant: bool,
    ecs_exec: bool,
) -> dict[str, Any]:
    """The FastAPI container. ``secrets`` maps variable names to Secrets Manager ``valueFrom``
    references: ECS injects them at start, so no credential is in the task definition.
    ``ecs_exec`` trades the read-only root for ``aws ecs execute-command`` (see below)."""
    clash = set(environment) & set(secrets)
    if clash:
        raise ValueError(f"{sorted(clash)} set both as environment and as secrets")
    mounts = [{"sourceVolume": TMP_VOLUME, "containerPath": "/tmp", "readOnly": False}]
    if data_volume:
        mounts.append({"sourceVolume": DATA_VOLUME, "containerPath": DATA_PATH, "readOnly": False})
    container: dict[str, Any] = {
        "name": API_CONTAINER,
        "image": image,
        "essential": True,
        "cpu": share.cpu,
        "memory": share.memory,
        "portMappings": [{"containerPort": port, "protocol": "tcp", "name": "http"}],
        "environment": _pairs(environment, "value"),
        "secrets": _pairs(secrets, "valueFrom"),
        "mountPoints": mounts,
        # The app writes only SQLite under /data and temporary files under /tmp (a task
        # volume on Fargate's ephemeral storage, as Fargate has no tmpfs); the image itself
        # stays immutable. Except with ECS Exec: the SSM agent ECS injects writes under
        # /managed-agents and /var/{lib,log}/amazon/ssm, and AWS documents a read-only root as
        # unsupported for ECS Exec, so a stack that turns exec on (a debugging switch, off by
        # default) gets a writable root and the pack's advisory read-only-root finding.
        "readonlyRootFilesystem": not ecs_exec,
        "privileged": False,
        # An init process reaps the ECS Exec agent's children and forwards SIGTERM.
        "linuxParameters": {"initProcessEnabled": True},
        "stopTimeout": STOP_TIMEOUT_SECONDS,
        "healthCheck": {
            "command": API_HEALTH_COMMAND,
            "interval": 30,
            "timeout": 5,
            "retries": 3,
            # LangGraph and the model clients load before /health answers.
            "startPeriod": 60,
        },
        "logConfiguration": log_configuration(log, API_CONTAINER),
    }
    if wait_for_qdrant:
        container["dependsOn"] = [{"containerName": QDRANT_CONTAINER, "condition": "HEALTHY"}]
    return container


def service_container(
    *,
    name: str,
    image: str,
    port: int | None,
    share: Share,
    environment: Mapping[str, str],
    secrets: Mapping[str, str],
    log: LogTarget,
    data_volume: bool,
) -> dict[str, Any]:
    """An extra service's one container: hardened like the API's (read-only root with a
    writable /tmp, not privileged, an init process), its own directory at /data when it has
    one. Its health is judged by the load balancer (routed services) and by ECS restarting
    it when it exits: the image is the team's, so no in-container probe is assumed."""
    clash = set(environment) & set(secrets)
    if clash:
        raise ValueError(f"{sorted(clash)} set both as environment and as secrets")
    mounts = [{"sourceVolume": TMP_VOLUME, "containerPath": "/tmp", "readOnly": False}]
    if data_volume:
        mounts.append({"sourceVolume": DATA_VOLUME, "containerPath": DATA_PATH, "readOnly": False})
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "essential": True,
        "cpu": share.cpu,
        "memory": share.memory,
        "environment": _pairs(environment, "value"),
        "secrets": _pairs(secrets, "valueFrom"),
        "mountPoints": mounts,
        "readonlyRootFilesystem": True,
        "privileged": False,
        "linuxParameters": {"initProcessEnabled": True},
        "stopTimeout": STOP_TIMEOUT_SECONDS,
        "logConfiguration": log_configuration(log, name),
    }
    if port is not None:
        container["portMappings"] = [{"containerPort": port, "protocol": "tcp", "name": "http"}]
    return container


def qdrant_container(*, image: str, share: Share, log: LogTarget, loopback_only: bool) -> dict[str, Any]:
    """Qdrant with its storage on its EFS access point."""
    environment = {
        "QDRANT__SERVICE__HTTP_PORT": str(QDRANT_PORT),
        "QDRANT__TELEMETRY_DISABLED": "true",
    }
    if loopback_only:
        # As a sidecar only the API container (same network namespace) talks to it.
        environment["QDRANT__SERVICE__HOST"] = "127.0.0.1"
    return {
        "name": QDRANT_CONTAINER,
        "image": image,
        "essential": True,
        "cpu": share.cpu,
        "memory": share.memory,
        "portMappings": [{"containerPort": QDRANT_PORT, "protocol": "tcp", "name": "qdrant-http"}],
        "environment": _pairs(environment, "value"),
        "mountPoints": [
            {"sourceVolume": QDRANT_VOLUME, "containerPath": QDRANT_STORAGE_PATH, "readOnly": False}
        ],
        # Writable root: Qdrant writes its init marker (.qdrant-initialized) and snapshots
        # under its working directory /qdrant, outside the storage mount.
        "readonlyRootFilesystem": False,
        "privileged": False,
        # Time to flush its write-ahead log to EFS before SIGKILL.
        "stopTimeout": STOP_TIMEOUT_SECONDS,
        "healthCheck": {
            "command": QDRANT_HEALTH_COMMAND,
            "interval": 15,
            "timeout": 5,
            "retries": 3,
            # Collections load from EFS at start; large ones take a while.
            "startPeriod": 120,
        },
        "logConfiguration": log_configuration(log, QDRANT_CONTAINER),
    }


def xray_container(*, log: LogTarget) -> dict[str, Any]:
    """The X-Ray daemon: the API's SDK sends segments to localhost:2000/udp; not essential, so
    a daemon crash never stops the API (traces are lost, requests are not)."""
    return {
        "name": XRAY_CONTAINER,
        "image": XRAY_IMAGE,
        "essential": False,
        "cpu": XRAY_CPU,
        "memory": XRAY_MEMORY,
        "portMappings": [{"containerPort": XRAY_PORT, "protocol": "udp"}],
        "environment": [{"name": "AWS_REGION", "value": log.region}],
        "readonlyRootFilesystem": True,
        "privileged": False,
        "logConfiguration": log_configuration(log, XRAY_CONTAINER),
    }


def total(containers: Sequence[Mapping[str, Any]], key: str) -> int:
    """Sum of one size field over containers (for the fits-the-task check)."""
    return sum(int(c.get(key) or 0) for c in containers)
