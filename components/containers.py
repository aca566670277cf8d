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
COLLECTOR_CONTAINER = "otel-collector"

QDRANT_PORT = 6333
XRAY_PORT = 2000
"""The X-Ray SDKs send segments to UDP 2000 of the daemon; the collector's awsxray receiver
listens there, so today's instrumentation keeps working."""
OTLP_GRPC_PORT, OTLP_HTTP_PORT = 4317, 4318
COLLECTOR_HEALTH_PORT = 13133

# Volume names (the task definition's ``volumes`` and the containers' ``mountPoints``).
DATA_VOLUME = "data"
QDRANT_VOLUME = "qdrant-storage"
QDRANT_SNAPSHOTS_VOLUME = "qdrant-snapshots"
TMP_VOLUME = "tmp"

DATA_PATH = "/data"
QDRANT_STORAGE_PATH = "/qdrant/storage"
QDRANT_SNAPSHOTS_PATH = "/qdrant/snapshots"
SQLITE_URL = "sqlite:////data/wwhd.db"

# The AWS Distro for OpenTelemetry collector, not the X-Ray daemon: AWS ends support for the
# daemon and the X-Ray SDKs on 2027-02-25 (maintenance since 2026-02-25). Its awsxray receiver
# accepts the SDKs' segments on UDP 2000 as the daemon did, its OTLP receiver is where the app
# moves next, and it exports to X-Ray. The image is ``wwhd:images.collector``.
TRACE_SERVICE_NAME = "wwhd-backend"
"""The name the API's traces carry (seed 000), which the stack's X-Ray sampling rule matches:
given to the app as AWS_XRAY_TRACING_NAME (X-Ray SDK) and OTEL_SERVICE_NAME (OpenTelemetry)."""
COLLECTOR_CPU = 64
COLLECTOR_MEMORY = 256
"""Hard limit (MiB): the collector's memory_limiter keeps it well below (see COLLECTOR_CONFIG)."""
COLLECTOR_MEMORY_RESERVATION = 128

ESSENTIAL_MEMORY_FLOOR = 512
"""No essential container gets a hard memory limit below this (MiB): a kernel kill of an
essential container stops the whole task (the pack's container-memory-fits checks the same)."""
API_RESERVATION_SHARE = 0.75
"""The API's soft reservation, as a share of its hard limit."""
QDRANT_RESERVATION_SHARE = 0.5
"""Qdrant's soft reservation, as a share of its hard limit: its page cache grows into the rest."""

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

# qdrant/qdrant (v1.16) is built FROM debian:13-slim (trixie) and installs only ca-certificates,
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


def app_env(environment: str) -> str:
    """APP_ENV as the application names environments (seed 001)."""
    return {"prod": "production", "staging": "staging", "dev": "development"}[environment]


def api_image(repository_url: str, tag: str) -> str:
    """The pinned API image: ``repo:tag``, or ``repo@sha256:...`` for a digest."""
    return f"{repository_url}@{tag}" if tag.startswith("sha256:") else f"{repository_url}:{tag}"


@dataclass(frozen=True)
class Share:
    """CPU units and memory (MiB) of one container: ``memory`` is its hard limit (the kernel
    kills it above), ``reservation`` what it is guaranteed (``memoryReservation``)."""

    cpu: int
    memory: int
    reservation: int | None = None


def split_task(cpu: int, memory: int, *, qdrant_sidecar: bool, tracing: bool) -> dict[str, Share]:
    """Divide the API task among its containers. The hard limits add up to the task's memory
    (so no container can starve another into a kill), each essential container's hard limit is
    at least ``ESSENTIAL_MEMORY_FLOOR``, and each gets a soft reservation below it.

    A Qdrant sidecar gets a quarter of the task, and never less than the floor (a single large
    collection did not fit in the 256 MiB it once had); the collector a fixed sliver; the API
    the rest. Raises ValueError for a task too small to hold them."""
    shares: dict[str, Share] = {}
    if qdrant_sidecar:
        qdrant_memory = max(memory // 4, ESSENTIAL_MEMORY_FLOOR)
        shares[QDRANT_CONTAINER] = Share(
            cpu // 4, qdrant_memory, int(qdrant_memory * QDRANT_RESERVATION_SHARE)
        )
    if tracing:
        shares[COLLECTOR_CONTAINER] = Share(COLLECTOR_CPU, COLLECTOR_MEMORY, COLLECTOR_MEMORY_RESERVATION)
    api_memory = memory - sum(s.memory for s in shares.values())
    if api_memory < ESSENTIAL_MEMORY_FLOOR:
        raise ValueError(
            f"a {memory} MiB task cannot give the API {ESSENTIAL_MEMORY_FLOOR} MiB beside "
            f"{', '.join(shares)} ({memory - api_memory} MiB); choose a larger memory size"
        )
    shares[API_CONTAINER] = Share(
        cpu - sum(s.cpu for s in shares.values()), api_memory, int(api_memory * API_RESERVATION_SHARE)
    )
    return shares


@dataclass(frozen=True)
class LogTarget:
    """Where a container's stdout/stderr go (the awslogs driver)."""

    group: Text
    region: str


def log_configuration(target: LogTarget, prefix: str) -> dict[str, Any]:
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": target.group,
            "awslogs-region": target.region,
            "awslogs-stream-prefix": prefix,
        },
    }


