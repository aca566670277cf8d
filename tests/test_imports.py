"""Import files (``imports/<stack>.json``, for ``pulumi import --file``) adopt only what the
program declares: every entry lands on a resource of the same type, name, parent and provider,
with an id that names the very resource the program will manage, so the first ``pulumi up``
after the import updates it in place instead of replacing it.

URNs are the engine's: it qualifies a child by its whole chain of parent types and leaves the
root stack out (``Deployment.generateURN``); the recording monitor of the offline preview does
the same (the SDK's own mock does not), and a test here holds it to that. The import command
resolves an entry's URN the same way from its ``parent`` (a name in ``nameTable``) and its own
type and name.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.mocks import ProgramRun, run_program

ROOT = Path(__file__).resolve().parent.parent
IMPORTS = ROOT / "imports"
TAKEOVER = ROOT / "docs" / "takeover.md"
STACK_TYPE = "pulumi:pulumi:Stack"
PROVIDER_PREFIX = "pulumi:providers:"

# The import file schema (pulumi import --help; the CLI's importFile/importSpec). providerInputs
# is left out on purpose: it needs a recent CLI, and these files rely on the provider existing.
FILE_KEYS = {"nameTable", "resources"}
ENTRY_KEYS = {
    "type", "name", "id", "parent", "provider", "version", "pluginDownloadUrl", "properties",
    "component", "remote", "logicalName",
}  # fmt: skip

CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
LOG_GROUP_NAME = re.compile(r"^[.\-_/#A-Za-z0-9]{1,512}$")


@dataclass(frozen=True)
class IdRule:
    """What an import id looks like for a type, and which input of the declared resource it must
    equal: the physical name, whose change forces a replacement."""

    pattern: re.Pattern[str]
    physical_name: Callable[[dict[str, Any]], Any]
    what: str


# The import id of each adoptable type (pulumi-aws docs, "Import" section of each resource).
ID_RULES: dict[str, IdRule] = {
    "aws:ecs/cluster:Cluster": IdRule(CLUSTER_NAME, lambda i: i.get("name"), "the cluster name"),
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": IdRule(
        CLUSTER_NAME, lambda i: i.get("clusterName"), "the cluster name"
    ),
    "aws:cloudwatch/logGroup:LogGroup": IdRule(LOG_GROUP_NAME, lambda i: i.get("name"), "the log group name"),
}


@dataclass(frozen=True)
class Declared:
    """A resource the program registers, named as the engine names it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    """The engine URN of its parent ("" for the root stack)."""
    provider: str
    """The engine URN of its provider ("" for components)."""
    inputs: dict[str, Any]


def qualified_type(run: ProgramRun, urn: str) -> str:
    """The engine's qualified type of a registration: the types of its ancestors below the
    root stack and its own, joined by ``$``, computed from the parent links alone."""
    by_urn = {r.urn: r for r in run.registrations}
    chain, reg = [], by_urn[urn]
    while True:
        chain.append(reg.type)
        if not reg.parent or by_urn[reg.parent].type == STACK_TYPE:
            return "$".join(reversed(chain))
        reg = by_urn[reg.parent]


def engine_urns(run: ProgramRun) -> dict[str, Declared]:
    """Every registration of a run, keyed by its URN (the preview names them as the engine does)."""
    declared = {}
    for reg in run.registrations:
        # A provider reference is "<urn>::<id>"; the URN itself contains "::".
        provider = reg.provider.rsplit("::", 1)[0] if reg.provider else ""
        declared[reg.urn] = Declared(
            reg.urn, reg.type, reg.name, reg.custom, reg.parent, provider, reg.inputs
        )
    assert len(declared) == len(run.registrations), "two registrations share a URN"
    return declared


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_preview_urns_are_the_engines(stack: str) -> None:
    """An import file, a state file and a policy finding all name resources by the engine's URN;
    the offline preview must give the same ones, two component levels deep included."""
    run = run_program(ROOT, stack)
    deep = 0
    for reg in run.registrations:
        expected = f"urn:pulumi:{stack}::{run.project}::{qualified_type(run, reg.urn)}::{reg.name}"
        assert reg.urn == expected
        deep += qualified_type(run, reg.urn).count("$") >= 2
    assert deep, "no resource two component levels deep: the test would not see a lost outer type"


