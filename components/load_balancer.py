"""WwhdLoadBalancer: the internet-facing ALB, its target group, listeners, certificate and logs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.bucket import private_bucket, whole_bucket_rule
from components.component import WwhdComponent
from components.service_iam import alb_logs_bucket_policy
from stack_config import LoadBalancerConfig

TOKEN = "wwhd:index:WwhdLoadBalancer"

# TLS 1.3 and 1.2 only, forward-secret ciphers (the ELB default policy still allows TLS 1.0).
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
HEALTH_CHECK_PATH = "/health"
ACCESS_LOG_EXPIRATION_DAYS = 90
# A day: a reconnecting SSE/WebSocket client returns to the task that holds its stream.
STICKINESS_SECONDS = 86400

# Regions opened in August 2022 or later have no ELB log-delivery account: their bucket
# policies name the logdelivery.elasticloadbalancing.amazonaws.com service principal instead
# (and aws.elb.get_service_account fails there).
LOG_DELIVERY_SERVICE_REGIONS = frozenset(
    {
        "ap-south-2", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
        "ap-east-2", "ca-west-1", "eu-central-2", "eu-south-2", "il-central-1", "me-central-1",
        "mx-central-1",
    }
)  # fmt: skip
LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"


@dataclass(frozen=True)
class WwhdLoadBalancerArgs:
    """What the load balancer is built from."""

    config: LoadBalancerConfig
    """The ``wwhd:loadBalancer`` section: idle timeout, TLS (certificate ARN or domain),
    stickiness, deregistration delay, access logs, deletion protection."""
    region: str
    """AWS region; picks the principal of the access-log bucket policy."""
    vpc_id: pulumi.Input[str]
    """VPC of the target group."""
    public_subnet_ids: pulumi.Input[Sequence[str]]
    """Subnets of the ALB (at least two AZs)."""
    security_group_id: pulumi.Input[str]
    """The load balancer's security group (80/443 in, the app port out)."""
    container_port: int = 8000
    """Port of the API tasks (targets are task IPs)."""


@dataclass(frozen=True)
class TargetGroupRef:
    """A target group as a service attaches to it and the alarms watch it."""

    arn: pulumi.Input[str]
    arn_suffix: pulumi.Input[str]
    """``targetgroup/<name>/<id>``: the request-count scaling label and the alarms' dimension."""


def ip_target_group(
    name: str,
    *,
    port: int,
    vpc_id: pulumi.Input[str],
    deregistration_delay: int,
    stickiness: bool,
    opts: pulumi.ResourceOptions,
    health_check_path: str = HEALTH_CHECK_PATH,
) -> TargetGroupRef:
    """An HTTP target group of task IPs (awsvpc tasks register by address), healthy after 2
    checks answered 200 at ``health_check_path`` (default ``/health``, the API's), unhealthy
    after 3 failed. With ``stickiness`` a load-balancer cookie keeps a client on one task for
    a day."""
    group = aws.lb.TargetGroup(
        name,
        port=port,
        protocol="HTTP",
        target_type="ip",
        vpc_id=vpc_id,
        deregistration_delay=deregistration_delay,
        health_check=aws.lb.TargetGroupHealthCheckArgs(
            enabled=True,
            path=health_check_path,
            protocol="HTTP",
            port="traffic-port",
            healthy_threshold=2,
            unhealthy_threshold=3,
            timeout=5,
            interval=30,
            matcher="200",
        ),
        stickiness=aws.lb.TargetGroupStickinessArgs(
            type="lb_cookie", enabled=stickiness, cookie_duration=STICKINESS_SECONDS
        ),
        opts=opts,
    )
    return TargetGroupRef(arn=group.arn, arn_suffix=group.arn_suffix)