def _sizes(share: Share) -> dict[str, int]:
    """``cpu``, ``memory`` (hard limit) and ``memoryReservation`` (soft, when set)."""
    sizes = {"cpu": share.cpu, "memory": share.memory}
    return sizes | ({"memoryReservation": share.reservation} if share.reservation else {})


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
    """The FastAPI container: an application container (``service_container``) whose health
    ECS probes (``/health``), started after Qdrant's when Qdrant runs beside it.
    ``ecs_exec`` trades the read-only root for ``aws ecs execute-command`` (see below)."""
    container = service_container(
        name=API_CONTAINER,
        image=image,
        port=port,
        share=share,
        environment=environment,
        secrets=secrets,
        log=log,
        data_volume=data_volume,
        # The SSM agent ECS injects for ECS Exec writes under /managed-agents and
        # /var/{lib,log}/amazon/ssm, and AWS documents a read-only root as unsupported for ECS
        # Exec: a stack that turns exec on (a debugging switch, off by default) gets a writable
        # root and the pack's advisory read-only-root finding.
        writable_root=ecs_exec,
        health_check={
            "command": API_HEALTH_COMMAND,
            "interval": 30,
            "timeout": 5,
            "retries": 3,
            # LangGraph and the model clients load before /health answers.
            "startPeriod": 60,
        },
    )
    if wait_for_qdrant:
        container["dependsOn"] = [{"containerName": QDRANT_CONTAINER, "condition": "HEALTHY"}]
    return container


