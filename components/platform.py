"""WwhdPlatform: what every service of the stack shares and outlives any one of them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components import service_iam as iam
from components.bucket import private_bucket, whole_bucket_rule
from components.component import WwhdComponent
from components.legacy import NONE, Legacy
from components.load_balancer import WwhdLoadBalancer, WwhdLoadBalancerArgs
from components.service import ClusterRef, capacity_provider_strategy
from stack_config import LoadBalancerConfig

TOKEN = "wwhd:index:WwhdPlatform"

DOCKER_HUB = "docker.io"
ECR_PUBLIC = "public.ecr.aws"
OPERATOR_SETS_IT = "set-by-the-operator"
"""A parameter's value until the operator sets the real one (SSM refuses an empty value)."""

ECR_KEEP_IMAGES = 20
ECR_UNTAGGED_DAYS = 30
JWT_SECRET_LENGTH = 64
DOCUMENTS_NONCURRENT_DAYS = 90
# Container Insights "enabled" (cluster- and service-level metrics), not "enhanced": the alarms
# and autoscaling here read service averages, and enhanced observability bills every task- and
# container-level metric on top, a cost without a consumer in this stack.
CONTAINER_INSIGHTS = "enabled"


@dataclass(frozen=True)
class PlatformNetwork:
    """Where the load balancer lives."""

    vpc_id: pulumi.Input[str]
    public_subnet_ids: pulumi.Input[Sequence[str]]
    """Subnets of the load balancer (at least two AZs)."""
    load_balancer_security_group_id: pulumi.Input[str]


@dataclass(frozen=True)
class PlatformSecrets:
    """The application secrets the stack holds for its services, as SSM SecureString
    parameters encrypted with the stack key.

    Parameter Store rather than Secrets Manager: a task definition may name a parameter of its
    own region by its name, which is known before anything exists, while a Secrets Manager
    secret must be named by its full ARN, whose random suffix is not -- so container definitions
    that inject them could not be judged by the policy pack on a new stack. These are static
    keys (nothing rotates them), and standard parameters cost nothing."""

    openai_api_key: pulumi.Input[str] | None = None
    """The OpenAI key (an encrypted stack config value). Default None: the parameter holds a
    placeholder the operator overwrites (``aws ssm put-parameter --overwrite``), and the stack
    leaves the value alone from then on."""
    jwt_secret: pulumi.Input[str] | None = None
    """The JWT signing secret. Default None: 64 random characters generated at deploy time
    (kept, encrypted, in the Pulumi state)."""
    qdrant_api_key: bool = False
    """Hold an API key for an external Qdrant. Default False."""
    qdrant_api_key_arn: str | None = None
    """An existing Secrets Manager secret with that key (its full ARN); when unset with
    ``qdrant_api_key``, the stack creates a parameter the operator fills in."""


@dataclass(frozen=True)
class PullThroughCache:
    """ECR pull-through cache rules: tasks pull third-party images from the account's private
    registry, which fetches them once from upstream."""

    docker_hub_credential_arn: str
    """The ``ecr-pullthroughcache/...`` secret with Docker Hub credentials."""


@dataclass(frozen=True)
class WwhdPlatformArgs:
    """What the platform is built from."""

    region: str
    """AWS region: the access-log bucket policy's principal."""
    key_arn: pulumi.Input[str]
    """The stack key: the registry, secrets and documents bucket are encrypted with it."""
    cluster_name: str
    """Physical name of the ECS cluster (ECS cannot rename one: a new name replaces it)."""
    repository_name: str
    """Physical name of the API image repository."""
    network: PlatformNetwork
    """VPC, public subnets and the load balancer's security group."""
    load_balancer: LoadBalancerConfig
    """The ``wwhd:loadBalancer`` section."""
    default_port: int
    """Port of the default backend (the API): the target group the listeners forward to."""
    spot_percent: int = 0
    """The cluster's default capacity provider strategy: share on Fargate Spot. Default 0."""
    on_demand_base: int = 0
    """...above this many on-demand tasks. Default 0."""
    secrets: PlatformSecrets = PlatformSecrets()
    """Application secrets. Default: OpenAI key left to the operator, a generated JWT secret."""
    pull_through_cache: PullThroughCache | None = None
    """Cache Docker Hub and ECR Public images in the account's registry. Default: off."""
    protect: bool = False
    """Protect the documents bucket from deletion (on in prod). Default False."""
    discovery_namespace: str | None = None
    """A Cloud Map private DNS namespace of this name, for services found by name. Default none."""
    legacy: Legacy = NONE
    """Where its resources lived before the component split (aliases). Default: nowhere."""