@functools.cache
def declared_for(stack: str) -> dict[str, Declared]:
    return engine_urns(run_program(ROOT, stack))


def child_urn(stack: str, project: str, parent: str | None, typ: str, name: str) -> str:
    """The URN the engine gives a resource of ``typ`` named ``name`` under ``parent``."""
    prefix = ""
    if parent:
        parent_type = parent.split("::")[2]
        if parent_type != STACK_TYPE:
            prefix = parent_type + "$"
    return f"urn:pulumi:{stack}::{project}::{prefix}{typ}::{name}"


def check_import_file(doc: Any, stack: str, project: str, declared: dict[str, Declared]) -> list[str]:
    """Every reason ``doc`` is not a valid import file adopting resources the program declares
    for ``stack``; empty when it is."""
    if not isinstance(doc, dict):
        return ["the file must hold a JSON object"]
    problems = [f"unknown top-level key {k!r}" for k in sorted(set(doc) - FILE_KEYS)]
    table = doc.get("nameTable", {})
    entries = doc.get("resources")
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        return [*problems, "nameTable must map names to URNs"]
    if not isinstance(entries, list) or not entries:
        # The engine has nothing to do for an empty list and stops on it.
        return [*problems, "resources must be a non-empty list"]

    stack_prefix = f"urn:pulumi:{stack}::{project}::"
    for key, urn in table.items():
        if not urn.startswith(stack_prefix):
            problems.append(f"nameTable[{key!r}]: {urn!r} is not a URN of stack {stack!r}")
        elif urn not in declared:
            problems.append(
                f"nameTable[{key!r}]: the program declares no {urn!r} (a URN, not a provider reference)"
            )

    by_name: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(entries):
        where = f"resources[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object")
            continue
        problems += [f"{where}: unknown key {k!r}" for k in sorted(set(entry) - ENTRY_KEYS)]
        for key in ("type", "name", "id"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                problems.append(f"{where}: {key} is required")
        if entry.get("component"):
            # The targeted update in docs/takeover.md creates the parents before the import.
            problems.append(f"{where}: component entries are not used; parents come from nameTable")
        name = entry.get("name")
        if isinstance(name, str):
            if name in by_name:
                problems.append(f"{where}: name {name!r} is used twice")
            by_name[name] = entry
    if problems:
        return problems

    def parent_urn(entry: dict[str, Any], seen: tuple[str, ...] = ()) -> str | None:
        parent = entry.get("parent")
        if not parent:
            return None
        if parent in table:
            return table[parent]
        if parent in by_name and parent not in seen:
            other = by_name[parent]
            logical = other.get("logicalName") or parent
            return child_urn(stack, project, parent_urn(other, (*seen, parent)), other["type"], logical)
        raise LookupError(parent)

    for index, entry in enumerate(entries):
        where = f"resources[{index}] ({entry['type']} {entry['name']!r})"
        try:
            parent = parent_urn(entry)
        except LookupError as missing:
            problems.append(f"{where}: parent {missing} is neither in nameTable nor an entry")
            continue
        urn = child_urn(stack, project, parent, entry["type"], entry.get("logicalName") or entry["name"])
        found = declared.get(urn)
        if found is None or not found.custom:
            problems.append(f"{where}: the program declares no resource {urn!r} for stack {stack!r}")
            continue

        provider = entry.get("provider")
        if not provider:
            problems.append(f"{where}: no provider; the program binds it to {found.provider!r}")
        elif provider not in table:
            problems.append(f"{where}: provider {provider!r} has no entry in nameTable")
        elif not table[provider].split("::")[2].split("$")[-1].startswith(PROVIDER_PREFIX):
            problems.append(f"{where}: nameTable[{provider!r}] is not a provider")
        elif table[provider] != found.provider:
            problems.append(
                f"{where}: provider {table[provider]!r}, but the program binds it to {found.provider!r}"
            )

        rule = ID_RULES.get(entry["type"])
        if rule is None:
            problems.append(f"{where}: no id rule for {entry['type']}; add one to ID_RULES")
            continue
        if not rule.pattern.match(entry["id"]):
            problems.append(f"{where}: id {entry['id']!r} is not {rule.what}")
        physical = rule.physical_name(found.inputs)
        if physical != entry["id"]:
            problems.append(
                f"{where}: id {entry['id']!r} is not the name the program gives it ({physical!r});"
                " the first update after the import would replace it"
            )
    return problems


def import_files() -> list[Path]:
    return sorted(IMPORTS.glob("*.json"))


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def project() -> str:
    return yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]


