"""Property: every valid stack configuration builds, and the real policy pack (over gRPC, as the
engine runs it) finds no mandatory violation except possibly ``cost-ceiling`` (a budget, not a
defect: any config can be priced above a ceiling), and except ``qdrant-on-network-storage`` for
a prod stack that keeps Qdrant on EFS: the configuration takes it only with an explicit
acknowledgement, and prod's pack config refuses it anyway (issue 18), so there it must be found.

"Valid" is exactly the domain stack_config.py accepts (prod's stricter rules, such as flow logs,
protection and at least 7 days of logs, live there too). Each environment is previewed as the
stack of the same name with its policy config; one pack process per environment serves every
example (module-scoped)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from components.containers import split_task
from stack_config import EFS_IA_DAYS, FARGATE_SIZES, LOG_RETENTION_DAYS, parse_stack_config
from tools.preview import program
from tools.preview.analyzer import PolicyPack, StackContext, load_policy_config

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "policies"
EXEMPT = {"cost-ceiling"}
REGION = "us-west-2"


@st.composite
def fargate_size(draw: st.DrawFn, max_cpu: int = 4096) -> tuple[int, int]:
    cpu = draw(st.sampled_from([c for c in FARGATE_SIZES if c <= max_cpu]))
    return cpu, draw(st.sampled_from(FARGATE_SIZES[cpu]))


@st.composite
def stack_configs(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """(environment, the wwhd:* sections of a valid stack file)."""
    env = draw(st.sampled_from(["dev", "staging", "prod"]))
    engine = draw(st.sampled_from(["sqlite", "postgres"]))
    placement = draw(st.sampled_from(["sidecar", "service", "instance", "external"]))
    single_writer = engine == "sqlite" or placement == "sidecar"

    cpu, memory = draw(fargate_size())
    if single_writer:
        min_count, desired, max_count = draw(st.sampled_from([0, 1])), 1, 1
    else:
        min_count = draw(st.integers(1, 3))
        desired = draw(st.integers(min_count, min_count + 2))
        max_count = draw(st.integers(desired, 10))
    service = {
        "cpu": cpu,
        "memory": memory,
        "desiredCount": desired,
        "minCount": min_count,
        "maxCount": max_count,
        "spotPercent": draw(st.sampled_from([0, 50, 100])),
        "cpuArchitecture": draw(st.sampled_from(["x86_64", "arm64"])),
        "logLevel": draw(st.sampled_from(["DEBUG", "INFO"])),
    }

    qdrant: dict[str, Any] = {"placement": placement}
    if env == "prod" and placement in ("sidecar", "service"):
        # Qdrant on EFS: prod takes it only when acknowledged.
        qdrant["acceptNetworkStorage"] = True
    if placement == "service":
        qcpu, qmem = draw(fargate_size(max_cpu=1024))
        qdrant |= {"cpu": qcpu, "memory": qmem}
    elif placement == "external":
        qdrant["url"] = "https://qdrant.example.cloud:6333"
    elif placement == "instance":
        qdrant |= {
            "instanceType": draw(st.sampled_from(["t4g.small", "t4g.medium", "m7g.large", "t3.small"])),
            "volumeGb": draw(st.sampled_from([20, 100])),
        }

    database: dict[str, Any] = {"engine": engine}
    if engine == "postgres":
        database |= {
            "instanceClass": draw(st.sampled_from(["db.t4g.micro", "db.t4g.small", "db.t4g.medium"])),
            "multiAz": draw(st.booleans()),
            "backupRetentionDays": draw(st.integers(1 if env == "dev" else 7, 35)),
            "deletionProtection": env == "prod" or draw(st.booleans()),
        }

    lb_kind = draw(
        st.sampled_from(["plain", "domain", "certificate"] if env == "dev" else ["domain", "certificate"])
    )
    load_balancer: dict[str, Any] = {"idleTimeout": draw(st.sampled_from([60, 300, 600, 4000]))}
    if lb_kind == "plain":
        load_balancer["allowPlainHttp"] = True
    elif lb_kind == "domain":
        load_balancer |= {"domain": "api.wwhd.ai", "hostedZoneId": "Z0123456789ABCDEFGHIJ"}
    else:
        load_balancer["certificateArn"] = (
            f"arn:aws:acm:{REGION}:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"
        )
    load_balancer["accessLogs"] = env == "prod" or draw(st.booleans())
    load_balancer["deletionProtection"] = env == "prod" or draw(st.booleans())

    retention = {
        "dev": list(LOG_RETENTION_DAYS),
        "staging": list(LOG_RETENTION_DAYS),
        "prod": [d for d in LOG_RETENTION_DAYS if d >= 7],
    }[env]
    monitoring = {
        "alarmEmails": ["oncall@wwhd.ai"] if env == "prod" else draw(st.sampled_from([[], ["dev@wwhd.ai"]])),
        "logRetentionDays": draw(st.sampled_from(retention)),
        "performanceLogRetentionDays": draw(st.sampled_from(retention)),
        "tracing": draw(st.booleans()),
    }
    # Only tasks whose containers fit (each essential one at its memory floor): the
    # configuration refuses the others, naming the key.
    try:
        split_task(cpu, memory, qdrant_sidecar=placement == "sidecar", tracing=monitoring["tracing"])
    except ValueError:
        assume(False)
    storage: dict[str, Any] = {
        "transitionToIaDays": draw(st.sampled_from(EFS_IA_DAYS)),
        "backupRetentionDays": draw(st.sampled_from([1, 7, 30, 35, 365])),
        "protect": env == "prod" or draw(st.booleans()),
        "throughputMode": draw(st.sampled_from(["bursting", "elastic"])),
    }
    if draw(st.booleans()):
        storage["backupCopyRegion"] = "us-east-1"
    network = {
        "cidr": draw(st.sampled_from(["10.0.0.0/16", "10.42.0.0/16", "172.16.0.0/16"])),
        "availabilityZones": draw(st.sampled_from([2, 3])),
        # A NAT instance is for dev and staging; prod refuses it.
        "natGateways": draw(
            st.sampled_from(["single", "one-per-az"] + ([] if env == "prod" else ["instance"]))
        ),
        "flowLogs": env == "prod" or draw(st.booleans()),
    }
    sections = {
        "environment": env,
        "network": network,
        "service": service,
        "images": {
            "apiTag": draw(st.sampled_from(["v0.1.0", "v1.4.2", "3f9c2ab"])),
            "qdrant": "qdrant/qdrant:v1.16.2",
            **(
                {
                    "dockerHubCredentialArn": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
                }
                if env == "prod"
                else {}
            ),
        },
        "storage": storage,
        "database": database,
        "qdrant": qdrant,
        "loadBalancer": load_balancer,
        "monitoring": monitoring,
        "tags": {"CostCenter": f"wwhd-{env}"},
    }
    return env, sections


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real program (linked, not copied) beside generated stack files."""
    work = tmp_path_factory.mktemp("property")
    for name in ("__main__.py", "stack_config.py", "workloads.py", "Pulumi.yaml", "components"):
        (work / name).symlink_to(ROOT / name)
    return work


