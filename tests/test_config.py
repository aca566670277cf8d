"""Stack configuration: the real stack files load, and bad ones fail with one clear message
naming the key, before anything is registered."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pulumi
import pytest

from stack_config import (
    DEFAULTS,
    FARGATE_SIZES,
    SECTIONS,
    ConfigError,
    StackConfig,
    environment_defaults,
    parse_stack_config,
    read_stack_config,
)
from tools.mocks import RecordingMocks, install_mocks, load_stack_config, run_program, settle

ROOT = Path(__file__).resolve().parent.parent

# What both stack files below start with: the region, the environment, and pinned images.
HEAD = """
config:
  aws:region: us-west-2
  wwhd:environment: {environment}
  wwhd:images:
    apiTag: v1.2.3
    qdrant: qdrant/qdrant:v1.16.2
"""

DEV = (
    HEAD.format(environment="dev")
    + """\
  wwhd:loadBalancer:
    idleTimeout: 60
    allowPlainHttp: true
"""
)

PROD = (
    HEAD.format(environment="prod")
    + """\
    dockerHubCredentialArn: arn:aws:secretsmanager:us-west-2:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf
  wwhd:loadBalancer:
    idleTimeout: 600
    certificateArn: arn:aws:acm:us-west-2:123456789012:certificate/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab
  wwhd:monitoring:
    alarmEmails: [oncall@wwhd.ai]
    logRetentionDays: 30
"""
)


def read(tmp_path: Path, stack_yaml: str) -> StackConfig:
    """Read a stack file exactly as the program does (Pulumi.yaml + Pulumi.<stack>.yaml)."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.t.yaml").write_text(textwrap.dedent(stack_yaml))
    files = load_stack_config(tmp_path, "t")
    install_mocks(RecordingMocks(), files.project, "t")
    pulumi.runtime.set_all_config(files.config, files.secret_keys)
    return read_stack_config()


def error(tmp_path: Path, stack_yaml: str) -> str:
    with pytest.raises(ConfigError) as info:
        read(tmp_path, stack_yaml)
    return str(info.value)


def with_section(base: str, section: str, body: str) -> str:
    """The base stack file with one more (or a replaced) ``wwhd:<section>`` block."""
    lines = [f"  wwhd:{section}:", *("    " + line for line in textwrap.dedent(body).strip().splitlines())]
    kept, skipping = [], False
    for line in textwrap.dedent(base).splitlines():
        if line.startswith("  ") and not line.startswith("    "):
            skipping = line.strip().startswith(f"wwhd:{section}:")
        if not skipping:
            kept.append(line)
    return "\n".join(kept + lines) + "\n"