# --- the files in the repository -------------------------------------------------------------


def test_every_import_file_belongs_to_a_stack() -> None:
    files = import_files()
    # Only prod adopts anything (infra-change-001 built production by hand); an import file
    # without resources is refused by the CLI, so dev has none.
    assert [f.stem for f in files] == ["prod"]
    for path in files:
        assert (ROOT / f"Pulumi.{path.stem}.yaml").is_file(), f"{path.name}: no stack {path.stem!r}"


@pytest.mark.parametrize("path", import_files(), ids=lambda p: p.stem)
def test_import_file_adopts_only_declared_resources(path: Path) -> None:
    assert check_import_file(load(path), path.stem, project(), declared_for(path.stem)) == []


def test_prod_adopts_the_hand_built_cluster_and_log_group() -> None:
    """The configured names are the adopted ids: changing either turns adoption into replacement."""
    entries = {e["type"]: e for e in load(IMPORTS / "prod.json")["resources"]}
    service = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]["wwhd:service"]
    assert entries["aws:ecs/cluster:Cluster"]["id"] == service["clusterName"] == "wwhd-cluster"
    assert entries["aws:ecs/clusterCapacityProviders:ClusterCapacityProviders"]["id"] == "wwhd-cluster"
    assert entries["aws:cloudwatch/logGroup:LogGroup"]["id"] == service["logGroupName"] == "/ecs/wwhd-backend"
    declared = declared_for("prod")
    groups = {d.inputs["name"] for d in declared.values() if d.type == "aws:cloudwatch/logGroup:LogGroup"}
    assert {"/ecs/wwhd-backend", "/ecs/wwhd-backend/performance"} <= groups


def test_takeover_bootstrap_creates_what_the_import_refers_to() -> None:
    """docs/takeover.md creates the provider and the parents with a targeted update before the
    import (pulumi import binds to a provider that is already in the state): every target is a
    URN the program declares, and every nameTable URN is among them."""
    targets = re.findall(r"--target '([^']+)'", TAKEOVER.read_text())
    assert targets, "docs/takeover.md names no --target"
    declared = declared_for("prod")
    assert [t for t in targets if t not in declared] == []
    table = load(IMPORTS / "prod.json")["nameTable"]
    assert set(table.values()) <= set(targets)
    # A targeted update may create every provider (the engine treats them as implicitly
    # targeted); one declared inside a component needs that component in the state first.
    stack_urn = next(d.urn for d in declared.values() if d.type == STACK_TYPE)
    for d in declared.values():
        if d.type.startswith(PROVIDER_PREFIX) and d.parent != stack_urn:
            assert d.parent in targets, f"{d.urn}: its parent {d.parent} is not targeted"


# --- the checker itself: it must be able to fail ---------------------------------------------


def prod_doc() -> dict[str, Any]:
    return copy.deepcopy(load(IMPORTS / "prod.json"))


def problems_of(doc: Any) -> list[str]:
    return check_import_file(doc, "prod", project(), declared_for("prod"))


def entry(doc: dict[str, Any], typ: str) -> dict[str, Any]:
    return next(e for e in doc["resources"] if e["type"] == typ)


def mutated(change: Callable[[dict[str, Any]], None]) -> list[str]:
    doc = prod_doc()
    change(doc)
    return problems_of(doc)


def test_engine_urns_qualify_by_the_whole_parent_chain() -> None:
    declared = declared_for("prod")
    assert "urn:pulumi:prod::wwhd::wwhd:index:WwhdPlatform$aws:ecs/cluster:Cluster::wwhd-cluster" in declared
    assert (
        "urn:pulumi:prod::wwhd::wwhd:index:WwhdPlatform$wwhd:index:WwhdLoadBalancer"
        "$aws:lb/loadBalancer:LoadBalancer::wwhd-lb-alb"
    ) in declared
    provider = "urn:pulumi:prod::wwhd::pulumi:providers:aws::aws"
    assert declared[provider].type == "pulumi:providers:aws"
    cluster = declared["urn:pulumi:prod::wwhd::wwhd:index:WwhdPlatform$aws:ecs/cluster:Cluster::wwhd-cluster"]
    assert cluster.provider == provider


