"""The stack configuration: one validated, frozen model read once by ``__main__.py``.

Every key lives under the ``wwhd`` namespace of a ``Pulumi.<stack>.yaml`` file, as one
structured value per concern (``wwhd:network``, ``wwhd:service``, ...). Missing keys take the
per-environment defaults below, drawn from the owner's reference documents (seed 000,
"Cost Optimization / Resource Allocation by Environment"). Validation reports every problem
at once, each prefixed with its key path as written in the stack file
(``wwhd:service.desiredCount``), and raises before any resource is registered.
"""

from __future__ import annotations

import copy
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, get_args

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    TypeAdapter,
    ValidationError,
    alias_generators,
    field_validator,
)

from components.container_host import (
    GP3_MAX_GB,
    GP3_MIN_GB,
    XEN_FAMILIES,
    Architecture,
    family_architecture,
    instance_family,
)
from components.containers import split_task
from components.nat_instance import AL2023_UNSUPPORTED_FAMILIES
from config_errors import (
    ConfigError,
    Problem,
    StrictModel,
    field_at,
    plain,
    problem,
    read_namespace,
    unknown_key,
    validate,
)

NAMESPACE = "wwhd"

Environment = Literal["dev", "staging", "prod"]

# Fargate's supported task sizes: CPU units -> allowed memory in MiB.
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

# The retention values CloudWatch Logs accepts (PutRetentionPolicy); 0 ("never expire") is
# deliberately absent: every log group of the stack must expire.
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

# EFS lifecycle TransitionToIA values (AFTER_<n>_DAY[S]).
EFS_IA_DAYS: tuple[int, ...] = (1, 7, 14, 30, 60, 90, 180, 270, 365)

# The AWS Distro for OpenTelemetry collector this version of the program runs beside the API
# when tracing is on: ECR Public (no Docker Hub pull limits), pinned by tag and index digest so
# one reference serves x86_64 and arm64 tasks.
COLLECTOR_IMAGE = (
    "public.ecr.aws/aws-observability/aws-otel-collector:v0.48.0"
    "@sha256:9b28046359054b414f4ba76056ba4e8cffda2d53fbcee06171d7eeecd71326c3"
)

# Tags that move: an image referenced by one of these is not pinned.
MOVING_TAGS = frozenset({"latest", "stable", "main", "master", "edge", "nightly", "dev"})

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def image_pin_problem(reference: str) -> str | None:
    """Why an image reference is not pinned, or None when it is (tag or digest)."""
    name, _, digest = reference.partition("@")
    if digest:
        return None if _DIGEST.match(digest) else f"{reference!r} has a malformed digest"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"{reference!r} has no tag (which means latest); pin a version or a digest"
    tag = last.rsplit(":", 1)[1]
    if tag.lower() in MOVING_TAGS:
        return f"{reference!r} uses the moving tag {tag!r}; pin a version or a digest"
    return None


def _pinned(reference: str) -> str:
    problem = image_pin_problem(reference)
    if problem:
        raise ValueError(problem)
    return reference


# An image reference pinned by a version tag or a digest (image_pin_problem).
PinnedImage = Annotated[str, AfterValidator(_pinned)]

# ECS CreateCluster: "up to 255 letters (uppercase and lowercase), numbers, underscores, and
# hyphens"; CloudWatch Logs LogGroupName: 1-512 characters of [.-_/#A-Za-z0-9]. The API log
# group's name is also the prefix of the performance group, so it leaves room for the suffix.
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
PERFORMANCE_LOG_SUFFIX = "/performance"
LOG_GROUP_NAME_MAX = 512 - len(PERFORMANCE_LOG_SUFFIX)
_LOG_GROUP_NAME = re.compile(r"^[.\-_/#A-Za-z0-9]+$")


class _Model(StrictModel):
    """A section of the stack file (``StrictModel``): the README's configuration table is
    generated from the docstring under each field (tools/readme.py)."""


# --- network -------------------------------------------------------------------------------

NatStrategy = Literal["single", "one-per-az", "instance"]


class ExistingVpc(_Model):
    """An existing VPC to adopt instead of creating one (as in infra-change-001)."""

    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$")
    """The VPC id."""
    public_subnet_ids: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]] = Field(min_length=2)
    """Subnets for the load balancer (at least two AZs, an ALB requirement)."""
    private_subnet_ids: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]] = Field(min_length=2)
    """Subnets for tasks, mount targets and the database; they must route out through a NAT."""
    private_route_table_ids: list[Annotated[str, Field(pattern=r"^rtb-[0-9a-f]{8,17}$")]] = []
    """Route tables of the private subnets, for the S3 gateway endpoint (none is made when empty)."""


