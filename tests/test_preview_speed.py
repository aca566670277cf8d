"""What the preview does to be fast changes nothing it shows: a provider SDK imported by name gives
the very objects the full import gives; the packs analyzing resources while the program runs give
the diagnostics of an analysis after it. (Timings are ``make bench``'s business, never a test's.)"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tools.mocks import StackFiles
from tools.preview import program
from tools.preview.analyzer import (
    AnalyzedResource,
    EngineServer,
    IncrementalAnalysis,
    PolicyPack,
    PolicyPackError,
    StackContext,
    load_policy_config,
    stack_request,
)
from tools.preview.program import Preview

ROOT = Path(__file__).resolve().parent.parent


def _fresh(code: str) -> dict:
    """Run ``code`` in a fresh interpreter (this one may hold the SDK fully imported already);
    it prints one JSON document."""
    proc = subprocess.run(
        [sys.executable, "-c", "from tools.sdk_imports import import_by_name\n" + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


def test_a_name_imports_its_own_module_only() -> None:
    found = _fresh(
        """
import json, sys
import_by_name("pulumi_aws")
import pulumi_aws as aws
from pulumi_aws.ec2 import security_group
cls = aws.ec2.SecurityGroup
ec2 = sorted(k for k in sys.modules if k.startswith("pulumi_aws.ec2."))
print(json.dumps({"same": cls is security_group.SecurityGroup, "ec2": ec2,
                  "args": aws.ec2.SecurityGroupIngressArgs.__module__}))
"""
    )
    assert found["same"]
    # The resource's module and what every resource module imports; not the 180 others.
    assert set(found["ec2"]) <= {
        "pulumi_aws.ec2.security_group",
        "pulumi_aws.ec2._inputs",
        "pulumi_aws.ec2.outputs",
        "pulumi_aws.ec2._enums",
    }
    assert found["args"] == "pulumi_aws.ec2._inputs"


def test_every_name_is_the_object_the_full_import_gives() -> None:
    """For a whole subpackage: each public name read by name first, then the full import (which
    ``dir()`` triggers) holds the very same object under every name."""
    found = _fresh(
        """
import json
import_by_name("pulumi_aws")
import pulumi_aws as aws
from tools import sdk_imports
from pathlib import Path
names = sdk_imports._index(Path(aws.ecs.__file__))
by_name = {n: getattr(aws.ecs, n) for n in names}
kind_before = type(aws.ecs).__name__
full = dir(aws.ecs)
print(json.dumps({"names": len(names), "kind_before": kind_before, "kind_after": type(aws.ecs).__name__,
                  "missing": sorted(set(names) - set(full)),
                  "different": sorted(n for n, v in by_name.items() if getattr(aws.ecs, n) is not v)}))
"""
    )
    assert found["names"] > 50  # resources, their args, lookups, input and output types
    assert found["kind_before"] == "_ByNameModule"
    assert found["kind_after"] == "module"  # dir() completed the SDK's own full import
    assert found["missing"] == [] and found["different"] == []


def test_a_lookup_named_like_its_module_stays_the_lookup() -> None:
    """``get_ami`` is both a module and the function it defines; importing the module another way
    (through ``get_ami_output``, or an import statement) must not leave the module in its place."""
    found = _fresh(
        """
import json
import_by_name("pulumi_aws")
import pulumi_aws as aws
aws.ec2.get_ami_output
import pulumi_aws.ec2.get_subnet
print(json.dumps({"get_ami": type(aws.ec2.get_ami).__name__, "get_subnet": type(aws.ec2.get_subnet).__name__}))
"""
    )
    assert found == {"get_ami": "function", "get_subnet": "function"}


def test_a_package_not_in_the_generated_form_keeps_its_own_loading() -> None:
    """``pulumi_aws.config`` replaces its own class on import; it must still read config."""
    found = _fresh(
        """