def test_checker_rejects_a_wrong_name() -> None:
    problems = mutated(lambda d: entry(d, "aws:ecs/cluster:Cluster").update(name="cluster"))
    assert any("declares no resource" in p and "::cluster'" in p for p in problems), problems


def test_checker_rejects_a_wrong_parent() -> None:
    def change(d: dict[str, Any]) -> None:
        d["nameTable"]["platform"] = "urn:pulumi:prod::wwhd::wwhd:index:WwhdNetwork::wwhd"

    problems = mutated(change)
    assert any("WwhdNetwork$aws:ecs/cluster:Cluster" in p for p in problems), problems


def test_checker_rejects_a_missing_parent() -> None:
    problems = mutated(lambda d: entry(d, "aws:cloudwatch/logGroup:LogGroup").pop("parent"))
    assert any(
        "urn:pulumi:prod::wwhd::aws:cloudwatch/logGroup:LogGroup::wwhd-api-logs" in p for p in problems
    )


def test_checker_rejects_a_wrong_type() -> None:
    problems = mutated(lambda d: entry(d, "aws:ecs/cluster:Cluster").update(type="aws:ecs/service:Service"))
    assert any("declares no resource" in p for p in problems), problems


def test_checker_rejects_the_default_provider_and_provider_references() -> None:
    assert any(
        "no provider" in p for p in mutated(lambda d: entry(d, "aws:ecs/cluster:Cluster").pop("provider"))
    )

    def reference(d: dict[str, Any]) -> None:
        d["nameTable"]["provider"] += "::04da6b54-80e4-46f7-96ec-b56ff0331ba9"

    assert any("a URN, not a provider reference" in p for p in mutated(reference))

    def copy_region(d: dict[str, Any]) -> None:
        d["nameTable"]["provider"] = (
            "urn:pulumi:prod::wwhd::wwhd:index:WwhdDataVolume$pulumi:providers:aws::wwhd-copy-region"
        )

    assert any("but the program binds it to" in p for p in mutated(copy_region))

    def component(d: dict[str, Any]) -> None:
        d["nameTable"]["provider"] = d["nameTable"]["platform"]

    assert any("is not a provider" in p for p in mutated(component))


def test_checker_rejects_an_id_that_is_not_the_programs_name() -> None:
    problems = mutated(
        lambda d: entry(d, "aws:cloudwatch/logGroup:LogGroup").update(id="/ecs/wwhd-backend-prod")
    )
    assert any("would replace it" in p for p in problems), problems
    problems = mutated(
        lambda d: entry(d, "aws:ecs/cluster:Cluster").update(id="arn:aws:ecs:us-west-2:1:cluster/x")
    )
    assert any("is not the cluster name" in p for p in problems), problems


def test_checker_rejects_malformed_files() -> None:
    assert problems_of([]) == ["the file must hold a JSON object"]
    assert "resources must be a non-empty list" in problems_of({"nameTable": {}, "resources": []})
    assert any("unknown key 'ID'" in p for p in mutated(lambda d: d["resources"][0].update(ID="x")))
    assert any("id is required" in p for p in mutated(lambda d: d["resources"][0].pop("id")))
    assert any("used twice" in p for p in mutated(lambda d: d["resources"].append(d["resources"][0])))
    assert any("neither in nameTable" in p for p in mutated(lambda d: d["nameTable"].pop("platform")))
    assert any(
        "not a URN of stack" in p
        for p in mutated(lambda d: d["nameTable"].update(x="urn:pulumi:dev::wwhd::a::b"))
    )
    repository = {"type": "aws:ecr/repository:Repository", "name": "wwhd-api", "id": "wwhd-prod-backend",
                  "parent": "platform", "provider": "provider"}  # fmt: skip
    assert any("no id rule" in p for p in mutated(lambda d: d["resources"].append(repository)))