@pytest.fixture(scope="module")
def packs(workdir: Path) -> Iterator[dict[str, PolicyPack]]:
    """One pack process per environment (the pack reads the stack name from its environment at
    start), started on first use and kept for the whole module."""
    started: dict[str, PolicyPack] = {}

    class Packs(dict):
        def __missing__(self, env: str) -> PolicyPack:
            cfg_file = PACK / "config" / f"{env}.json"
            files = program.load_files(workdir, env)
            pack = PolicyPack(
                PACK, StackContext(project=files.project, stack=env, config=files.config), "127.0.0.1:1"
            )
            started[env] = pack
            pack.spawn()
            pack.connect(load_policy_config(cfg_file) if cfg_file.exists() else {})
            self[env] = pack
            return pack

    try:
        yield Packs()
    finally:
        for pack in started.values():
            pack.stop()


def _write_stack(workdir: Path, env: str, sections: dict[str, Any]) -> None:
    config = {"aws:region": REGION} | {f"wwhd:{k}": v for k, v in sections.items()}
    (workdir / f"Pulumi.{env}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))


@settings(
    max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(generated=stack_configs())
def test_every_valid_configuration_passes_every_mandatory_policy(workdir, packs, generated):
    env, sections = generated
    # The generator must stay inside the valid domain: the model is the judge.
    parse_stack_config({k: v for k, v in sections.items()}, REGION)
    _write_stack(workdir, env, sections)
    files = program.load_files(workdir, env)
    result = program.run(workdir, env, files)
    pack = packs[env]
    providers = {r.urn: r for r in result.resources if r.type.startswith("pulumi:providers:")}
    found = pack.analyze(result.resources, providers) + pack.analyze_stack(result.resources, providers)
    mandatory = [d for d in found if d.enforcement_level == "mandatory" and d.policy_name not in EXEMPT]
    on_efs = env == "prod" and sections["qdrant"]["placement"] in ("sidecar", "service")
    expected = {"qdrant-on-network-storage"} if on_efs else set()
    assert {d.policy_name for d in mandatory} == expected, json.dumps(
        {
            "environment": env,
            "config": sections,
            "violations": [
                f"{d.policy_name} @ {d.urn.rsplit('::', 1)[-1]}: {d.message.splitlines()[-1]}"
                for d in mandatory
            ],
        },
        indent=1,
    )
