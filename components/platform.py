"""WwhdPlatform: what every service of the stack shares and outlives any one of them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components import service_iam as iam
from components.bucket import abort_incomplete_uploads, private_bucket
from components.legacy import NONE, Legacy
from components.load_balancer import WwhdLoadBalancer, WwhdLoadBalancerArgs
from components.service import ClusterRef, TargetGroupRef, capacity_provider_strategy
from stack_config import LoadBalancerConfig

TOKEN = "wwhd:index:WwhdPlatform"

ECR_KEEP_IMAGES = 20
ECR_UNTAGGED_DAYS = 30
SECRET_RECOVERY_DAYS = 7
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
    """The application secrets the stack holds for its services."""

    openai_api_key: pulumi.Input[str] | None = None
    """The OpenAI key (an encrypted stack config value). Default None: the secret is created
    empty and the operator sets its value; tasks that inject it cannot start until then."""
    jwt_secret: pulumi.Input[str] | None = None
    """The JWT signing secret. Default None: 64 random characters generated at deploy time
    (kept, encrypted, in the Pulumi state)."""
    qdrant_api_key: bool = False
    """Hold an API key for an external Qdrant. Default False."""
    qdrant_api_key_arn: str | None = None
    """An existing secret with that key; when unset with ``qdrant_api_key``, the stack creates
    an empty secret the operator fills in."""


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
    protect: bool = False
    """Protect the documents bucket from deletion (on in prod). Default False."""
    discovery_namespace: str | None = None
    """A Cloud Map private DNS namespace of this name, for services found by name. Default none."""
    legacy: Legacy = NONE
    """Where its resources lived before the component split (aliases). Default: nowhere."""


class WwhdPlatform(pulumi.ComponentResource):
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
    default_target_group: TargetGroupRef
    """The default backend's target group."""
    rules_listener_arn: pulumi.Output[str]
    """The listener services add their rules to (HTTPS when there is a certificate)."""
    secret_arns: dict[str, pulumi.Output[str]]
    """Environment variable -> ARN of the secret holding it."""
    documents_bucket_name: pulumi.Output[str]
    """The documents bucket (seed 003)."""
    documents_bucket_arn: pulumi.Output[str]
    """Its ARN."""
    namespace_id: pulumi.Output[str] | None
    """The Cloud Map namespace, when asked for."""

    def __init__(self, name: str, args: WwhdPlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TOKEN, name, None, opts)
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

        self.secret_arns = self._secrets(name, stack)
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
        self.default_target_group = TargetGroupRef(
            arn=lb.target_group_arn, arn_suffix=lb.target_group_arn_suffix
        )
        self.rules_listener_arn = lb.rules_listener_arn
        self.documents_bucket_name = bucket.bucket
        self.documents_bucket_arn = bucket.arn
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "repository_url": self.repository_url,
                "repository_name": self.repository_name,
                "rules_listener_arn": self.rules_listener_arn,
                "secret_arns": self.secret_arns,
                "documents_bucket_name": self.documents_bucket_name,
                "documents_bucket_arn": self.documents_bucket_arn,
                "namespace_id": self.namespace_id,
            }
        )

    def _secrets(self, name: str, stack: str) -> dict[str, pulumi.Output[str]]:
        """Environment variable -> secret ARN, for every application secret the stack holds."""
        args = self._args
        legacy = args.legacy
        given = args.secrets

        def secret(key: str, description: str) -> aws.secretsmanager.Secret:
            return aws.secretsmanager.Secret(
                f"{name}-{key}",
                name=f"wwhd/{stack}/{key}",
                description=description,
                kms_key_id=args.key_arn,
                # A 7-day window to undo a deletion; 0 would delete at once. The name stays
                # reserved during the window.
                recovery_window_in_days=SECRET_RECOVERY_DAYS,
                opts=legacy.options(self, f"{name}-{key}"),
            )

        openai = secret("openai-api-key", "OPENAI_API_KEY of the W.W.H.D. API (set by the operator)")
        if given.openai_api_key is not None:
            aws.secretsmanager.SecretVersion(
                f"{name}-openai-api-key",
                secret_id=openai.id,
                secret_string=pulumi.Output.secret(given.openai_api_key),
                opts=legacy.options(self, f"{name}-openai-api-key"),
            )
        jwt = secret("jwt-secret", "JWT_SECRET of the W.W.H.D. API (signs user tokens)")
        value = given.jwt_secret
        if value is None:
            value = random.RandomPassword(
                f"{name}-jwt-secret",
                length=JWT_SECRET_LENGTH,
                special=False,
                opts=legacy.options(self, f"{name}-jwt-secret"),
            ).result
        aws.secretsmanager.SecretVersion(
            f"{name}-jwt-secret",
            secret_id=jwt.id,
            secret_string=pulumi.Output.secret(value),
            opts=legacy.options(self, f"{name}-jwt-secret"),
        )
        found: dict[str, pulumi.Output[str]] = {"OPENAI_API_KEY": openai.arn, "JWT_SECRET": jwt.arn}
        if given.qdrant_api_key:
            if given.qdrant_api_key_arn is not None:
                found["QDRANT_API_KEY"] = pulumi.Output.from_input(given.qdrant_api_key_arn)
            else:
                found["QDRANT_API_KEY"] = secret(
                    "qdrant-api-key", "QDRANT_API_KEY of the external Qdrant (set by the operator)"
                ).arn
        return found

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
            lifecycle=aws.s3.BucketLifecycleConfigurationRuleArgs(
                # Versioning keeps overwritten documents recoverable for a while, not forever.
                id="expire-old-versions",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=DOCUMENTS_NONCURRENT_DAYS
                ),
                abort_incomplete_multipart_upload=abort_incomplete_uploads(),
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