class WwhdLoadBalancer(WwhdComponent[WwhdLoadBalancerArgs], token=TOKEN, internal=("listeners",)):
    """The only public entry: HTTPS with a TLS 1.2+ policy, HTTP redirected to HTTPS (plain
    HTTP only in dev, by explicit opt-in), targets registered by ECS.

    With ``domain`` it requests an ACM certificate, validates it through Route 53 and points
    an alias record at the ALB; with ``certificateArn`` it uses that certificate.
    """

    arn: pulumi.Output[str]
    """ARN of the ALB."""
    arn_suffix: pulumi.Output[str]
    """``app/<name>/<id>``: the LoadBalancer dimension of its CloudWatch metrics."""
    dns_name: pulumi.Output[str]
    """The ALB's DNS name."""
    target_group: TargetGroupRef
    """The API's target group, the default backend: its ARN, and its ``targetgroup/<name>/<id>``
    suffix (the TargetGroup dimension of its metrics)."""
    url: pulumi.Output[str]
    """Where clients reach the API: ``https://<domain>``, ``https://<alb dns>`` or, plain
    HTTP in dev, ``http://<alb dns>``."""
    access_logs_bucket_name: pulumi.Output[str] | None
    """Bucket of the access logs (``accessLogs`` only, else None)."""
    listeners: list[aws.lb.Listener]
    """The listeners: the ECS service must wait for them (its target group needs an ALB)."""
    rules_listener_arn: pulumi.Output[str]
    """The listener that serves requests (HTTPS, or plain HTTP in dev without a certificate):
    services add their listener rules to it."""

    def _build(self, name: str, args: WwhdLoadBalancerArgs) -> None:
        cfg = args.config

        alb_depends: list[pulumi.Resource] = []
        access_logs = None
        self.access_logs_bucket_name = None
        if cfg.access_logs:
            bucket, policy = self._access_log_bucket(name, args.region)
            alb_depends.append(policy)
            access_logs = aws.lb.LoadBalancerAccessLogsArgs(bucket=bucket.bucket, enabled=True)
            self.access_logs_bucket_name = bucket.bucket

        alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            subnets=args.public_subnet_ids,
            security_groups=[args.security_group_id],
            idle_timeout=cfg.idle_timeout,
            drop_invalid_header_fields=True,
            enable_deletion_protection=cfg.deletion_protection,
            access_logs=access_logs,
            # ELB validates its write access when logging is switched on: policy first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=alb_depends),
        )

        target_group = ip_target_group(
            f"{name}-api",
            port=args.container_port,
            vpc_id=args.vpc_id,
            deregistration_delay=cfg.deregistration_delay,
            stickiness=cfg.stickiness,
            opts=self._child,
        )
        forward = [aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)]

        certificate_arn: pulumi.Input[str] | None = cfg.certificate_arn
        if cfg.domain is not None and cfg.hosted_zone_id is not None:
            certificate_arn = self._certificate(name, cfg.domain, cfg.hosted_zone_id, alb)

        def listener(
            actions: list[aws.lb.ListenerDefaultActionArgs], certificate: pulumi.Input[str] | None = None
        ) -> aws.lb.Listener:
            """Port 443 over TLS with ``certificate``, else plain HTTP on port 80."""
            tls = certificate is not None
            return aws.lb.Listener(
                f"{name}-https" if tls else f"{name}-http",
                load_balancer_arn=alb.arn,
                port=443 if tls else 80,
                protocol="HTTPS" if tls else "HTTP",
                ssl_policy=SSL_POLICY if tls else None,
                certificate_arn=certificate,
                default_actions=actions,
                opts=self._child,
            )

        https = listener(forward, certificate_arn) if certificate_arn is not None else None
        if cfg.allow_plain_http or https is None:
            # Dev only (the configuration refuses it elsewhere): port 80 serves the API.
            http = listener(forward)
        else:
            http = listener(
                [
                    aws.lb.ListenerDefaultActionArgs(
                        type="redirect",
                        redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                            protocol="HTTPS", port="443", status_code="HTTP_301"
                        ),
                    )
                ]
            )
        self.listeners = [http] if https is None else [https, http]
        self.rules_listener_arn = (http if https is None else https).arn

        if cfg.domain is not None:
            self.url = pulumi.Output.from_input(f"https://{cfg.domain}")
        elif certificate_arn is not None:
            self.url = pulumi.Output.concat("https://", alb.dns_name)
        else:
            self.url = pulumi.Output.concat("http://", alb.dns_name)

        self.arn = alb.arn
        self.arn_suffix = alb.arn_suffix
        self.dns_name = alb.dns_name
        self.target_group = target_group

    def _certificate(
        self, name: str, domain: str, zone_id: str, alb: aws.lb.LoadBalancer
    ) -> pulumi.Output[str]:
        """An ACM certificate for ``domain`` validated by DNS in its hosted zone, and the alias
        record that points the domain at the ALB. Returns the validated certificate's ARN, so
        the HTTPS listener waits until ACM has issued it."""
        certificate = aws.acm.Certificate(
            f"{name}-cert",
            domain_name=domain,
            validation_method="DNS",
            opts=self._child,
        )
        option = certificate.domain_validation_options.apply(lambda options: options[0])
        record = aws.route53.Record(
            f"{name}-cert-validation",
            zone_id=zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=60,
            # ACM reuses the same CNAME for every certificate of the name: a replacement
            # certificate must be able to take over the existing record.
            allow_overwrite=True,
            opts=self._child,
        )
        validation = aws.acm.CertificateValidation(
            f"{name}-cert",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            opts=self._child,
        )
        aws.route53.Record(
            f"{name}-alias",
            zone_id=zone_id,
            name=domain,
            type="A",
            aliases=[
                aws.route53.RecordAliasArgs(
                    name=alb.dns_name, zone_id=alb.zone_id, evaluate_target_health=True
                )
            ],
            opts=self._child,
        )
        return validation.certificate_arn

    def _access_log_bucket(self, name: str, region: str) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
        """A private bucket the regional ELB log delivery may write to, expiring logs."""
        account = aws.get_caller_identity_output(opts=self._invoke).account_id
        if region in LOG_DELIVERY_SERVICE_REGIONS:
            principal: pulumi.Output[dict[str, str]] = pulumi.Output.from_input(
                {"Service": LOG_DELIVERY_SERVICE}
            )
        else:
            elb = aws.elb.get_service_account_output(region=region, opts=self._invoke)
            principal = elb.arn.apply(lambda arn: {"AWS": arn})
        # ALB access logs support only SSE-S3 (AES256): ELB cannot use a KMS key.
        return private_bucket(
            f"{name}-alb-logs",
            self,
            policy=lambda arn: pulumi.Output.all(arn, account, principal).apply(
                lambda v: json.dumps(alb_logs_bucket_policy(v[0], v[1], v[2]))
            ),
            lifecycle=whole_bucket_rule(
                "expire-access-logs",
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                    days=ACCESS_LOG_EXPIRATION_DAYS
                ),
            ),
        )