def service_container(
    *,
    name: str,
    image: Text,
    port: int | None,
    share: Share,
    environment: Mapping[str, Text],
    secrets: Mapping[str, Text],
    log: LogTarget,
    data_volume: bool,
    writable_root: bool = False,
    health_check: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An application container, the API's or an extra service's: hardened (read-only root
    with a writable /tmp, not privileged, an init process), its own directory at /data when it
    has one. ``secrets`` maps variable names to Secrets Manager or SSM ``valueFrom``
    references: ECS injects them at start, so no credential is in the task definition.
    Without ``health_check`` its health is judged by the load balancer (routed services) and
    by ECS restarting it when it exits: an extra service's image is its team's, so no
    in-container probe is assumed. ``writable_root`` defaults to False."""
    clash = set(environment) & set(secrets)
    if clash:
        raise ValueError(f"{sorted(clash)} set both as environment and as secrets")
    mounts = [{"sourceVolume": TMP_VOLUME, "containerPath": "/tmp", "readOnly": False}]
    if data_volume:
        mounts.append({"sourceVolume": DATA_VOLUME, "containerPath": DATA_PATH, "readOnly": False})
    container: dict[str, Any] = {"name": name, "image": image, "essential": True, **_sizes(share)}
    if port is not None:
        container["portMappings"] = [{"containerPort": port, "protocol": "tcp", "name": "http"}]
    container |= {
        "environment": _pairs(environment, "value"),
        "secrets": _pairs(secrets, "valueFrom"),
        "mountPoints": mounts,
        # The app writes only its directory under /data and temporary files under /tmp (a task
        # volume on Fargate's ephemeral storage, as Fargate has no tmpfs); the image itself
        # stays immutable.
        "readonlyRootFilesystem": not writable_root,
        "privileged": False,
        # An init process reaps the ECS Exec agent's children and forwards SIGTERM.
        "linuxParameters": {"initProcessEnabled": True},
        "stopTimeout": STOP_TIMEOUT_SECONDS,
    }
    if health_check is not None:
        container["healthCheck"] = dict(health_check)
    container["logConfiguration"] = log_configuration(log, name)
    return container


def qdrant_container(
    *, image: Text, share: Share, log: LogTarget, loopback_only: bool, snapshots: bool = False
) -> dict[str, Any]:
    """Qdrant with its storage on a volume of the task (an EFS access point, or its container
    host's EBS volume); ``snapshots`` mounts a snapshots volume too (on the host's volume, so a
    full snapshot never fills the root disk)."""
    environment = {
        "QDRANT__SERVICE__HTTP_PORT": str(QDRANT_PORT),
        "QDRANT__TELEMETRY_DISABLED": "true",
    }
    if loopback_only:
        # As a sidecar only the API container (same network namespace) talks to it.
        environment["QDRANT__SERVICE__HOST"] = "127.0.0.1"
    mounts = [{"sourceVolume": QDRANT_VOLUME, "containerPath": QDRANT_STORAGE_PATH, "readOnly": False}]
    if snapshots:
        mounts.append(
            {
                "sourceVolume": QDRANT_SNAPSHOTS_VOLUME,
                "containerPath": QDRANT_SNAPSHOTS_PATH,
                "readOnly": False,
            }
        )
    return {
        "name": QDRANT_CONTAINER,
        "image": image,
        "essential": True,
        **_sizes(share),
        "portMappings": [{"containerPort": QDRANT_PORT, "protocol": "tcp", "name": "qdrant-http"}],
        "environment": _pairs(environment, "value"),
        "mountPoints": mounts,
        # Writable root: Qdrant writes its init marker (.qdrant-initialized) and, without a
        # snapshots volume, its snapshots under its working directory /qdrant.
        "readonlyRootFilesystem": False,
        "privileged": False,
        # Time to flush its write-ahead log before SIGKILL.
        "stopTimeout": STOP_TIMEOUT_SECONDS,
        "healthCheck": {
            "command": QDRANT_HEALTH_COMMAND,
            "interval": 15,
            "timeout": 5,
            "retries": 3,
            # Collections load from storage at start; large ones take a while.
            "startPeriod": 120,
        },
        "logConfiguration": log_configuration(log, QDRANT_CONTAINER),
    }


COLLECTOR_CONFIG = f"""\
extensions:
  health_check:
    endpoint: 127.0.0.1:{COLLECTOR_HEALTH_PORT}
receivers:
  awsxray:
    endpoint: 127.0.0.1:{XRAY_PORT}
    transport: udp
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{OTLP_GRPC_PORT}
      http:
        endpoint: 127.0.0.1:{OTLP_HTTP_PORT}
processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: 75
    spike_limit_percentage: 20
  batch: {{}}
exporters:
  awsxray: {{}}
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [awsxray, otlp]
      processors: [memory_limiter, batch]
      exporters: [awsxray]
"""
"""The collector's whole configuration: traces in from the X-Ray SDK (UDP 2000) and OTLP (4317
gRPC, 4318 HTTP), bounded in memory, batched, out to X-Ray. Everything listens on loopback:
only the task's own containers send to it. No metrics or logs pipeline, so nothing is billed
beyond the traces the sampling rule keeps."""


def collector_container(*, image: Text, log: LogTarget) -> dict[str, Any]:
    """The AWS Distro for OpenTelemetry collector, configured inline (``AOT_CONFIG_CONTENT``);
    not essential, so a collector crash never stops the API (traces are lost, requests are not)."""
    return {
        "name": COLLECTOR_CONTAINER,
        "image": image,
        "essential": False,
        **_sizes(Share(COLLECTOR_CPU, COLLECTOR_MEMORY, COLLECTOR_MEMORY_RESERVATION)),
        "environment": [
            {"name": "AOT_CONFIG_CONTENT", "value": COLLECTOR_CONFIG},
            {"name": "AWS_REGION", "value": log.region},
        ],
        "readonlyRootFilesystem": True,
        "privileged": False,
        # The image ships /healthcheck, which asks the health_check extension.
        "healthCheck": {
            "command": ["/healthcheck"],
            "interval": 30,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 15,
        },
        "logConfiguration": log_configuration(log, COLLECTOR_CONTAINER),
    }


def total(containers: Sequence[Mapping[str, Any]], key: str) -> int:
    """Sum of one size field over containers (for the fits-the-task check)."""
    return sum(int(c.get(key) or 0) for c in containers)