INVALID = [
    # (id, base, section, body, expected fragments of the message)
    ("cpu-memory-pair", DEV, "service", "cpu: 512\nmemory: 8192", ["wwhd:service.memory", "512 CPU units offers 1024-4096"]),
    ("cpu-not-fargate", DEV, "service", "cpu: 300\nmemory: 1024", ["wwhd:service.cpu", "not 300"]),
    ("memory-step-8192", PROD, "service", "cpu: 8192\nmemory: 18432", ["wwhd:service.memory", "steps of 4096"]),
    ("min-above-desired", PROD, "service", "minCount: 3\ndesiredCount: 2", ["wwhd:service.minCount", "above desiredCount 2"]),
    ("desired-above-max", PROD, "service", "desiredCount: 12\nmaxCount: 10", ["wwhd:service.desiredCount", "above maxCount 10"]),
    ("invalid-cidr", DEV, "network", "cidr: 10.0.0.300/16", ["wwhd:network.cidr", "not an IPv4 network"]),
    ("cidr-host-bits", DEV, "network", "cidr: 10.0.0.1/16", ["wwhd:network.cidr", "host bits set"]),
    ("cidr-too-small", DEV, "network", "cidr: 10.0.0.0/24", ["wwhd:network.cidr", "too small for 2 AZs"]),
    ("cidr-too-large", DEV, "network", "cidr: 10.0.0.0/8", ["wwhd:network.cidr", "/16 to /28"]),
    ("az-count", DEV, "network", "availabilityZones: 4", ["wwhd:network.availabilityZones", "2 or 3"]),
    ("nat-strategy", DEV, "network", "natGateways: none", ["wwhd:network.natGateways", "'single', 'one-per-az' or 'instance'"]),
    ("log-retention", DEV, "monitoring", "logRetentionDays: 10", ["wwhd:monitoring.logRetentionDays", "not 10"]),
    ("idle-timeout-high", DEV, "loadBalancer", "idleTimeout: 4001\nallowPlainHttp: true", ["wwhd:loadBalancer.idleTimeout", "4000"]),
    ("typo-in-section", DEV, "service", "desiredCunt: 1", ["wwhd:service.desiredCunt", "unknown key"]),
    ("malformed-email", PROD, "monitoring", "alarmEmails: [oncall-at-wwhd.ai]\nlogRetentionDays: 30", ["wwhd:monitoring.alarmEmails[0]", "email"]),
    ("image-latest", DEV, "images", "apiTag: latest\nqdrant: qdrant/qdrant:v1.16.2", ["wwhd:images.apiTag", "moves"]),
    ("image-untagged", DEV, "images", "apiTag: v1\nqdrant: qdrant/qdrant", ["wwhd:images.qdrant", "no tag"]),
    ("image-qdrant-latest", DEV, "images", "apiTag: v1\nqdrant: qdrant/qdrant:latest", ["wwhd:images.qdrant", "moving tag 'latest'"]),
    ("image-qdrant-other", DEV, "images", "apiTag: v1\nqdrant: example/vector-db:v1.16.2", ["wwhd:images.qdrant", "not the qdrant/qdrant image"]),
    ("plain-http-prod", PROD, "loadBalancer", "idleTimeout: 600\nallowPlainHttp: true", ["wwhd:loadBalancer.allowPlainHttp", "dev only"]),
    ("prod-lb-unprotected", PROD, "loadBalancer",
     "idleTimeout: 600\ncertificateArn: arn:aws:acm:us-west-2:123456789012:certificate/abc\ndeletionProtection: false",
     ["wwhd:loadBalancer.deletionProtection", "must be true in prod"]),
    ("no-recipient-prod", PROD, "monitoring", "logRetentionDays: 30", ["wwhd:monitoring.alarmEmails", "at least one alarm recipient"]),
    ("no-tls-in-dev", DEV, "loadBalancer", "idleTimeout: 60", ["wwhd:loadBalancer", "HTTPS needs certificateArn"]),
    ("domain-without-zone", PROD, "loadBalancer", "idleTimeout: 600\ndomain: api.wwhd.ai", ["wwhd:loadBalancer.hostedZoneId", "go together"]),
    ("ia-days", DEV, "storage", "transitionToIaDays: 10", ["wwhd:storage.transitionToIaDays", "not 10"]),
    ("engine", DEV, "database", "engine: mysql", ["wwhd:database.engine", "'sqlite' or 'postgres'"]),
    ("placement", DEV, "qdrant", "placement: cluster", ["wwhd:qdrant.placement", "'sidecar', 'service', 'instance' or 'external'"]),
    ("external-without-url", PROD, "qdrant", "placement: external", ["wwhd:qdrant.url", "required when placement is external"]),
    ("backup-copy-same-region", PROD, "storage", "backupCopyRegion: us-west-2", ["wwhd:storage.backupCopyRegion", "own region"]),
    ("prod-unprotected", PROD, "storage", "protect: false", ["wwhd:storage.protect", "prod protects"]),
    ("prod-no-flow-logs", PROD, "network", "flowLogs: false", ["wwhd:network.flowLogs", "prod keeps VPC flow logs"]),
    ("prod-db-unprotected", PROD, "database", "engine: postgres\ndeletionProtection: false", ["wwhd:database.deletionProtection", "prod protects"]),
    ("cluster-name-chars", PROD, "service", "clusterName: wwhd cluster", ["wwhd:service.clusterName", "1-255 letters, digits, hyphens and underscores"]),
    ("log-group-name-chars", PROD, "service", "logGroupName: /ecs/wwhd backend", ["wwhd:service.logGroupName", "letters, digits and . - _ / #"]),
    # 500 characters leave room for "/performance" within CloudWatch's 512.
    ("log-group-name-too-long", DEV, "service", "logGroupName: /" + "a" * 500, ["wwhd:service.logGroupName", "1-500"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("base", "section", "body", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_stack_file(tmp_path: Path, base: str, section: str, body: str, expected: list[str]) -> None:
    message = error(tmp_path, with_section(base, section, body))
    for fragment in expected:
        assert fragment in message, message


@pytest.mark.parametrize(
    ("base", "section", "body", "expected"),
    [
        pytest.param(
            PROD,
            "service",
            "minCount: -1",
            "wwhd:service.minCount: must be at least 0, not -1",
            id="negative-count",
        ),
        pytest.param(
            DEV,
            "loadBalancer",
            "idleTimeout: 0\nallowPlainHttp: true",
            "wwhd:loadBalancer.idleTimeout: must be at least 1, not 0",
            id="idle-timeout-zero",
        ),
    ],
)
def test_a_number_below_its_minimum_names_both(
    tmp_path: Path, base: str, section: str, body: str, expected: str
) -> None:
    assert expected in error(tmp_path, with_section(base, section, body))


def test_a_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    message = error(tmp_path, DEV + "  wwhd:service: big\n")
    for fragment in ("wwhd:service", "must be a mapping"):
        assert fragment in message, message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    assert "wwhd:servce: unknown key" in error(tmp_path, DEV + "  wwhd:servce:\n    cpu: 512\n")


def test_unknown_environment(tmp_path: Path) -> None:
    text = DEV.replace("wwhd:environment: dev", "wwhd:environment: production")
    assert "wwhd:environment: must be one of dev, staging, prod" in error(tmp_path, text)


def test_missing_region(tmp_path: Path) -> None:
    assert "aws:region: required key is missing" in error(
        tmp_path, DEV.replace("  aws:region: us-west-2\n", "")
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = with_section(DEV, "service", "cpu: 512\nmemory: 8192\ndesiredCount: 2\nmaxCount: 2\nminCount: 3")
    text = with_section(text, "monitoring", "logRetentionDays: 8")
    message = error(tmp_path, text)
    assert "(5 problems)" in message, message
    for key in (
        "service.memory",
        "service.minCount",
        "service.desiredCount",
        "service.maxCount",
        "monitoring.logRetentionDays",
    ):
        assert f"wwhd:{key}" in message


def test_minimal_files_take_environment_defaults(tmp_path: Path) -> None:
    dev, prod = read(tmp_path, DEV), read(tmp_path, PROD)
    assert (dev.service.cpu, dev.service.memory, dev.service.desired_count, dev.service.spot_percent) == (
        512,
        2048,
        1,
        100,
    )
    assert (dev.load_balancer.idle_timeout, dev.storage.transition_to_ia_days) == (60, 7)
    assert dev.monitoring.log_retention_days == 7 and dev.network.nat_gateways == "instance"
    # Prod's defaults are the budget's: one NAT gateway, Graviton, Spot above one on-demand task.
    assert (prod.service.cpu, prod.service.memory, prod.service.cpu_architecture) == (1024, 2048, "arm64")
    assert (prod.service.min_count, prod.service.max_count) == (2, 20)
    assert (prod.service.on_demand_base, prod.service.spot_percent) == (1, 100)
    assert (prod.load_balancer.idle_timeout, prod.storage.transition_to_ia_days) == (600, 30)
    assert prod.monitoring.log_retention_days == 30 and prod.network.nat_gateways == "single"
    assert prod.storage.backup_retention_days == 30 and prod.storage.protect and not dev.storage.protect
    assert prod.database.engine == "postgres" and dev.database.engine == "sqlite"
    assert prod.qdrant.placement == "instance" and dev.qdrant.placement == "sidecar"


@pytest.mark.parametrize("key", ["cidr: 10.1.0.0/16", "natInstanceType: t4g.micro"])
def test_existing_vpc_refuses_new_vpc_keys(tmp_path: Path, key: str) -> None:
    body = f"""
        {key}
        existingVpc:
          vpcId: vpc-7b44bd03
          publicSubnetIds: [subnet-677d281e, subnet-5498bc0e]
          privateSubnetIds: [subnet-18ddaa53, subnet-18ddaa54]
    """
    assert f"wwhd:network.{key.split(':')[0]}: not used with existingVpc" in error(
        tmp_path, with_section(DEV, "network", body)
    )


def test_existing_vpc_loads(tmp_path: Path) -> None:
    body = """
        existingVpc:
          vpcId: vpc-7b44bd03
          publicSubnetIds: [subnet-677d281e, subnet-5498bc0e]
          privateSubnetIds: [subnet-18ddaa53, subnet-18ddaa54]
    """
    cfg = read(tmp_path, with_section(DEV, "network", body))
    assert cfg.network.existing_vpc is not None and cfg.network.existing_vpc.vpc_id == "vpc-7b44bd03"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_repository_stack_files_are_valid(stack: str) -> None:
    files = load_stack_config(ROOT, stack)
    install_mocks(RecordingMocks(), files.project, stack)
    pulumi.runtime.set_all_config(files.config, files.secret_keys)
    cfg = read_stack_config()
    assert cfg.environment == stack


def test_fargate_table_matches_the_documented_ranges() -> None:
    assert FARGATE_SIZES[256] == (512, 1024, 2048)
    assert (FARGATE_SIZES[4096][0], FARGATE_SIZES[4096][-1]) == (8192, 30720)
    assert FARGATE_SIZES[16384][1] - FARGATE_SIZES[16384][0] == 8192


def test_bad_stack_file_registers_nothing(tmp_path: Path) -> None:
    """The real program refuses a bad file before its first resource."""
    for name in ("__main__.py", "stack_config.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "components", tmp_path / "components")
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.bad.yaml").write_text(with_section(DEV, "service", "cpu: 512\nmemory: 9999"))
    with pytest.raises(ConfigError, match=r"wwhd:service\.memory"):
        run_program(tmp_path, "bad")
    settle()  # let anything already queued reach the monitor
    registered = pulumi.runtime.settings.get_monitor().registrations  # type: ignore[attr-defined]
    assert [r.type for r in registered if r.type != "pulumi:pulumi:Stack"] == []


def test_parse_is_pure_and_frozen() -> None:
    cfg = parse_stack_config(
        {"environment": "dev", "images": {"apiTag": "v1"}, "loadBalancer": {"allowPlainHttp": True}},
        "us-west-2",
    )
    with pytest.raises(Exception, match="frozen"):
        cfg.service.cpu = 1024  # type: ignore[misc]


def test_prod_keeps_logs_a_week(tmp_path: Path) -> None:
    text = with_section(PROD, "monitoring", "alarmEmails: [oncall@wwhd.ai]\nlogRetentionDays: 3")
    assert "wwhd:monitoring.logRetentionDays: prod keeps logs at least 7 days, not 3" in error(tmp_path, text)


def test_alarm_thresholds_read_from_the_stack_file(tmp_path: Path) -> None:
    body = """
        alarmEmails: [oncall@wwhd.ai]
        logRetentionDays: 30
        thresholds:
          target5xxPerMinute: 3
          error4xxRatePercent: 5
          dbConnectionsPercent: 90
          efsBurstCreditFloorTib: 0.5
    """
    t = read(tmp_path, with_section(PROD, "monitoring", body)).monitoring.thresholds
    assert (t.target_5xx_per_minute, t.error_4xx_rate_percent) == (3, 5)
    assert (t.db_connections_percent, t.efs_burst_credit_floor_tib) == (90, 0.5)
    bad = with_section(
        PROD, "monitoring", body.replace("dbConnectionsPercent: 90", "dbConnectionsPercent: 120")
    )
    assert "wwhd:monitoring.thresholds.dbConnectionsPercent" in error(tmp_path, bad)


# --- extra services (wwhd:services) -----------------------------------------------------------

ADMIN_ENTRY = """\
    - name: admin
      image: 123456789012.dkr.ecr.us-west-2.amazonaws.com/wwhd/dev/admin:v1.0.0
      cpu: 256
      memory: 512
      port: 8080
      paths: ["/admin/*"]
      priority: 10
"""

WORKER_ENTRY = """\
    - name: worker
      image: 123456789012.dkr.ecr.us-west-2.amazonaws.com/wwhd/dev/worker:v1.0.0
      cpu: 512
      memory: 1024
      secrets: {QUEUE_TOKEN: /wwhd/dev/queue-token}
      efs: true
"""

SERVICES = "\n  wwhd:services:\n" + ADMIN_ENTRY + WORKER_ENTRY


def test_no_extra_services_by_default(tmp_path: Path) -> None:
    assert read(tmp_path, DEV).services == []


def test_extra_services_load(tmp_path: Path) -> None:
    admin, worker = read(tmp_path, DEV + SERVICES).services
    assert (admin.name, admin.port, admin.paths, admin.priority, admin.routed) == (
        "admin",
        8080,
        ["/admin/*"],
        10,
        True,
    )
    assert (worker.routed, worker.efs, worker.secrets) == (
        False,
        True,
        {"QUEUE_TOKEN": "/wwhd/dev/queue-token"},
    )


def test_service_clashes_are_named(tmp_path: Path) -> None:
    # A copy of admin under another name, then a second service named admin.
    clash = (
        SERVICES
        + ADMIN_ENTRY.replace("name: admin", "name: admin2")
        + """\
    - name: admin
      image: nginx:1.27
      cpu: 256
      memory: 512
"""
    )
    message = error(tmp_path, DEV + clash)
    assert "wwhd:services[2].priority: 10 is already used by 'admin'" in message
    assert "wwhd:services[2].paths: path /admin/* is already routed to 'admin'" in message
    assert "wwhd:services[3].name: 'admin' is already services[0]" in message


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("name: api", "wwhd:services[0].name: 'api' is the name of a built-in service"),
        ("name: Web_1", "wwhd:services[0].name: 'Web_1': 1-16 lowercase letters"),
        ("port: 70000", "wwhd:services[0].port: must be at most 65535, not 70000"),
        ("port: 80", "wwhd:services[0].paths: a routed service needs paths, host or both"),
        ("paths: ['/x']", "wwhd:services[0].paths: only used with port"),
        ("memory: 4096", "wwhd:services[0].memory: Fargate with 256 CPU units offers 512-2048 MiB"),
        ("image: web:latest", "wwhd:services[0].image: 'web:latest' uses the moving tag 'latest'"),
        ("imag: web:1", "wwhd:services[0].imag: unknown key"),
    ],
)
def test_service_entry_problems_name_their_key(tmp_path: Path, entry: str, expected: str) -> None:
    fields = {"name": "web", "image": "web:1.0", "cpu": "256", "memory": "512"}
    key, _, value = entry.partition(": ")
    fields[key] = value
    body = "\n".join(f"      {k}: {v}" for k, v in fields.items())
    text = DEV + "  wwhd:services:\n" + "    -" + body[5:] + "\n"
    assert expected in error(tmp_path, text)


# --- Qdrant's placement: block storage in prod ------------------------------------------------


@pytest.mark.parametrize("placement", ["service", "sidecar"])
def test_prod_refuses_qdrant_on_efs_without_the_acknowledgement(tmp_path: Path, placement: str) -> None:
    message = error(tmp_path, with_section(PROD, "qdrant", f"placement: {placement}"))
    assert "wwhd:qdrant.placement" in message
    assert "Qdrant does not support network file systems" in message
    assert "wwhd:qdrant.acceptNetworkStorage: true" in message


def test_prod_takes_qdrant_on_efs_when_acknowledged(tmp_path: Path) -> None:
    cfg = read(tmp_path, with_section(PROD, "qdrant", "placement: service\nacceptNetworkStorage: true"))
    assert cfg.qdrant.placement == "service" and cfg.qdrant.accept_network_storage


def test_dev_keeps_qdrant_on_efs_without_acknowledgement(tmp_path: Path) -> None:
    assert read(tmp_path, with_section(DEV, "qdrant", "placement: service")).qdrant.placement == "service"


def test_instance_placement_defaults(tmp_path: Path) -> None:
    q = read(tmp_path, PROD).qdrant
    assert (q.placement, q.instance_type, q.volume_gb, q.subnet_index, q.ami_id) == (
        "instance", "t4g.small", 20, 0, None,
    )  # fmt: skip
    assert q.host_architecture == "arm64"
    assert (
        read(tmp_path, with_section(PROD, "qdrant", "instanceType: m7i.large")).qdrant.host_architecture
        == "x86_64"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("volumeGb: 0", "wwhd:qdrant.volumeGb"),
        ("volumeGb: 16385", "wwhd:qdrant.volumeGb"),
        ("instanceType: t4g", "wwhd:qdrant.instanceType"),
        ("instanceType: t2.small", "wwhd:qdrant.instanceType: t2.small is a Xen type"),
        ("subnetIndex: 2", "wwhd:qdrant.subnetIndex: 2 is not one of the stack's 2 private subnets"),
        ("amiId: latest", "wwhd:qdrant.amiId"),
    ],
)
def test_instance_placement_problems_name_their_key(tmp_path: Path, body: str, expected: str) -> None:
    assert expected in error(tmp_path, with_section(PROD, "qdrant", f"placement: instance\n{body}"))


def test_subnet_index_counts_an_adopted_vpcs_private_subnets(tmp_path: Path) -> None:
    network = """
        existingVpc:
          vpcId: vpc-0a1b2c3d
          publicSubnetIds: [subnet-0a000001, subnet-0a000002]
          privateSubnetIds: [subnet-0b000001, subnet-0b000002, subnet-0b000003]
        flowLogs: true
    """
    text = with_section(
        with_section(PROD, "network", textwrap.dedent(network).strip()), "qdrant", "subnetIndex: 2"
    )
    assert read(tmp_path, text).qdrant.subnet_index == 2


@pytest.mark.parametrize(
    "key", ["instanceType: t4g.medium", "volumeGb: 50", "subnetIndex: 1", "amiId: ami-0123456789abcdef0"]
)
def test_host_keys_are_refused_with_another_placement(tmp_path: Path, key: str) -> None:
    name = key.split(":")[0]
    message = error(tmp_path, with_section(DEV, "qdrant", f"placement: sidecar\n{key}"))
    assert f"wwhd:qdrant.{name}: only used when placement is instance" in message


# --- unknown keys: the closest valid key, at any depth -------------------------------------------

MINIMAL: dict = {"environment": "dev", "images": {"apiTag": "v1"}, "loadBalancer": {"allowPlainHttp": True}}
EXISTING_VPC = {
    "vpcId": "vpc-7b44bd03",
    "publicSubnetIds": ["subnet-677d281e", "subnet-5498bc0e"],
    "privateSubnetIds": ["subnet-18ddaa53", "subnet-18ddaa54"],
}
WORKER = {"name": "worker", "image": "worker:1.0", "cpu": 256, "memory": 512}

PROD_RAW: dict = {
    "environment": "prod",
    "images": {
        "apiTag": "v1",
        "dockerHubCredentialArn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:ecr-pullthroughcache/d-AbCdEf",
    },
    "loadBalancer": {"certificateArn": "arn:aws:acm:us-west-2:123456789012:certificate/0a1b2c3d"},
    "monitoring": {"alarmEmails": ["oncall@wwhd.ai"]},
}


def problems(raw: dict, region: str | None = "us-west-2") -> list[str]:
    """The problems parse_stack_config lists for ``raw``, in its order ([] when valid)."""
    try:
        parse_stack_config(raw, region)
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"service": {"desiredCunt": 1}},
            "wwhd:service.desiredCunt: unknown key; did you mean desiredCount?",
        ),
        (
            {"service": {"deployment": {"minimumHealthyPrecent": 0}}},
            "wwhd:service.deployment.minimumHealthyPrecent: unknown key; did you mean minimumHealthyPercent?",
        ),
        (
            {"monitoring": {"thresholds": {"latencyP95Second": 3}}},
            "wwhd:monitoring.thresholds.latencyP95Second: unknown key; did you mean latencyP95Seconds?",
        ),
        (
            {"network": {"existingVpc": EXISTING_VPC | {"privateRouteTables": ["rtb-0a1b2c3d"]}}},
            "wwhd:network.existingVpc.privateRouteTables: unknown key; did you mean privateRouteTableIds?",
        ),
        ({"services": [WORKER | {"imag": "x:1"}]}, "wwhd:services[0].imag: unknown key; did you mean image?"),
        ({"servce": {"cpu": 512}}, "wwhd:servce: unknown key; did you mean service?"),
        ({"tag": {"Team": "x"}}, "wwhd:tag: unknown key; did you mean tags?"),
        ({"service": {"colour": "blue"}}, "wwhd:service.colour: unknown key"),
        ({"zzz": 1}, "wwhd:zzz: unknown key"),
    ],
)
def test_an_unknown_key_names_the_closest_valid_one(changes: dict, expected: str) -> None:
    assert expected in problems(MINIMAL | changes)


