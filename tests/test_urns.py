"""Existing stacks update in place: every resource a stack created before the component split
is still there, under its URN or an alias of it, and no stateful resource is replaced.

``tests/fixtures/urns/<stack>.json`` was recorded from the program as it stood before the
split (every URN, and the inputs of the stateful resources). The engine matches a resource of
the new program to the old one by URN or by an alias -- its own, or one inherited from a
parent that has an alias -- and replaces it when a property that cannot change in place
differs. This test computes the aliases the way the engine does, from the alias specs each
registration carries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import EGRESS, INGRESS, ROLE_POLICY
from tools import mocks as mocks_module
from tools.mocks import RecordingMonitor, run_program
from tools.preview.program import jsonable

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "urns"
STACK_TYPE = "pulumi:pulumi:Stack"
COMPONENT = "wwhd:index:"

# Properties whose change replaces a resource (the provider's ForceNew), for the stateful types.
REPLACED_BY = {
    "aws:efs/fileSystem:FileSystem": (
        "creationToken", "encrypted", "kmsKeyId", "performanceMode", "availabilityZoneName",
    ),
    "aws:rds/instance:Instance": (
        "identifier", "engine", "storageEncrypted", "kmsKeyId", "dbName", "username", "availabilityZone",
        "characterSetName", "timezone",
    ),
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix", "objectLockEnabled"),
    "aws:s3/bucketV2:BucketV2": ("bucket", "bucketPrefix", "objectLockEnabled"),
    "aws:ecr/repository:Repository": ("name", "encryptionConfigurations"),
    "aws:kms/key:Key": ("keyUsage", "customerMasterKeySpec", "keySpec", "multiRegion"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "namePrefix", "logGroupClass"),
    "aws:backup/vault:Vault": ("name", "kmsKeyArn"),
}  # fmt: skip


# Resources later changes removed on purpose, by the reason they went: (stack, type, name) each.
# None of them holds data (the test refuses a stateful type here).
RETIRED_BECAUSE = {
    "dev has no HTTPS listener: nothing listens on 443 (issue 17, item 8)": [
        ("dev", INGRESS, "wwhd-lb-443-v4"),
        ("dev", INGRESS, "wwhd-lb-443-v6"),
    ],
    "prod's API keeps nothing on EFS (issue 17, item 8)": [
        ("prod", EGRESS, "wwhd-api-to-efs"),
        ("prod", INGRESS, "wwhd-efs-from-api"),
    ],
    "prod's Qdrant keeps its storage on its host's EBS volume (issue 18)": [
        ("prod", EGRESS, "wwhd-qdrant-to-efs"),
        ("prod", INGRESS, "wwhd-efs-from-qdrant"),
    ],
    "on its host, the ECS agent pulls images and ships logs through the instance's own group (issue 18)": [
        ("prod", EGRESS, "wwhd-qdrant-https"),
    ],
    "the file system policy admits the Qdrant task role; its own policy held only that grant": [
        ("prod", ROLE_POLICY, "wwhd-qdrant-task"),
    ],
    "application secrets moved to SSM SecureString parameters, which task definitions name before "
    "they exist (issue 19); docs/operations.md copies the OpenAI key": [
        (stack, typ, name)
        for stack in ("dev", "prod")
        for typ, name in (
            ("aws:secretsmanager/secret:Secret", "wwhd-openai-api-key"),
            ("aws:secretsmanager/secret:Secret", "wwhd-jwt-secret"),
            ("aws:secretsmanager/secretVersion:SecretVersion", "wwhd-jwt-secret"),
        )
    ],
}
RETIRED = {key: reason for reason, keys in RETIRED_BECAUSE.items() for key in keys}
# Stateful resources replaced on purpose, each with its reason.
REPLACED = {
    ("dev", "aws:ecr/repository:Repository", "wwhd-api"):
        "dev's repository took the name of the account's hand-made wwhd-dev-backend, so no dev stack "
        "could be created before that repository was deleted; it holds images the deploy workflow "
        "pushes again (issue 17, item 5)",
}  # fmt: skip


@dataclass
class Registered:
    urn: str
    type: str
    inputs: dict[str, Any]
    aliases: set[str]


def _urn(stack: str, project: str, parent: str, typ: str, name: str) -> str:
    """The engine's URN: the parent's qualified type chain (the root stack contributes none)."""
    if parent:
        qualified = parent.split("::")[2]
        if qualified != STACK_TYPE:
            typ = f"{qualified}${typ}"
    return f"urn:pulumi:{stack}::{project}::{typ}::{name}"


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Any]]]:
    """The alias specs of every registration, by URN (the recording monitor keeps no aliases)."""
    specs: dict[str, list[Any]] = {}
    original = RecordingMonitor.RegisterResource

    def register(self: RecordingMonitor, request: Any) -> Any:
        response = original(self, request)
        specs[response.urn] = list(request.aliases)
        return response

    monkeypatch.setattr(mocks_module.RecordingMonitor, "RegisterResource", register)
    yield specs


def build(stack: str, specs: dict[str, list[Any]]) -> dict[str, Registered]:
    run = run_program(ROOT, stack)
    project = run.project
    by_urn = {r.urn: r for r in run.registrations}
    resolved: dict[str, set[str]] = {}

    def aliases_of(urn: str) -> set[str]:
        if urn in resolved or urn not in by_urn:
            return resolved.get(urn, set())
        reg = by_urn[urn]
        found: set[str] = set()
        for alias in specs.get(urn, []):
            if alias.WhichOneof("alias") == "urn":
                found.add(alias.urn)
                continue
            spec = alias.spec
            if spec.noParent:
                parent = ""
            elif spec.parentUrn:
                parent = spec.parentUrn
            else:
                parent = reg.parent
            found.add(
                _urn(
                    spec.stack or stack,
                    spec.project or project,
                    parent,
                    spec.type or reg.type,
                    spec.name or reg.name,
                )
            )
        # A child inherits every alias of its parent: the old parent's URN with its own type and name.
        for parent_alias in aliases_of(reg.parent):
            found.add(_urn(stack, project, parent_alias, reg.type, reg.name))
        resolved[urn] = found
        return found

    return {
        r.urn: Registered(r.urn, r.type, jsonable(r.inputs), aliases_of(r.urn)) for r in run.registrations
    }


def matches(old_urn: str, now: dict[str, Registered]) -> list[Registered]:
    return [r for r in now.values() if r.urn == old_urn or old_urn in r.aliases]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_old_resource_is_still_there_or_aliased(stack: str, recorded: dict[str, list[Any]]) -> None:
    before = json.loads((FIXTURES / f"{stack}.json").read_text())["resources"]
    now = build(stack, recorded)
    retired = {key for key in RETIRED if key[0] == stack}
    assert not [key for key in retired if key[1] in REPLACED_BY], "a stateful resource cannot be retired"
    # A component of this program owns no cloud resource (its children are checked one by one):
    # one that no longer exists costs nothing to drop.
    lost = [
        old["urn"]
        for old in before
        if not matches(old["urn"], now)
        and not old["type"].startswith(COMPONENT)
        and (stack, old["type"], old["urn"].rsplit("::", 1)[1]) not in retired
    ]
    assert not lost, "resources the update would delete (add an alias): " + "\n".join(lost)
    claimed = [old["urn"] for old in before if len(matches(old["urn"], now)) > 1]
    assert not claimed, f"old URNs claimed by more than one resource: {claimed}"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_stateful_resource_is_replaced(stack: str, recorded: dict[str, list[Any]]) -> None:
    before = json.loads((FIXTURES / f"{stack}.json").read_text())["resources"]
    now = build(stack, recorded)
    stateful = [old for old in before if "inputs" in old]
    assert len(stateful) >= 6
    replaced = []
    for old in stateful:
        (new,) = matches(old["urn"], now)
        assert new.type == old["type"], old["urn"]
        if [p for p in REPLACED_BY[old["type"]] if new.inputs.get(p) != old["inputs"].get(p)]:
            replaced.append((stack, old["type"], old["urn"].rsplit("::", 1)[1]))
    assert set(replaced) == {key for key in REPLACED if key[0] == stack}, replaced


def test_retired_resources_are_really_gone(recorded: dict[str, list[Any]]) -> None:
    """The table lists only what no longer exists: a resource back in the program leaves it."""
    for stack in ("dev", "prod"):
        now = build(stack, recorded)
        present = {(stack, r.type, r.urn.rsplit("::", 1)[1]) for r in now.values()}
        assert not [key for key in RETIRED if key[0] == stack and key in present]


def test_alias_computation_follows_parents(recorded: dict[str, list[Any]]) -> None:
    """The test's own machinery: a child of a moved component is matched through the
    component's alias, and a resource with no alias matches only its URN."""
    now = build("dev", recorded)
    cluster = next(r for r in now.values() if r.type == "aws:ecs/cluster:Cluster")
    assert (
        cluster.urn == "urn:pulumi:dev::wwhd::wwhd:index:WwhdPlatform$aws:ecs/cluster:Cluster::wwhd-cluster"
    )
    assert (
        "urn:pulumi:dev::wwhd::wwhd:index:WwhdService$aws:ecs/cluster:Cluster::wwhd-cluster"
        in cluster.aliases
    )
    key = next(r for r in now.values() if r.type == "aws:kms/key:Key")
    assert key.aliases == set()
    alb = next(r for r in now.values() if r.type == "aws:lb/loadBalancer:LoadBalancer")
    inherited = "urn:pulumi:dev::wwhd::wwhd:index:WwhdService$wwhd:index:WwhdLoadBalancer$aws:lb/loadBalancer:LoadBalancer::wwhd-lb-alb"
    assert inherited in alb.aliases