class NetworkConfig(_Model):
    """``wwhd:network``: a new VPC (default) or an existing one."""

    cidr: str = "10.0.0.0/16"
    """The new VPC's IPv4 range."""
    availability_zones: Literal[2, 3] = 2
    """How many AZs the new VPC spans."""
    subnet_mask: int = Field(default=20, ge=16, le=28)
    """Prefix length of each public and private subnet (/20: 4,091 usable addresses)."""
    nat_gateways: NatStrategy = "single"
    """How the private subnets reach the internet, a trade-off of cost against availability:

    - ``single``: one NAT gateway in the first AZ, shared by all (about 33 USD a month plus
      0.045 USD per GB processed); egress stops while that AZ is down.
    - ``one-per-az``: a gateway in each AZ (about 33 USD a month each); an AZ outage takes only
      its own subnets' egress.
    - ``instance``: one small EC2 instance that translates (``natInstanceType``, about 7 USD a
      month for a t4g.nano with its public address and disk, no per-GB fee). Dev only: egress
      stops while the instance or its AZ is down (EC2's automatic recovery moves it off failed
      hardware), its bandwidth is a small instance's, and its OS is ours to patch (each deploy
      after a new Amazon Linux release replaces it). Refused in prod.
    """
    nat_instance_type: str = Field(default="t4g.nano", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    """EC2 instance type of the NAT instance (``natGateways: instance`` only); a Graviton type
    (``t4g``, ``m7g``, ...) runs the arm64 image. Default t4g.nano (2 vCPU, 0.5 GiB, about
    3 USD a month on demand; 32 Mbit/s baseline bandwidth, bursts to 5 Gbit/s)."""
    flow_logs: bool = False
    """VPC flow logs into an encrypted CloudWatch log group (on by default in prod)."""
    existing_vpc: ExistingVpc | None = None
    """Adopt this VPC and its subnets instead of creating one; the keys above are then unused."""

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IPv4 network in CIDR form ({exc})") from None
        if not 16 <= net.prefixlen <= 28:
            raise ValueError(f"a VPC range must be /16 to /28, got /{net.prefixlen}")
        return value

    @property
    def nat_instance_architecture(self) -> Architecture:
        """The CPU architecture of ``nat_instance_type`` (arm64 for Graviton): the NAT's image."""
        return family_architecture(instance_family(self.nat_instance_type) or "")

    @property
    def az_cidr_mask(self) -> int:
        """The prefix of each AZ's block: awsx splits the VPC into a power-of-two of blocks."""
        prefix = ipaddress.IPv4Network(self.cidr).prefixlen
        return prefix + math.ceil(math.log2(self.availability_zones))


# --- service -------------------------------------------------------------------------------


class DeploymentConfig(_Model):
    """How ECS replaces tasks on a deploy. Unset values follow the data topology: 0/100
    (stop, then start) when a single writer owns the storage, 100/200 otherwise."""

    minimum_healthy_percent: int | None = Field(default=None, ge=0, le=100)
    """Share of desired tasks kept running during a deploy."""
    maximum_percent: int | None = Field(default=None, ge=100, le=200)
    """Ceiling of tasks during a deploy, as a share of desired."""


class ServiceConfig(_Model):
    """``wwhd:service``: the API's Fargate task and its scaling."""

    cpu: int
    """Task CPU units (1024 = 1 vCPU)."""
    memory: int
    """Task memory in MiB; must be a size Fargate offers for ``cpu``."""
    container_port: Literal[8000] = 8000
    """The port uvicorn listens on inside the API container."""
    desired_count: int = Field(ge=0)
    """Tasks running at deploy time; 0 with ``minCount`` 0 parks the API (no task, no
    autoscaling: docs/operations.md, "Cost")."""
    min_count: int = Field(ge=0)
    """Autoscaling floor."""
    max_count: int = Field(ge=0)
    """Autoscaling ceiling; no autoscaling is created when it equals ``minCount``."""
    spot_percent: int = Field(ge=0, le=100)
    """Share of tasks above ``onDemandBase`` that run on Fargate Spot (100 by default; prod keeps
    one on-demand task through ``onDemandBase``; a Qdrant service runs on Spot only at 100)."""
    on_demand_base: int = Field(default=0, ge=0)
    """Tasks always on on-demand Fargate before the Spot share applies."""
    cpu_architecture: Literal["x86_64", "arm64"] = "arm64"
    """CPU architecture of the images: arm64 (Graviton, about 20% cheaper than x86_64 on Fargate)
    by default; the deploy workflow builds and pushes the API image for both."""
    deployment: DeploymentConfig = DeploymentConfig()
    """How ECS replaces tasks on a deploy; unset keys follow the data topology (0/100 when a
    single writer owns the storage, 100/200 otherwise)."""
    health_check_grace_seconds: int = Field(default=60, ge=0, le=2147483647)
    """Seconds ECS ignores load balancer health checks after a task starts."""
    ecs_exec: bool = False
    """Allow ``aws ecs execute-command`` into tasks (adds the SSM channel to the task role)."""
    cpu_target_percent: int = Field(default=70, ge=1, le=100)
    """Target tracking on average CPU (seed 000)."""
    memory_target_percent: int = Field(default=80, ge=1, le=100)
    """Target tracking on average memory (seed 000)."""
    requests_per_target: int = Field(default=1000, ge=1)
    """Target tracking on ALB requests per task per minute (seed 000)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """LOG_LEVEL passed to the API."""
    model_chat: str = "gpt-4o-mini"
    """MODEL_CHAT passed to the API (seed 001)."""
    model_embed: str = "text-embedding-3-small"
    """MODEL_EMBED passed to the API (seed 001)."""
    allow_origins: list[str] = ["https://wwhd.amplifyapp.com"]
    """ALLOW_ORIGINS: the frontend origins allowed by CORS."""
    jwt_issuer: str = "wwhd"
    """JWT_ISSUER (seed 001)."""
    jwt_audience: str = "wwhd-users"
    """JWT_AUDIENCE (seed 001)."""
    cluster_name: str | None = None
    """Physical name of the ECS cluster, ``wwhd-<stack>`` when unset. Set it to adopt an existing
    cluster with ``pulumi import`` (prod keeps infra-change-001's ``wwhd-cluster``): ECS cannot
    rename a cluster, so any other name replaces it."""
    log_group_name: str | None = None
    """Log group of the API task's containers, ``/ecs/wwhd-backend-<stack>`` when unset; the
    performance records go to ``<logGroupName>/performance``. Set it to adopt an
    existing group (prod keeps infra-change-001's ``/ecs/wwhd-backend``): a log group cannot be
    renamed, so any other name replaces it and leaves its history behind."""

    @field_validator("cluster_name")
    @classmethod
    def _cluster_name(cls, value: str | None) -> str | None:
        if value is not None and not _CLUSTER_NAME.match(value):
            raise ValueError(
                f"ECS cluster names are 1-255 letters, digits, hyphens and underscores, not {value!r}"
            )
        return value

    @field_validator("log_group_name")
    @classmethod
    def _log_group_name(cls, value: str | None) -> str | None:
        if value is not None and not (_LOG_GROUP_NAME.match(value) and len(value) <= LOG_GROUP_NAME_MAX):
            raise ValueError(
                f"log group names are 1-{LOG_GROUP_NAME_MAX} letters, digits and . - _ / #"
                f" (CloudWatch allows 512, {PERFORMANCE_LOG_SUFFIX!r} is appended for the"
                f" performance group), not {value!r}"
            )
        return value


class ImagesConfig(_Model):
    """``wwhd:images``: pinned image references."""

    api_tag: str
    """Tag (``v1.4.2``, a git sha) or digest (``sha256:...``) of the API image in this stack's
    ECR repository. Moving tags such as ``latest`` are refused."""
    qdrant: PinnedImage
    """The full Qdrant image reference, a pinned ``qdrant/qdrant`` release (Docker Hub)."""
    collector: PinnedImage = COLLECTOR_IMAGE
    """The AWS Distro for OpenTelemetry collector run beside the API when tracing is on, pinned
    by tag and digest (ECR Public). Default: the release this version of the program is tested
    with."""
    repository_name: str | None = Field(
        default=None, pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$"
    )
    """Name of the API image repository, ``wwhd/<stack>/api`` when unset. Set it to keep an existing
    repository (prod keeps ``wwhd-prod-backend``): ECR cannot rename one, so another name
    replaces it and its images."""
    pull_through_cache: bool = False
    """Pull third-party images (Qdrant from Docker Hub, the collector from ECR Public) through
    ECR pull-through cache rules of this stack, so tasks pull only from the account's private
    registry: no Docker Hub anonymous pull limit behind the shared NAT address. On in prod."""
    docker_hub_credential_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:ecr-pullthroughcache/.+$",
    )
    """The Secrets Manager secret (name starting ``ecr-pullthroughcache/``) with a Docker Hub
    username and access token, which ECR requires to cache Docker Hub images. Required with
    ``pullThroughCache`` (docs/operations.md: creating it)."""

    @field_validator("api_tag")
    @classmethod
    def _api_tag(cls, value: str) -> str:
        if _DIGEST.match(value):
            return value
        if not _TAG.match(value):
            raise ValueError(f"{value!r} is neither an image tag nor a sha256 digest")
        if value.lower() in MOVING_TAGS:
            raise ValueError(f"tag {value!r} moves; pin a version tag or a sha256 digest")
        return value

    @field_validator("qdrant")
    @classmethod
    def _qdrant(cls, value: str) -> str:
        # The container health check relies on what the official image contains (bash, no
        # curl); a mirror of it (an ECR pull-through cache, another registry) keeps the path.
        name = value.partition("@")[0]
        repository = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
        if not (repository == "qdrant/qdrant" or repository.endswith("/qdrant/qdrant")):
            raise ValueError(f"{value!r} is not the qdrant/qdrant image (or a mirror of it)")
        return value


# --- data ----------------------------------------------------------------------------------


class StorageConfig(_Model):
    """``wwhd:storage``: the EFS file system and its backups."""

    transition_to_ia_days: int
    """Days without access before a file moves to EFS Infrequent Access: 1, 7, 14, 30, 60, 90,
    180, 270 or 365."""
    throughput_mode: Literal["bursting", "elastic"] = "bursting"
    """EFS throughput mode (bursting earns credits; elastic bills per GB transferred)."""
    backup_retention_days: int = Field(ge=1, le=36500)
    """Days AWS Backup keeps each daily recovery point."""
    backup_copy_region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    """Copy each recovery point to a vault in this region (disaster recovery); off when unset."""
    protect: bool
    """Protect the file system, backup vault and stack key from deletion (on in prod)."""
    retain_file_system: bool = False
    """Keep the file system, its access points and its backups although nothing mounts them:
    set on a stack whose data is moving off EFS (Qdrant to its container host's volume,
    docs/operations.md), removed once the data has moved. Default False."""

    @field_validator("transition_to_ia_days")
    @classmethod
    def _ia(cls, value: int) -> int:
        if value not in EFS_IA_DAYS:
            raise ValueError(f"EFS accepts {', '.join(map(str, EFS_IA_DAYS))} days, not {value}")
        return value


class DatabaseConfig(_Model):
    """``wwhd:database``: where the API keeps its relational data."""

    engine: Literal["sqlite", "postgres"]
    """``sqlite`` (a file on EFS, single task only) or ``postgres`` (Amazon RDS)."""
    instance_class: str = Field(default="db.t4g.micro", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    """RDS instance class (postgres only)."""
    engine_version: str = "17"
    """PostgreSQL major version (postgres only)."""
    allocated_storage_gb: int = Field(default=20, ge=20, le=65536)
    """Initial gp3 storage in GB."""
    max_allocated_storage_gb: int = Field(default=100, ge=20, le=65536)
    """Storage autoscaling ceiling in GB."""
    multi_az: bool = False
    """A standby in a second AZ (doubles the instance cost; on in prod)."""
    backup_retention_days: int = Field(default=7, ge=1, le=35)
    """RDS automated backup retention (at least 7 in prod)."""
    deletion_protection: bool = False
    """Refuse deletion and take a final snapshot (on in prod)."""
    name: str = Field(default="wwhd", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
    """The database created in the instance."""
    app_user: str = Field(default="wwhd_app", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    """The database user the API connects as, with IAM authentication (a token per connection,
    no password): created once by an operator (docs/operations.md). The master user, whose
    RDS-managed password rotates every 7 days, is for administration only."""


class QdrantConfig(_Model):
    """``wwhd:qdrant``: where the vector store runs."""

    placement: Literal["sidecar", "service", "instance", "external"]
    """``sidecar`` in the API task and ``service`` (its own Fargate singleton), both with the
    data on EFS; ``instance``, its own singleton on an EC2 container instance with the data on
    an EBS volume (prod's default: Qdrant does not support network file systems); or an
    ``external`` URL (Qdrant Cloud)."""
    cpu: int = 512
    """Task CPU units of the Qdrant service (``service`` and ``instance``; seed 002)."""
    memory: int = 1024
    """Task memory in MiB of the Qdrant service (``service`` and ``instance``; seed 002)."""
    instance_type: str = Field(default="t4g.small", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    """EC2 instance type of the host (``instance`` only): a Nitro type; Graviton (``t4g``,
    ``m7g``, ...) runs the arm64 AMI. Default t4g.small (2 vCPU, 2 GiB)."""
    volume_gb: int = Field(default=20, ge=GP3_MIN_GB, le=GP3_MAX_GB)
    """Size of the gp3 data volume in GiB (``instance`` only); it can grow in place, never
    shrink. Default 20."""
    subnet_index: int = Field(default=0, ge=0)
    """Which of the stack's private subnets (0-based) holds the host and its volume
    (``instance`` only). Change it only through the restore runbook: a volume cannot move to
    another AZ. Default 0."""
    ami_id: str | None = Field(default=None, pattern=r"^ami-[0-9a-f]{8,17}$")
    """Pin the host's AMI (``instance`` only), else the recommended ECS-optimized Amazon Linux
    2023 AMI at each deploy; a deploy after AWS publishes a new one replaces the instance
    (a few minutes without Qdrant)."""
    accept_network_storage: bool = False
    """Accept Qdrant's data on EFS (``service`` or ``sidecar``) in prod. Qdrant does not support
    network file systems and EFS is NFS: prod refuses those placements unless this is true."""

    @property
    def host_architecture(self) -> Architecture:
        """The CPU architecture of ``instance_type`` (arm64 for Graviton): the host's AMI."""
        return family_architecture(instance_family(self.instance_type) or "")

    url: str | None = Field(default=None, pattern=r"^https://\S+$")
    """The managed Qdrant URL (``external`` only; TLS required)."""
    api_key_secret_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$"
    )
    """An existing secret holding the external Qdrant API key; when unset with ``external``,
    the stack creates an empty secret the operator fills in."""


# --- extra services ------------------------------------------------------------------------

_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
RESERVED_SERVICE_NAMES = frozenset({"api", "qdrant"})
# An ALB path pattern: 1-128 characters, wildcards * and ?, starting with /.
_PATH_PATTERN = re.compile(r"^/[A-Za-z0-9_\-.$/~\"'@:+*?&=%]{0,127}$")
# An ALB host header pattern: letters, digits, hyphens, dots, wildcards.
_HOST_PATTERN = re.compile(r"^[A-Za-z0-9*?.-]{1,128}$")


class ExtraServiceConfig(_Model):
    """One entry of ``wwhd:services``: a further ECS service on the stack's cluster and load
    balancer (a frontend, a worker, another API). The API and Qdrant are configured by their
    own sections."""

    name: str
    """Short name: lowercase letters, digits and hyphens, at most 16 characters (it prefixes
    the service's resource names and alarms; ``api`` and ``qdrant`` are taken)."""
    image: PinnedImage
    """The full, pinned image reference (a version tag or a ``@sha256:`` digest)."""
    cpu: int
    """Task CPU units (1024 = 1 vCPU)."""
    memory: int
    """Task memory in MiB; must be a size Fargate offers for ``cpu``."""
    architecture: Literal["x86_64", "arm64"] = "arm64"
    """CPU architecture the image is built for (Graviton by default)."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """The container port the load balancer sends requests to. Unset: a worker, not routed."""
    paths: list[Annotated[str, Field(pattern=_PATH_PATTERN.pattern)]] = Field(default=[], max_length=5)
    """Path patterns routed to the service (``/worker/*``); with ``host``, both must match."""
    host: str | None = Field(default=None, pattern=_HOST_PATTERN.pattern)
    """Host header routed to the service (``admin.wwhd.ai``)."""
    priority: int | None = Field(default=None, ge=1, le=50000)
    """Listener rule priority (lower wins); unique in the stack. Required with ``port``."""
    desired_count: int = Field(default=1, ge=0)
    """Tasks running at deploy time."""
    min_count: int = Field(default=1, ge=0)
    """Autoscaling floor."""
    max_count: int = Field(default=1, ge=0)
    """Autoscaling ceiling; no autoscaling when it equals ``minCount``."""
    spot_percent: int = Field(default=0, ge=0, le=100)
    """Share of tasks above ``onDemandBase`` on Fargate Spot."""
    on_demand_base: int = Field(default=0, ge=0)
    """Tasks always on on-demand Fargate before the Spot share applies."""
    health_check_path: str = Field(default="/health", pattern=r"^/\S{0,1023}$")
    """Path the load balancer probes (routed services only)."""
    environment: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = {}
    """Plain environment variables (never credentials: use ``secrets``)."""
    secrets: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")],
        Annotated[str, Field(pattern=r"^(/[A-Za-z0-9_.\-/]+|arn:aws[a-z-]*:(ssm|secretsmanager):\S+)$")],
    ] = {}
    """Variables injected from a secret: an SSM parameter name (``/wwhd/prod/worker-token``) in
    the stack's region, or the full ARN of a parameter or a Secrets Manager secret."""
    efs: bool = False
    """Give the service its own directory on the stack's file system (``/services/<name>``),
    mounted at ``/data``."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _SERVICE_NAME.match(value):
            raise ValueError(f"{value!r}: 1-16 lowercase letters, digits and hyphens, starting with a letter")
        if value in RESERVED_SERVICE_NAMES:
            raise ValueError(f"{value!r} is the name of a built-in service")
        return value

    @property
    def routed(self) -> bool:
        """The load balancer sends requests to it."""
        return self.port is not None


# --- edge and operations -------------------------------------------------------------------


class LoadBalancerConfig(_Model):
    """``wwhd:loadBalancer``: the internet-facing ALB."""

    idle_timeout: int = Field(ge=1, le=4000)
    """Seconds an idle connection stays open (long for SSE/WebSocket streams)."""
    certificate_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$"
    )
    """An existing ACM certificate for the HTTPS listener."""
    domain: str | None = Field(default=None, pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
    """A DNS name to issue an ACM certificate for and point at the ALB."""
    hosted_zone_id: str | None = Field(default=None, pattern=r"^Z[A-Z0-9]{1,32}$")
    """The Route 53 hosted zone of ``domain``."""
    allow_plain_http: bool = False
    """Serve plain HTTP on port 80 instead of redirecting (dev only, explicit opt-in)."""
    deregistration_delay: int = Field(default=30, ge=0, le=3600)
    """Seconds the ALB drains a task before deregistering it: how long an open stream survives a
    deploy or scale-in before the ALB closes it (short for fast deploys; raise it if answers
    stream longer)."""
    stickiness: bool = True
    """Cookie stickiness so SSE/WebSocket reconnects land on the same task."""
    access_logs: bool = False
    """ALB access logs to a private, encrypted S3 bucket (on in prod)."""
    deletion_protection: bool = False
    """Refuse deletion of the ALB (on in prod)."""

    @property
    def https(self) -> bool:
        """An HTTPS listener exists (a certificate is given or issued for ``domain``)."""
        return bool(self.certificate_arn or self.domain)


class AlarmThresholds(_Model):
    """Alarm thresholds (seeds 000, 001 and 002)."""

    cpu_percent: float = 80
    """The CPU alarms (each service's, the database's) fire above this average for 10 minutes."""
    memory_percent: float = 85
    """Each service's memory alarm fires above this average for 10 minutes."""
    unhealthy_targets: int = Field(default=1, ge=1)
    """The unhealthy targets alarm fires when this many of a service's targets fail the load
    balancer's health checks."""
    # to_camel would spell these target5XxPerMinute; the keys say 5xx/4xx as HTTP does.
    target_5xx_per_minute: float = Field(default=10, alias="target5xxPerMinute")
    """A service's 5xx alarm fires above this many 5xx responses in a minute."""
    alb_5xx_per_minute: float = Field(default=10, alias="alb5xxPerMinute")
    """The load balancer's 5xx alarm fires above this many of its own 5xx responses in a minute."""
    error_4xx_rate_percent: float = Field(default=10, gt=0, le=100, alias="error4xxRatePercent")
    """A service's 4xx alarm fires when more than this share of its requests get a 4xx for
    10 minutes."""
    latency_p95_seconds: float = Field(default=2, gt=0)
    """The latency warning fires when a service's p95 response time is above this for 10 minutes."""
    latency_critical_seconds: float = Field(default=5, gt=0)
    """The latency critical alarm fires when a service's p95 response time is above this for
    5 minutes; above ``latencyP95Seconds``."""
    error_log_lines_per_5_minutes: float = 5
    """The error lines alarm fires above this many ERROR/CRITICAL lines in the API log in 5 minutes."""
    db_connections_percent: float = Field(default=80, gt=0, le=100)
    """The database connections alarm fires above this share of max_connections."""
    db_free_storage_percent: float = Field(default=10, gt=0, lt=100)
    """The database free storage alarm fires below this share of the allocated storage."""
    efs_burst_credit_floor_tib: float = Field(default=1, gt=0)
    """The EFS burst credit alarm fires below this balance. A new file system starts with
    2.1 TiB; 1 TiB left is about 3 hours of bursting at 100 MiB/s, time to switch to elastic
    throughput before it falls back to its baseline (50 KiB/s per GiB stored, at least 1 MiB/s)."""
    qdrant_volume_free_percent: float = Field(default=20, gt=0, lt=100)
    """The Qdrant volume alarm (``instance`` placement) fires when less than this share of the
    EBS volume is free. Default 20: Qdrant needs room to write a segment's optimized copy
    before it drops the old one, and growing a gp3 volume takes a deploy and a file system grow."""


class MonitoringConfig(_Model):
    """``wwhd:monitoring``: who is told, and how long logs are kept."""

    alarm_emails: list[EmailStr] = []
    """Addresses subscribed to the alarm topic (required in prod)."""
    log_retention_days: int
    """Days the stack's log groups keep events (all but the performance records'): a retention
    CloudWatch Logs offers (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."""
    performance_log_retention_days: int = 7
    """Days the performance records are kept (seed 000: 7), a retention CloudWatch Logs offers."""
    tracing: bool = False
    """Run the X-Ray daemon beside the API and sample requests (seed 000)."""
    thresholds: AlarmThresholds = AlarmThresholds()
    """Alarm thresholds (seeds 000, 001 and 002)."""

    @field_validator("log_retention_days", "performance_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"CloudWatch Logs accepts {', '.join(map(str, LOG_RETENTION_DAYS))} days, not {value}"
            )
        return value


# AWS tags: keys of 1-128 characters, values of up to 256.
Tags = dict[Annotated[str, Field(min_length=1, max_length=128)], Annotated[str, Field(max_length=256)]]


class StackConfig(_Model):
    """The whole validated configuration of one stack."""

    environment: Environment
    """Which defaults apply to the keys a stack file leaves out, and which rules (prod's are
    stricter)."""
    region: str
    """The AWS region of the stack (``aws:region``)."""
    network: NetworkConfig
    """The VPC: a new one (default) or an existing one."""
    service: ServiceConfig
    """The API's task, its scaling and its environment."""
    images: ImagesConfig
    """Pinned image references."""
    storage: StorageConfig
    """The EFS file system and its backups."""
    database: DatabaseConfig
    """Where the API keeps its relational data."""
    qdrant: QdrantConfig
    """Where the vector store runs."""
    load_balancer: LoadBalancerConfig
    """The internet-facing load balancer."""
    monitoring: MonitoringConfig
    """Who is told of alarms, their thresholds, and how long logs are kept."""
    services: list[ExtraServiceConfig] = []
    """Further ECS services on the stack's cluster and load balancer (README, "Adding a service")."""
    tags: Tags = {}
    """Extra tags on every resource, beside Project, Environment and ManagedBy."""

    @property
    def indexed_services(self) -> list[tuple[int, ExtraServiceConfig]]:
        """The extra services with their position in ``wwhd:services`` (error paths)."""
        return list(enumerate(self.services))

    @property
    def postgres(self) -> bool:
        """True when the API keeps its relational data in PostgreSQL (RDS), not SQLite on EFS."""
        return self.database.engine == "postgres"

    @property
    def qdrant_on_efs(self) -> bool:
        """True when Qdrant's directory lives on EFS: as a sidecar or a Fargate service, or kept
        (``storage.retainFileSystem``) by a stack moving Qdrant off EFS until the move is done."""
        return self.qdrant.placement in ("sidecar", "service") or self.storage.retain_file_system

    @property
    def efs_services(self) -> list[str]:
        """The extra services that mount a directory of the file system."""
        return [s.name for s in self.services if s.efs]

    @property
    def uses_efs(self) -> bool:
        """True when anything keeps files on EFS (SQLite, Qdrant, an extra service's directory):
        the stack then has a file system."""
        return not self.postgres or self.qdrant_on_efs or bool(self.efs_services)

    @property
    def single_writer(self) -> bool:
        """True when a writer in the API task owns files on EFS (SQLite, or Qdrant as a
        sidecar), so the API service may never run two tasks at once."""
        return self.database.engine == "sqlite" or self.qdrant.placement == "sidecar"

    @property
    def deployment_percents(self) -> tuple[int, int]:
        """(minimum healthy, maximum) percent for the API service's deployments."""
        dep = self.service.deployment
        default = (0, 100) if self.single_writer else (100, 200)
        return (
            default[0] if dep.minimum_healthy_percent is None else dep.minimum_healthy_percent,
            default[1] if dep.maximum_percent is None else dep.maximum_percent,
        )

    @property
    def stack_tags(self) -> dict[str, str]:
        """Tags every resource carries: the defaults, then the stack file's."""
        return {"Project": "wwhd", "Environment": self.environment, "ManagedBy": "pulumi"} | self.tags


# --- per-environment defaults (seed 000 unless noted) --------------------------------------

_COMMON: dict[str, dict[str, Any]] = {
    "images": {"qdrant": "qdrant/qdrant:v1.16.2"},
}

# What each environment sets beyond the fields' own defaults, one setting a row, the
# environments side by side; None leaves the field's own default in that environment.
# Issue 20: dev at most 55 USD a month, prod about 200 (README, "Cost"). Prod runs two
# 1 vCPU / 2 GB Graviton tasks in two AZs, the first on-demand and every further one on Spot,
# scaling to the seed's capacity (ten 2 vCPU / 4 GB tasks = twenty of these), behind one NAT
# gateway, with a Multi-AZ db.t4g.small.
_BY_ENVIRONMENT: dict[tuple[str, str], tuple[Any, Any, Any]] = {
    # section, key                           dev         staging    prod
    # A NAT instance instead of the gateway saves dev about 30 USD a month.
    ("network", "natGateways"):             ("instance", "single",  "single"),
    ("network", "flowLogs"):                (False,      False,     True),
    ("service", "cpu"):                     (512,        1024,      1024),
    ("service", "memory"):                  (2048,       2048,      2048),
    ("service", "desiredCount"):            (1,          1,         2),
    ("service", "minCount"):                (1,          1,         2),
    ("service", "maxCount"):                (1,          1,         20),
    ("service", "onDemandBase"):            (None,       None,      1),
    ("service", "spotPercent"):             (100,        100,       100),
    ("service", "logLevel"):                ("DEBUG",    None,      None),
    ("storage", "transitionToIaDays"):      (7,          14,        30),
    ("storage", "backupRetentionDays"):     (7,          14,        30),
    ("storage", "protect"):                 (False,      False,     True),
    ("database", "engine"):                 ("sqlite",   "sqlite",  "postgres"),
    ("database", "instanceClass"):          (None,       None,      "db.t4g.small"),
    ("database", "multiAz"):                (None,       None,      True),
    ("database", "backupRetentionDays"):    (None,       None,      7),
    ("database", "deletionProtection"):     (None,       None,      True),
    ("qdrant", "placement"):                ("sidecar",  "sidecar", "instance"),
    ("loadBalancer", "idleTimeout"):        (60,         300,       600),
    ("loadBalancer", "accessLogs"):         (None,       None,      True),
    ("loadBalancer", "deletionProtection"): (None,       None,      True),
    ("monitoring", "logRetentionDays"):     (7,          14,        30),
    ("monitoring", "tracing"):              (None,       None,      True),
    ("images", "pullThroughCache"):         (None,       None,      True),
}  # fmt: skip


def _environment_column(index: int) -> dict[str, dict[str, Any]]:
    """One environment's column of _BY_ENVIRONMENT, as stack file sections."""
    sections: dict[str, dict[str, Any]] = {}
    for (section, key), values in _BY_ENVIRONMENT.items():
        if values[index] is not None:
            sections.setdefault(section, {})[key] = values[index]
    return sections


DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    environment: _environment_column(index) for index, environment in enumerate(get_args(Environment))
}

# The stack file key of each section, in the order errors are reported.
SECTIONS: dict[str, type[_Model]] = {
    "network": NetworkConfig,
    "service": ServiceConfig,
    "images": ImagesConfig,
    "storage": StorageConfig,
    "database": DatabaseConfig,
    "qdrant": QdrantConfig,
    "loadBalancer": LoadBalancerConfig,
    "monitoring": MonitoringConfig,
}
_PLAIN_KEYS = ("environment", "tags", "services")
# Secrets are read with read_secret, never copied into the (printable) model;
# each with its description (the README's configuration table).
SECRET_KEYS: dict[str, str] = {
    "openaiApiKey": "The OpenAI API key, set with ``pulumi config set --secret``: it becomes the"
    " OPENAI_API_KEY parameter of the stack. When unset the parameter holds a placeholder the"
    " operator overwrites, and the stack leaves the value alone from then on.",
}
_TAGS = TypeAdapter(Tags, config=ConfigDict(strict=True))


def environment_defaults(environment: str) -> dict[str, dict[str, Any]]:
    """Each section's values for the keys a stack file of ``environment`` leaves out, beyond
    the fields' own defaults."""
    return _merge(_COMMON, DEFAULTS[environment])


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` onto a copy of ``base`` (the stack file wins)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _p(section: str, key: str) -> str:
    return f"{NAMESPACE}:{section}.{key}"


# --- rules across keys: each returns the problems it finds ---------------------------------


def _fargate_size(where: str, cpu: int, memory: int) -> list[Problem]:
    if cpu not in FARGATE_SIZES:
        sizes = ", ".join(map(str, FARGATE_SIZES))
        return [Problem(f"{where}.cpu", f"Fargate offers {sizes} CPU units, not {cpu}")]
    allowed = FARGATE_SIZES[cpu]
    if memory not in allowed:
        return [
            Problem(
                f"{where}.memory",
                f"Fargate with {cpu} CPU units offers {allowed[0]}-{allowed[-1]} MiB"
                f" in steps of {allowed[1] - allowed[0]} MiB, not {memory}",
            )
        ]
    return []


def _service_rules(c: StackConfig) -> list[Problem]:
    s, where = c.service, f"{NAMESPACE}:service"
    problems = _fargate_size(where, s.cpu, s.memory)
    if s.min_count > s.desired_count:
        problems.append(
            Problem(_p("service", "minCount"), f"{s.min_count} is above desiredCount {s.desired_count}")
        )
    if s.desired_count > s.max_count:
        problems.append(
            Problem(_p("service", "desiredCount"), f"{s.desired_count} is above maxCount {s.max_count}")
        )
    if s.max_count < 1:
        problems.append(Problem(_p("service", "maxCount"), "must allow at least one task"))
    return problems


def _task_fit_rules(c: StackConfig) -> list[Problem]:
    """The API task's containers fit it: their hard limits within its memory, each essential
    one at least at its floor."""
    s = c.service
    if _fargate_size("", s.cpu, s.memory):
        return []  # reported by _service_rules
    try:
        split_task(
            s.cpu, s.memory, qdrant_sidecar=c.qdrant.placement == "sidecar", tracing=c.monitoring.tracing
        )
    except ValueError as exc:
        return [Problem(_p("service", "memory"), str(exc))]
    return []


def _network_rules(c: StackConfig) -> list[Problem]:
    n = c.network
    if n.existing_vpc is not None:
        return []
    problems = []
    if c.environment == "prod" and not n.flow_logs:
        problems.append(Problem(_p("network", "flowLogs"), "prod keeps VPC flow logs (incident forensics)"))
    if n.subnet_mask <= n.az_cidr_mask:
        problems.append(
            Problem(
                _p("network", "cidr"),
                f"{n.cidr} is too small for {n.availability_zones} AZs with a public and a"
                f" private /{n.subnet_mask} subnet each (each AZ gets a /{n.az_cidr_mask});"
                f" widen the range or raise subnetMask",
            )
        )
    return problems + _nat_rules(c)


def _nat_rules(c: StackConfig) -> list[Problem]:
    """The NAT instance is a dev economy: one instance carries every private subnet's egress."""
    n = c.network
    if n.nat_gateways != "instance":
        if "nat_instance_type" in n.model_fields_set:
            return [Problem(_p("network", "natInstanceType"), "only used when natGateways is instance")]
        return []
    if c.environment == "prod":
        return [
            Problem(
                _p("network", "natGateways"),
                "instance is for dev: one EC2 instance in one AZ carries all egress (image pulls,"
                " secrets, logs, OpenAI), stops it while the instance or its AZ is down and caps"
                " it at a small instance's bandwidth; prod uses one-per-az (or single)",
            )
        ]
    if instance_family(n.nat_instance_type) in AL2023_UNSUPPORTED_FAMILIES:
        return [
            Problem(
                _p("network", "natInstanceType"),
                f"{n.nat_instance_type}: Amazon Linux 2023, the NAT instance's OS, does not run on A1"
                " instances; use a t4g type",
            )
        ]
    return []


def _single_writer_rules(c: StackConfig) -> list[Problem]:
    """SQLite's locking is unreliable over NFS and Qdrant does not support network file
    systems: when either keeps its files on EFS inside the API task, one task only."""
    if not c.single_writer:
        return []
    writer = "database.engine is sqlite" if c.database.engine == "sqlite" else "qdrant.placement is sidecar"
    why = f"{writer}: only one task may write its files on EFS"
    s = c.service
    problems = []
    if s.desired_count > 1:
        problems.append(Problem(_p("service", "desiredCount"), f"{s.desired_count} > 1 but {why}"))
    if s.max_count > 1:
        problems.append(Problem(_p("service", "maxCount"), f"{s.max_count} > 1 but {why}"))
    _, maximum = c.deployment_percents
    if maximum > 100:
        problems.append(
            Problem(
                _p("service", "deployment.maximumPercent"),
                f"{maximum} lets a new task start beside the old one but {why}; use 100"
                " (with minimumHealthyPercent 0)",
            )
        )
    minimum, _ = c.deployment_percents
    if minimum > 0 and maximum <= 100:
        problems.append(
            Problem(
                _p("service", "deployment.minimumHealthyPercent"),
                f"{minimum} with maximumPercent {maximum} leaves ECS no way to replace the"
                " single task; use 0",
            )
        )
    return problems


# The keys of wwhd:qdrant that only one kind of placement reads.
_INSTANCE_KEYS = {"instance_type": "instanceType", "volume_gb": "volumeGb", "subnet_index": "subnetIndex",
                  "ami_id": "amiId"}  # fmt: skip
_EFS_PLACEMENTS = ("service", "sidecar")


def _qdrant_rules(c: StackConfig) -> list[Problem]:
    q = c.qdrant
    problems = []
    if q.placement == "external" and q.url is None:
        problems.append(Problem(_p("qdrant", "url"), "required when placement is external"))
    if q.placement != "external":
        for key, value in (("url", q.url), ("apiKeySecretArn", q.api_key_secret_arn)):
            if value is not None:
                problems.append(Problem(_p("qdrant", key), "only used when placement is external"))
    if q.placement == "service":
        problems += _fargate_size(f"{NAMESPACE}:qdrant", q.cpu, q.memory)
    if q.placement != "instance":
        for field_name in sorted(q.model_fields_set & set(_INSTANCE_KEYS)):
            problems.append(
                Problem(_p("qdrant", _INSTANCE_KEYS[field_name]), "only used when placement is instance")
            )
    elif instance_family(q.instance_type) in XEN_FAMILIES:
        problems.append(
            Problem(
                _p("qdrant", "instanceType"),
                f"{q.instance_type} is a Xen type: the host needs a Nitro type (EBS volumes as NVMe devices)",
            )
        )
    if q.placement in _EFS_PLACEMENTS and c.environment == "prod" and not q.accept_network_storage:
        problems.append(
            Problem(
                _p("qdrant", "placement"),
                f"{q.placement} keeps Qdrant's data on EFS, and Qdrant does not support network file"
                " systems (EFS is NFS): prod uses placement instance (an EBS volume) or external;"
                " set wwhd:qdrant.acceptNetworkStorage: true to accept the risk knowingly",
            )
        )
    return problems


def _qdrant_host_rules(c: StackConfig) -> list[Problem]:
    """The host's subnet must be one of the stack's private subnets."""
    q, n = c.qdrant, c.network
    if q.placement != "instance":
        return []
    count = len(n.existing_vpc.private_subnet_ids) if n.existing_vpc is not None else n.availability_zones
    if q.subnet_index >= count:
        return [
            Problem(
                _p("qdrant", "subnetIndex"),
                f"{q.subnet_index} is not one of the stack's {count} private subnets (0-{count - 1})",
            )
        ]
    return []


def _database_rules(c: StackConfig) -> list[Problem]:
    d = c.database
    problems = []
    if d.max_allocated_storage_gb < d.allocated_storage_gb:
        problems.append(
            Problem(
                _p("database", "maxAllocatedStorageGb"),
                f"{d.max_allocated_storage_gb} is below allocatedStorageGb {d.allocated_storage_gb}",
            )
        )
    if c.environment != "dev" and d.engine == "postgres" and d.backup_retention_days < 7:
        problems.append(
            Problem(
                _p("database", "backupRetentionDays"),
                f"{c.environment} keeps RDS backups at least 7 days (point-in-time recovery)",
            )
        )
    if c.environment == "prod" and d.engine == "postgres" and not d.deletion_protection:
        problems.append(
            Problem(_p("database", "deletionProtection"), "prod protects its database from deletion")
        )
    return problems


def _load_balancer_rules(c: StackConfig) -> list[Problem]:
    lb = c.load_balancer
    problems = []
    if lb.allow_plain_http and c.environment != "dev":
        problems.append(
            Problem(_p("loadBalancer", "allowPlainHttp"), f"plain HTTP is for dev only, not {c.environment}")
        )
    if lb.certificate_arn and lb.domain:
        problems.append(Problem(_p("loadBalancer", "domain"), "set certificateArn or domain, not both"))
    if (lb.domain is None) != (lb.hosted_zone_id is None):
        problems.append(Problem(_p("loadBalancer", "hostedZoneId"), "domain and hostedZoneId go together"))
    if c.environment == "prod":
        # Issue 4: prod keeps a record of every request and cannot lose its load balancer to a
        # mistaken destroy (its DNS name is what the domain points at).
        for key, on in (("accessLogs", lb.access_logs), ("deletionProtection", lb.deletion_protection)):
            if not on:
                problems.append(Problem(_p("loadBalancer", key), "must be true in prod"))
    if not (lb.certificate_arn or lb.domain or lb.allow_plain_http):
        problems.append(
            Problem(
                f"{NAMESPACE}:loadBalancer",
                "HTTPS needs certificateArn, or domain with hostedZoneId"
                + (" (or allowPlainHttp in dev)" if c.environment == "dev" else ""),
            )
        )
    return problems


def _monitoring_rules(c: StackConfig) -> list[Problem]:
    m = c.monitoring
    problems = []
    if c.environment == "prod":
        for key, days in (
            ("logRetentionDays", m.log_retention_days),
            ("performanceLogRetentionDays", m.performance_log_retention_days),
        ):
            if days < 7:
                problems.append(
                    Problem(_p("monitoring", key), f"prod keeps logs at least 7 days, not {days}")
                )
    if c.environment == "prod" and not m.alarm_emails:
        problems.append(Problem(_p("monitoring", "alarmEmails"), "prod needs at least one alarm recipient"))
    if m.thresholds.latency_critical_seconds <= m.thresholds.latency_p95_seconds:
        problems.append(
            Problem(
                _p("monitoring", "thresholds.latencyCriticalSeconds"),
                "must be above thresholds.latencyP95Seconds",
            )
        )
    return problems


def _images_rules(c: StackConfig) -> list[Problem]:
    i = c.images
    if i.pull_through_cache and i.docker_hub_credential_arn is None:
        return [
            Problem(
                _p("images", "dockerHubCredentialArn"),
                "required with pullThroughCache: ECR caches Docker Hub images only with Docker Hub"
                " credentials in a secret named ecr-pullthroughcache/... (docs/operations.md)",
            )
        ]
    return []


def _storage_rules(c: StackConfig) -> list[Problem]:
    s = c.storage
    problems = []
    if s.backup_copy_region is not None and s.backup_copy_region == c.region:
        problems.append(Problem(_p("storage", "backupCopyRegion"), f"is the stack's own region {c.region}"))
    if c.environment == "prod" and not s.protect:
        problems.append(
            Problem(_p("storage", "protect"), "prod protects its file system, vault and key from deletion")
        )
    return problems


def _services_rules(c: StackConfig) -> list[Problem]:
    """Each extra service: a Fargate size, a complete route, and no clash with another."""
    problems: list[Problem] = []
    names: dict[str, int] = {}
    priorities: dict[int, str] = {}
    routes: dict[tuple[str | None, str | None], str] = {}
    for i, svc in c.indexed_services:
        where = f"{NAMESPACE}:services[{i}]"
        problems += _fargate_size(where, svc.cpu, svc.memory)
        if svc.name in names:
            problems.append(Problem(f"{where}.name", f"{svc.name!r} is already services[{names[svc.name]}]"))
        names.setdefault(svc.name, i)
        if svc.min_count > svc.desired_count or svc.desired_count > svc.max_count:
            problems.append(Problem(f"{where}.desiredCount", "must lie between minCount and maxCount"))
        if not svc.routed:
            for key, value in (("paths", svc.paths), ("host", svc.host), ("priority", svc.priority)):
                if value:
                    problems.append(Problem(f"{where}.{key}", "only used with port (a routed service)"))
            continue
        if not (svc.paths or svc.host):
            problems.append(Problem(f"{where}.paths", "a routed service needs paths, host or both"))
        if svc.priority is None:
            problems.append(Problem(f"{where}.priority", "required with port"))
        elif svc.priority in priorities:
            problems.append(
                Problem(
                    f"{where}.priority", f"{svc.priority} is already used by {priorities[svc.priority]!r}"
                )
            )
        else:
            priorities[svc.priority] = svc.name
        for path in svc.paths or [None]:
            key = (svc.host, path)
            if key in routes:
                what = " and ".join(
                    x for x in (f"host {svc.host}" if svc.host else "", f"path {path}" if path else "") if x
                )
                problems.append(Problem(f"{where}.paths", f"{what} is already routed to {routes[key]!r}"))
            routes.setdefault(key, svc.name)
    return problems


# Each rule with the sections it reads: it runs only when those all parsed.
RULES: tuple[tuple[tuple[str, ...], Callable[[StackConfig], list[Problem]]], ...] = (
    (("network",), _network_rules),
    (("service",), _service_rules),
    (("service", "qdrant", "monitoring"), _task_fit_rules),
    (("service", "database", "qdrant"), _single_writer_rules),
    (("qdrant",), _qdrant_rules),
    (("qdrant", "network"), _qdrant_host_rules),
    (("database",), _database_rules),
    (("loadBalancer",), _load_balancer_rules),
    (("monitoring",), _monitoring_rules),
    (("storage",), _storage_rules),
    (("images",), _images_rules),
    ((), _services_rules),
)


def parse_stack_config(raw: Mapping[str, Any], region: str | None) -> StackConfig:
    """Validate the ``wwhd`` namespace of a stack (keys without the ``wwhd:`` prefix, values
    already decoded from JSON) plus ``aws:region``. Raises ``ConfigError`` listing every
    problem, in a stable order (``order``); returns the frozen model otherwise."""
    problems: list[Problem] = []
    top_keys = [*SECTIONS, *_PLAIN_KEYS, *SECRET_KEYS]
    for key in raw:
        if key not in top_keys:
            problems.append(Problem(f"{NAMESPACE}:{key}", unknown_key(key, top_keys)))
    if not region:
        problems.append(Problem("aws:region", "required key is missing"))

    environment = raw.get("environment")
    # The environment when it is one of DEFAULTS' (None otherwise).
    known = environment if isinstance(environment, str) and environment in DEFAULTS else None
    if known is None:
        problems.append(
            Problem(
                f"{NAMESPACE}:environment",
                "required key is missing (dev, staging or prod)"
                if environment is None
                else f"must be one of dev, staging, prod, not {plain(environment)}",
            )
        )
    # Every environment's defaults fill the same required keys, so with an unknown environment
    # each section is still checked key by key (against dev's defaults); the rules across
    # keys, which judge values the environment decides, wait for a known one.
    defaults = environment_defaults(known or "dev")

    sections: dict[str, _Model] = {}
    for key, model in SECTIONS.items():
        given = raw.get(key, {})
        if not isinstance(given, Mapping):
            problems.append(
                Problem(f"{NAMESPACE}:{key}", f"must be a mapping of keys to values, not {plain(given)}")
            )
            continue
        values = dict(given)
        if key == "network" and "existingVpc" in values:
            # An adopted VPC ignores the new-VPC defaults; keys set beside it are an error.
            clash = sorted(
                set(values) & {"cidr", "availabilityZones", "subnetMask", "natGateways", "natInstanceType"}
            )
            for name in clash:
                problems.append(Problem(_p(key, name), "not used with existingVpc; remove it"))
            merged = {k: v for k, v in _merge(defaults.get(key, {}), values).items() if k not in clash}
        else:
            merged = _merge(defaults.get(key, {}), values)
        section, found = validate(model, merged, f"{NAMESPACE}:{key}")
        problems += found
        if section is not None:
            sections[key] = section

    # Each entry that parsed, with its index: the rules across services run on those, so a
    # typo in one entry does not hide a clash between two others.
    services: list[tuple[int, ExtraServiceConfig]] = []
    given_services = raw.get("services", [])
    if not isinstance(given_services, list):
        problems.append(
            Problem(f"{NAMESPACE}:services", f"must be a list of services, not {plain(given_services)}")
        )
    else:
        for i, entry in enumerate(given_services):
            svc, found = validate(ExtraServiceConfig, entry, f"{NAMESPACE}:services[{i}]")
            problems += found
            if svc is not None:
                services.append((i, svc))

    tags: dict[str, str] = {}
    try:
        tags = _TAGS.validate_python(raw.get("tags", {}))
    except ValidationError as exc:
        problems += [problem(f"{NAMESPACE}:tags", None, err) for err in exc.errors()]

    # Rules across keys run on every section that parsed, so one pass reports everything.
    view = _Partial(known or "", region or "", sections, services)
    for needs, rule in RULES:
        if (known is not None or not needs) and all(n in sections for n in needs):
            problems += rule(view)  # type: ignore[arg-type]
    if problems:
        raise ConfigError(sorted(problems, key=order))
    return StackConfig.model_validate(
        {
            "environment": environment,
            "region": region,
            "tags": tags,
            "services": [svc for _, svc in services],
            **sections,
        }
    )


# The stack file's top-level keys in the order problems are listed: the region and the
# environment, the sections, then the lists; unknown keys last.
_TOP_ORDER = ("aws:region", *(f"{NAMESPACE}:{key}" for key in ("environment", *SECTIONS, "services", "tags")))
_TOP_MODELS: dict[str, type[BaseModel]] = {
    **{f"{NAMESPACE}:{key}": model for key, model in SECTIONS.items()},
    f"{NAMESPACE}:services": ExtraServiceConfig,
}
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def order(problem: Problem) -> tuple[int, ...]:
    """Where a problem stands in the list: by top-level key (``_TOP_ORDER``), then by the
    position of each key of its path in its model (the README table's order), unknown keys
    after the known ones. Problems with the same path keep the order they were found in."""
    top = re.split(r"[.\[]", problem.path, maxsplit=1)[0]
    rank = [_TOP_ORDER.index(top) if top in _TOP_ORDER else len(_TOP_ORDER)]
    model = _TOP_MODELS.get(top)
    for name, index in _PATH_PART.findall(problem.path[len(top) :]):
        if index:
            rank.append(int(index))
        elif model is None:
            rank.append(0)
        else:
            position, model = field_at(model, name)
            rank.append(position)
    return tuple(rank)


class _Partial:
    """What the rules read, for a configuration whose sections may not all have parsed."""

    def __init__(
        self,
        environment: str,
        region: str,
        sections: Mapping[str, _Model],
        services: list[tuple[int, ExtraServiceConfig]],
    ):
        self.environment = environment
        self.region = region
        self.indexed_services = services
        for key, section in sections.items():
            setattr(self, alias_generators.to_snake(key), section)

    single_writer = StackConfig.single_writer
    deployment_percents = StackConfig.deployment_percents


def read_secret(key: str) -> pulumi.Output[str] | None:
    """A key of ``SECRET_KEYS`` as a secret Output (None when unset), never part of the model."""
    assert key in SECRET_KEYS, f"{key} is not one of the stack's secret keys"
    return pulumi.Config(NAMESPACE).get_secret(key)


def read_stack_config() -> StackConfig:
    """Read and validate the running stack's configuration (``__main__.py`` calls this once)."""
    raw = read_namespace(NAMESPACE, plain_keys=("environment",), skip=tuple(SECRET_KEYS))
    return parse_stack_config(raw, pulumi.Config("aws").get("region"))