import json, pulumi
pulumi.runtime.set_all_config({"aws:region": "eu-west-1"}, [])
import_by_name("pulumi_aws")
import pulumi_aws as aws
print(json.dumps({"region": aws.config.region, "unknown_name": hasattr(aws.ec2, "NoSuchThing")}))
"""
    )
    assert found == {"region": "eu-west-1", "unknown_name": False}


# --- analysis while the program runs -----------------------------------------------------------

FIXTURES = ROOT / "tests" / "fixtures"


def _tiny_run(on_resource: Callable[[AnalyzedResource], None] | None = None) -> tuple[StackFiles, Preview]:
    files = program.load_files(FIXTURES / "preview_program", "ssh")
    return files, program.run(FIXTURES / "preview_program", "ssh", files, on_resource=on_resource)


def test_each_resource_reaches_the_analysis_when_registered_with_its_checked_inputs() -> None:
    seen: list[AnalyzedResource] = []
    _, result = _tiny_run(seen.append)
    assert sorted(r.urn for r in seen) == sorted(r.urn for r in result.resources)
    final = {r.urn: r for r in result.resources}
    for r in seen:  # what Analyze reads is final at registration; outputs may still change
        assert (r.type, r.name, dict(r.inputs), r.parent, r.provider_urn, r.protect) == (
            final[r.urn].type,
            final[r.urn].name,
            dict(final[r.urn].inputs),
            final[r.urn].parent,
            final[r.urn].provider_urn,
            final[r.urn].protect,
        )
    # Inputs the provider's Check filled in (an auto-name) are there already.
    bucket = next(r for r in seen if r.type == "aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"].startswith("web-bucket-0-")


@pytest.mark.parametrize("helper", ["none", "working", "broken"])
def test_incremental_analysis_gives_the_batch_analysis_diagnostics_in_order(
    helper: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With or without a helper process (one that shares the Analyze calls, or one that cannot
    start and is left out), the diagnostics are the batch analysis's, in its order."""
    files, _ = _tiny_run()
    context = StackContext(project=files.project, stack="ssh", config=files.config)
    config = load_policy_config(FIXTURES / "preview_pack" / "config-all-advisory.json")
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "__main__.py").write_text("import no_such_policy_module\n")
    served: list[PolicyPack] = []
    analyze_one = PolicyPack._analyze_one
    monkeypatch.setattr(
        PolicyPack, "_analyze_one", lambda self, *a: served.append(self) or analyze_one(self, *a)
    )
    engine = EngineServer()
    with (
        PolicyPack(FIXTURES / "preview_pack", context, engine.address) as batch_pack,
        PolicyPack(FIXTURES / "preview_pack", context, engine.address) as pack,
        PolicyPack(
            FIXTURES / "preview_pack" if helper == "working" else tmp_path, context, engine.address
        ) as second,
    ):
        batch_pack.spawn()
        pack.spawn()
        second.spawn(niceness=10)
        analysis = IncrementalAnalysis([(pack, config, None if helper == "none" else second)])
        if helper != "none":  # the tiny program is quicker than a pack's start: let the helper come up
            with contextlib.suppress(PolicyPackError):
                analysis._lanes[0]._helper_connected.result()  # type: ignore[union-attr]
        _, result = _tiny_run(analysis.add)
        stack = stack_request(result.resources)
        incremental = analysis.finish(result.resources, stack)
        batch_pack.connect(config)
        batch = batch_pack.analyze(result.resources) + batch_pack.analyze_stack_request(stack)
    engine.stop()
    assert incremental, "the fixture pack finds something in the tiny program"
    assert [d.to_json() for d in incremental] == [d.to_json() for d in batch]
    in_analysis = [p for p in served if p is not batch_pack]
    assert len(in_analysis) == len(result.resources)
    assert (second in in_analysis) == (helper == "working")
    if helper == "working":  # the calls alternate once the helper is up
        assert abs(in_analysis.count(second) - in_analysis.count(pack)) <= 1


def test_a_pack_that_cannot_start_fails_the_incremental_analysis_at_the_end(tmp_path: Path) -> None:
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "__main__.py").write_text("import no_such_policy_module\n")
    files, _ = _tiny_run()
    with PolicyPack(tmp_path, StackContext(files.project, "ssh", files.config), "127.0.0.1:1") as pack:
        pack.spawn()
        analysis = IncrementalAnalysis([(pack, {}, None)])
        _, result = _tiny_run(analysis.add)  # the program itself is not disturbed
        with pytest.raises(PolicyPackError, match="no_such_policy_module"):
            analysis.finish(result.resources, stack_request(result.resources))
