"""The policy pack over both programs, as an operator's preview runs it: the program under the
mocks, the pack started as the engine starts it and driven over the Analyzer gRPC interface
(Analyze for each resource, then AnalyzeStack), each with its own ``--policy-pack-config``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml

from tests.bootstrap.conftest import BOOTSTRAP, REPOSITORY
from tests.conftest import ROOT
from tools.mocks import ACCOUNT_ID
from tools.preview import program
from tools.preview.analyzer import (
    AnalyzedResource,
    Diagnostic,
    EngineServer,
    PolicyPack,
    StackContext,
    load_policy_config,
)

PACK = ROOT / "policies"
ESCALATION = "iam-no-privilege-escalation"
CONTRACT_BOUNDARY = f"arn:aws:iam::{ACCOUNT_ID}:policy/wwhd-workload-boundary"


@dataclass
class Checked:
    """One stack previewed with the pack; the pack stays up for further Analyze calls."""

    preview: program.Preview
    pack: PolicyPack
    diagnostics: list[Diagnostic]


def configured_bootstrap(directory: Path) -> Path:
    """A copy of the bootstrap project whose stack file names a real repository, as an
    administrator sets it before the first preview (the shipped placeholder is refused)."""
    shutil.copytree(BOOTSTRAP, directory, ignore=shutil.ignore_patterns("__pycache__"))
    stack_file = directory / "Pulumi.prod.yaml"
    doc = yaml.safe_load(stack_file.read_text())
    doc["config"]["wwhd-bootstrap:github"]["repository"] = REPOSITORY
    stack_file.write_text(yaml.safe_dump(doc))
    return directory


# (project directory or None for the main program, stack, policy pack config)
PROGRAMS = {
    "bootstrap": (None, "prod", BOOTSTRAP / "policy-pack-config.json"),
    "main-dev": (ROOT, "dev", PACK / "config" / "dev.json"),
    "main-prod": (ROOT, "prod", PACK / "config" / "prod.json"),
}


@pytest.fixture(scope="module")
def engine() -> Iterator[EngineServer]:
    server = EngineServer()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=sorted(PROGRAMS))
def checked(request: pytest.FixtureRequest, engine: EngineServer, tmp_path_factory) -> Iterator[Checked]:
    cwd, stack, config_file = PROGRAMS[request.param]
    cwd = cwd or configured_bootstrap(tmp_path_factory.mktemp("bootstrap") / "bootstrap")
    files = program.load_files(cwd, stack)
    context = StackContext(
        project=files.project, stack=stack, config=files.config, secret_keys=files.secret_keys
    )
    with PolicyPack(PACK, context, engine.address) as pack:
        pack.spawn()
        preview = program.run(cwd, stack, files)
        pack.connect(load_policy_config(config_file))
        providers = {r.urn: r for r in preview.resources if r.type.startswith("pulumi:providers:")}
        diagnostics = pack.analyze(preview.resources, providers) + pack.analyze_stack(
            preview.resources, providers
        )
        yield Checked(preview, pack, diagnostics)


def test_the_pack_passes_the_program_with_the_escalation_policy_enforced(checked: Checked) -> None:
    levels = {p.name: p.level for p in checked.pack.policies}
    assert levels[ESCALATION] == "mandatory"
    analyzed_iam = [r for r in checked.preview.resources if r.type.startswith("aws:iam/")]
    assert analyzed_iam
    mandatory = [
        (d.policy_name, d.urn, d.message) for d in checked.diagnostics if d.enforcement_level == "mandatory"
    ]
    assert mandatory == []


@pytest.mark.parametrize("checked", ["bootstrap"], indirect=True)
def test_the_pack_refuses_the_deploy_policy_without_its_boundary_conditions(checked: Checked) -> None:
    """The deploy policy main had: these role writes, without the boundary requirement."""
    (registered,) = [r for r in checked.preview.resources if r.name == "deploy-program-iam"]
    document = json.loads(registered.inputs["policy"])
    for statement in document["Statement"]:
        if statement["Effect"] == "Allow":
            for block in statement.get("Condition", {}).values():
                block.pop("iam:PermissionsBoundary", None)
    before = replace(registered, inputs={**registered.inputs, "policy": json.dumps(document)})
    found = [d for d in checked.pack.analyze([before]) if d.policy_name == ESCALATION]
    assert [d.enforcement_level for d in found] == ["mandatory", "mandatory"]
    assert "iam:CreateRole" in found[0].message and "iam:AttachRolePolicy" in found[1].message


def _unbounded_roles(resources: list[AnalyzedResource]) -> list[str]:
    roles = [r for r in resources if r.type == "aws:iam/role:Role"]
    assert roles
    return [r.name for r in roles if r.inputs.get("permissionsBoundary") != CONTRACT_BOUNDARY]


@pytest.mark.xfail(
    strict=True,
    reason="the main program does not set permissionsBoundary yet (the lead's change): until it "
    "does, the deploy role cannot create or change its roles",
)
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_role_of_the_main_program_carries_the_boundary(stack: str) -> None:
    """The contract with the bootstrap: arn:<partition>:iam::<account>:policy/wwhd-workload-boundary."""
    files = program.load_files(ROOT, stack)
    assert _unbounded_roles(program.run(ROOT, stack, files).resources) == []