# --- strict types: a value keeps the type YAML gave it --------------------------------------------

TYPES = [
    # (section, body, the problem)
    ("network", 'flowLogs: "yes"', "wwhd:network.flowLogs: must be true or false, not the string 'yes'"),
    (
        "service",
        'memory: "4096"',
        "wwhd:service.memory: must be an integer, not the string '4096'; write it without quotes",
    ),
    ("service", "ecsExec: 1", "wwhd:service.ecsExec: must be true or false, not the number 1"),
    ("service", "cpu: true", "wwhd:service.cpu: must be an integer, not true"),
    ("service", "cpu: 512.5", "wwhd:service.cpu: must be an integer, not the number 512.5"),
    (
        "service",
        "allowOrigins: https://wwhd.ai",
        "wwhd:service.allowOrigins: must be a list, not the string 'https://wwhd.ai'",
    ),
    (
        "service",
        "deployment: 5",
        "wwhd:service.deployment: must be a mapping of keys to values, not the number 5",
    ),
    ("service", "logLevel: debug", "wwhd:service.logLevel: must be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
    (
        "database",
        "engineVersion: 17",
        "wwhd:database.engineVersion: must be a string, not the number 17; put it in quotes",
    ),
    (
        "monitoring",
        "logRetentionDays: 7\nthresholds:\n  latencyP95Seconds: '1.5'",
        "wwhd:monitoring.thresholds.latencyP95Seconds: must be a number, not the string '1.5'; write it"
        " without quotes (pulumi config set: add --type float)",
    ),
    (
        "qdrant",
        "placement: sidecar\nsubnetIndex: null",
        "wwhd:qdrant.subnetIndex: must be an integer, not an empty value",
    ),
]


@pytest.mark.parametrize(("section", "body", "expected"), TYPES, ids=[t[2].split(":")[1] for t in TYPES])
def test_a_yaml_value_of_the_wrong_type_is_refused_in_plain_words(
    tmp_path: Path, section: str, body: str, expected: str
) -> None:
    assert expected in error(tmp_path, with_section(DEV, section, body))


def test_an_integer_stays_acceptable_where_a_number_is_meant(tmp_path: Path) -> None:
    body = "logRetentionDays: 7\nthresholds:\n  latencyP95Seconds: 2\n  latencyCriticalSeconds: 4.5"
    thresholds = read(tmp_path, with_section(DEV, "monitoring", body)).monitoring.thresholds
    assert (thresholds.latency_p95_seconds, thresholds.latency_critical_seconds) == (2.0, 4.5)


def test_tags_that_aws_refuses_are_problems_like_the_others() -> None:
    found = problems(MINIMAL | {"tags": {"Team": 7, "k" * 129: "x"}, "service": {"desiredCunt": 1}})
    assert found == [
        "wwhd:service.desiredCunt: unknown key; did you mean desiredCount?",
        "wwhd:tags: key must be at most 128 characters long, not 129",
        "wwhd:tags.Team: must be a string, not the number 7; put it in quotes",
    ]


# --- every problem at once, in a stable order ---------------------------------------------------


def test_an_unknown_key_beside_a_bad_value_reports_both() -> None:
    assert problems(MINIMAL | {"service": {"desiredCunt": 1, "memory": "big"}}) == [
        "wwhd:service.memory: must be an integer, not the string 'big'",
        "wwhd:service.desiredCunt: unknown key; did you mean desiredCount?",
    ]


def test_an_unknown_key_does_not_hide_what_the_rules_find_in_its_section() -> None:
    """The README's example: the typo and the Fargate size both."""
    assert problems(MINIMAL | {"service": {"cpu": 512, "memory": 8192, "desiredCunt": 1}}) == [
        "wwhd:service.memory: Fargate with 512 CPU units offers 1024-4096 MiB in steps of 1024 MiB, not 8192",
        "wwhd:service.desiredCunt: unknown key; did you mean desiredCount?",
    ]


def test_a_typo_in_one_service_does_not_hide_a_clash_with_another() -> None:
    found = problems(MINIMAL | {"services": [WORKER, WORKER | {"efz": True}]})
    assert found == [
        "wwhd:services[1].name: 'worker' is already services[0]",
        "wwhd:services[1].efz: unknown key; did you mean efs?",
    ]


def test_a_bad_environment_still_lists_every_problem_of_every_key() -> None:
    """Only the rules across keys, which judge what the environment decides, wait."""
    raw = MINIMAL | {
        "environment": "production",
        "service": {"memory": "4096", "desiredCunt": 1},
        "servce": {},
        "services": [WORKER, WORKER],
    }
    assert problems(raw, None) == [
        "aws:region: required key is missing",
        "wwhd:environment: must be one of dev, staging, prod, not the string 'production'",
        "wwhd:service.memory: must be an integer, not the string '4096'; write it without quotes",
        "wwhd:service.desiredCunt: unknown key; did you mean desiredCount?",
        "wwhd:services[1].name: 'worker' is already services[0]",
        "wwhd:servce: unknown key; did you mean service?",
    ]
    assert problems({k: v for k, v in MINIMAL.items() if k != "environment"}) == [
        "wwhd:environment: required key is missing (dev, staging or prod)"
    ]


def test_every_environment_fills_the_same_required_keys() -> None:
    """What lets a stack file with an unknown environment be checked key by key against dev's
    defaults: no environment supplies a required key another leaves to the stack file."""
    filled = {
        env: {(section, key) for section, values in environment_defaults(env).items() for key in values}
        for env in DEFAULTS
    }
    required = {
        (section, field.alias)
        for section, model in SECTIONS.items()
        for field in model.model_fields.values()
        if field.is_required()
    }
    assert len({frozenset(found & required) for found in filled.values()}) == 1
    assert problems({"environment": ["dev"], "images": {"apiTag": "v1"}}) == [
        "wwhd:environment: must be one of dev, staging, prod, not a list"
    ]


def test_a_section_that_fails_still_lists_each_of_its_keys() -> None:
    """maxCount 0 breaks a rule across keys, which waits for the section to parse; the keys'
    own problems are all listed."""
    found = problems(MINIMAL | {"service": {"cpu": "512", "desiredCount": -1, "maxCount": 0}})
    assert found == [
        "wwhd:service.cpu: must be an integer, not the string '512'; write it without quotes",
        "wwhd:service.desiredCount: must be at least 0, not -1",
    ]


def test_problems_are_listed_by_section_then_by_key() -> None:
    """SECTIONS' order, then each model's order of keys, whatever order the file and the rules
    found them in."""
    raw = {
        "monitoring": {"logRetentionDays": 8},
        "loadBalancer": {"idleTimeout": 0},
        "service": {"maxCount": 0, "minCount": 2, "cpu": 300, "zz": 1},
        "environment": "dev",
        "network": {"flowLogs": "no"},
        "images": {"apiTag": "latest"},
    }
    paths = [p.split(": ", 1)[0] for p in problems(raw)]
    assert paths == [
        "wwhd:network.flowLogs",
        "wwhd:service.cpu",
        "wwhd:service.desiredCount",
        "wwhd:service.minCount",
        "wwhd:service.maxCount",
        "wwhd:service.zz",
        "wwhd:images.apiTag",
        "wwhd:loadBalancer.idleTimeout",
        "wwhd:monitoring.logRetentionDays",
    ]


# --- parking the API: desiredCount 0 -------------------------------------------------------------


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_a_parked_api_is_valid(environment: str) -> None:
    base = MINIMAL if environment == "dev" else PROD_RAW | {"environment": environment}
    assert problems(base | {"service": {"desiredCount": 0, "minCount": 0}}) == []


def test_parking_needs_the_floor_at_zero_too() -> None:
    assert problems(MINIMAL | {"service": {"desiredCount": 0}}) == [
        "wwhd:service.minCount: 1 is above desiredCount 0"
    ]


# --- the NAT instance: a dev economy ------------------------------------------------------------


def test_dev_takes_a_nat_instance_with_a_graviton_nano_by_default(tmp_path: Path) -> None:
    n = read(tmp_path, with_section(DEV, "network", "natGateways: instance")).network
    assert (n.nat_gateways, n.nat_instance_type, n.nat_instance_architecture) == (
        "instance",
        "t4g.nano",
        "arm64",
    )
    sized = read(tmp_path, with_section(DEV, "network", "natGateways: instance\nnatInstanceType: t3.micro"))
    assert sized.network.nat_instance_architecture == "x86_64"


def test_prod_refuses_the_nat_instance_and_says_why(tmp_path: Path) -> None:
    message = error(tmp_path, with_section(PROD, "network", "natGateways: instance"))
    assert "wwhd:network.natGateways: instance is for dev" in message
    assert "stops it while the instance or its AZ is down" in message
    assert "(1 problem)" in message, message


@pytest.mark.parametrize("strategy", ["single", "one-per-az"])
def test_the_gateway_strategies_are_unchanged(tmp_path: Path, strategy: str) -> None:
    for base in (DEV, PROD):
        network = read(
            tmp_path, with_section(base, "network", f"natGateways: {strategy}\nflowLogs: true")
        ).network
        assert network.nat_gateways == strategy


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "natGateways: single\nnatInstanceType: t4g.micro",
            "wwhd:network.natInstanceType: only used when natGateways is instance",
        ),
        (
            "natGateways: instance\nnatInstanceType: a1.medium",
            "wwhd:network.natInstanceType: a1.medium: Amazon Linux 2023",
        ),
        ("natGateways: instance\nnatInstanceType: nano", "wwhd:network.natInstanceType"),
    ],
)
def test_nat_instance_type_problems_name_their_key(tmp_path: Path, body: str, expected: str) -> None:
    assert expected in error(tmp_path, with_section(DEV, "network", body))