class WwhdPlatform(
    WwhdComponent[WwhdPlatformArgs],
    token=TOKEN,
    internal=("cluster", "load_balancer"),
):
    """The cluster (Container Insights, Fargate and Fargate Spot), the internet-facing load
    balancer (HTTPS, HTTP redirected; its default backend), the API image registry, the
    application secrets, the documents bucket and the service discovery namespace.

    Services are added on top (``WwhdService``): they attach to the default target group or
    add a listener rule of their own.
    """

    cluster: ClusterRef
    """The cluster as a service needs it."""
    cluster_name: pulumi.Output[str]
    """The ECS cluster's name."""
    repository_url: pulumi.Output[str]
    """Push the API image here."""
    repository_name: pulumi.Output[str]
    """The repository's name."""
    load_balancer: WwhdLoadBalancer
    """The load balancer component (URL, DNS name, listeners, default target group)."""
    rules_listener_arn: pulumi.Output[str]
    """The listener services add their rules to (HTTPS when there is a certificate)."""
    secret_references: dict[str, str]
    """Environment variable -> what a task definition names to inject it (a parameter name in
    the stack's region, or a given secret's ARN): known before anything exists."""
    registry: pulumi.Output[str]
    """The account's private registry host (``<account>.dkr.ecr.<region>.amazonaws.com``)."""
    cache_prefixes: dict[str, str]
    """Upstream registry host -> the repository prefix its cached images live under (empty
    without a pull-through cache)."""
    documents_bucket_name: pulumi.Output[str]
    """The documents bucket (seed 003)."""
    documents_bucket_arn: pulumi.Output[str]
    """Its ARN."""
    namespace_id: pulumi.Output[str] | None
    """The Cloud Map namespace, when asked for."""

    def _build(self, name: str, args: WwhdPlatformArgs) -> None:
        self._args = args
        legacy = args.legacy
        stack = pulumi.get_stack()

        repository = aws.ecr.Repository(
            f"{name}-api",
            name=args.repository_name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=args.key_arn)
            ],
            opts=legacy.options(self, f"{name}-api"),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-api",
            repository=repository.name,
            policy=json.dumps(ecr_lifecycle_policy()),
            opts=legacy.options(self, f"{name}-api"),
        )

        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=args.cluster_name,
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value=CONTAINER_INSIGHTS)],
            opts=legacy.options(self, f"{name}-cluster"),
        )
        capacity = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity",
            cluster_name=cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategies=[
                aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(
                    capacity_provider=s.capacity_provider, weight=s.weight, base=s.base
                )
                for s in capacity_provider_strategy(args.spot_percent, args.on_demand_base)
            ],
            opts=legacy.options(self, f"{name}-capacity"),
        )

        self.secret_references = self._secrets(name, stack)
        self.registry = aws.get_caller_identity_output(opts=self._invoke).account_id.apply(
            lambda account: f"{account}.dkr.ecr.{args.region}.amazonaws.com"
        )
        self.cache_prefixes = self._pull_through_cache(name, stack)
        bucket = self._documents_bucket(name)

        lb = WwhdLoadBalancer(
            f"{name}-lb",
            WwhdLoadBalancerArgs(
                config=args.load_balancer,
                region=args.region,
                vpc_id=args.network.vpc_id,
                public_subnet_ids=args.network.public_subnet_ids,
                security_group_id=args.network.load_balancer_security_group_id,
                container_port=args.default_port,
            ),
            opts=legacy.options(self, f"{name}-lb"),
        )

        self.namespace_id = None
        if args.discovery_namespace is not None:
            namespace = aws.servicediscovery.PrivateDnsNamespace(
                f"{name}-namespace",
                name=args.discovery_namespace,
                vpc=args.network.vpc_id,
                description="W.W.H.D. internal service discovery",
                opts=legacy.options(self, f"{name}-namespace"),
            )
            self.namespace_id = namespace.id

        self.cluster = ClusterRef(name=cluster.name, arn=cluster.arn, region=args.region, ready=[capacity])
        self.cluster_name = cluster.name
        self.repository_url = repository.repository_url
        self.repository_name = repository.name
        self.load_balancer = lb
        self.rules_listener_arn = lb.rules_listener_arn
        self.documents_bucket_name = bucket.bucket
        self.documents_bucket_arn = bucket.arn

    def _secrets(self, name: str, stack: str) -> dict[str, str]:
        """Environment variable -> parameter name (or given secret ARN), for every application
        secret the stack holds."""
        args = self._args
        given = args.secrets

        def parameter(key: str, description: str, value: pulumi.Input[str] | None) -> str:
            path = f"/wwhd/{stack}/{key}"
            aws.ssm.Parameter(
                f"{name}-{key}",
                name=path,
                type="SecureString",
                key_id=args.key_arn,
                description=description,
                value=pulumi.Output.secret(value if value is not None else OPERATOR_SETS_IT),
                # Without a value from the stack the operator sets it, and the stack keeps out.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["value"] if value is None else None),
            )
            return path

        jwt = given.jwt_secret
        if jwt is None:
            jwt = random.RandomPassword(
                f"{name}-jwt-secret",
                length=JWT_SECRET_LENGTH,
                special=False,
                opts=args.legacy.options(self, f"{name}-jwt-secret"),
            ).result
        found = {
            "OPENAI_API_KEY": parameter(
                "openai-api-key", "OPENAI_API_KEY of the W.W.H.D. API", given.openai_api_key
            ),
            "JWT_SECRET": parameter("jwt-secret", "JWT_SECRET of the W.W.H.D. API (signs user tokens)", jwt),
        }
        if given.qdrant_api_key:
            found["QDRANT_API_KEY"] = given.qdrant_api_key_arn or parameter(
                "qdrant-api-key", "QDRANT_API_KEY of the external Qdrant", None
            )
        return found

    def _pull_through_cache(self, name: str, stack: str) -> dict[str, str]:
        """Pull-through cache rules of this stack (prefixes carry the stack's name, so stacks
        sharing an account do not collide), and a creation template that makes each cached
        repository immutable and expiring. Cached images are public ones: the registry's
        default encryption (AES256) is enough, and a KMS template would need a role of its own."""
        cache = self._args.pull_through_cache
        if cache is None:
            return {}
        prefixes = {DOCKER_HUB: f"wwhd-{stack}/docker-hub", ECR_PUBLIC: f"wwhd-{stack}/ecr-public"}
        credentials = {DOCKER_HUB: cache.docker_hub_credential_arn, ECR_PUBLIC: None}
        upstream_url = {DOCKER_HUB: "registry-1.docker.io", ECR_PUBLIC: "public.ecr.aws"}
        for upstream, prefix in prefixes.items():
            slug = prefix.rsplit("/", 1)[1]
            aws.ecr.PullThroughCacheRule(
                f"{name}-{slug}",
                ecr_repository_prefix=prefix,
                upstream_registry_url=upstream_url[upstream],
                credential_arn=credentials[upstream],
                opts=self._child,
            )
            aws.ecr.RepositoryCreationTemplate(
                f"{name}-{slug}",
                prefix=prefix,
                applied_fors=["PULL_THROUGH_CACHE"],
                description=f"Repositories of the {upstream} pull-through cache of stack {stack}",
                image_tag_mutability="IMMUTABLE",
                encryption_configurations=[
                    aws.ecr.RepositoryCreationTemplateEncryptionConfigurationArgs(encryption_type="AES256")
                ],
                lifecycle_policy=json.dumps(ecr_lifecycle_policy()),
                opts=self._child,
            )
        return prefixes

    def _documents_bucket(self, name: str) -> aws.s3.Bucket:
        """Private, versioned, encrypted with the stack key, TLS only (seed 003's documents)."""
        args = self._args
        bucket, _ = private_bucket(
            f"{name}-documents",
            self,
            kms_key_arn=args.key_arn,
            versioned=True,
            protect=args.protect,
            aliases=args.legacy.aliases(f"{name}-documents"),
            policy=lambda arn: arn.apply(lambda a: json.dumps(iam.documents_bucket_policy(a))),
            # Versioning keeps overwritten documents recoverable for a while, not forever.
            lifecycle=whole_bucket_rule(
                "expire-old-versions",
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=DOCUMENTS_NONCURRENT_DAYS
                ),
            ),
        )
        return bucket


def ecr_lifecycle_policy() -> dict:
    """Untagged images go after 30 days; of the rest, the newest 20 stay (seed 000).

    ECR evaluates rules by priority and a ``tagStatus: any`` rule must come last."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Expire untagged images after {ECR_UNTAGGED_DAYS} days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": ECR_UNTAGGED_DAYS,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"Keep the last {ECR_KEEP_IMAGES} images",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": ECR_KEEP_IMAGES,
                },
                "action": {"type": "expire"},
            },
        ]
    }
