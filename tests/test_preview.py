"""The offline preview: arguments, exit codes, the JSON document, the tree, secrets, the pack protocol,
programs written by others, a brand-new stack, undecided checks, the cost view, determinism, width.

Most tests run ``main()`` in-process on tiny fixture programs (tests/fixtures/preview_*) and tiny
fixture packs (always a subprocess, as the engine runs them); a few run the real program and pack."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from tools.mocks import SECRET_PLACEHOLDER, load_stack_config, to_wire
from tools.preview import cli, cost, program
from tools.preview.analyzer import (
    AnalyzedResource,
    Diagnostic,
    EngineServer,
    PolicyPackError,
    _schema_errors,
    load_policy_config,
    stack_request,
    stack_view,
)
from tools.preview.cost import find_cost_model
from tools.preview.render import Style, render, short_type, tree_rows

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PROGRAM = FIXTURES / "preview_program"
PACK = FIXTURES / "preview_pack"
UNDECIDED_PACK = FIXTURES / "preview_undecided_pack"
UNKNOWNS = FIXTURES / "preview_unknowns"
BROKEN = ROOT / "tests" / "broken_program"
SG_URN = "urn:pulumi:test::tiny::tiny:index:Web$aws:ec2/securityGroup:SecurityGroup::web-sg"


def preview(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def tiny(stack: str = "test", *extra: str) -> tuple[int, str, str]:
    return preview("--stack", stack, "--cwd", str(PROGRAM), *extra)


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


# --- arguments -------------------------------------------------------------------------------


def test_packs_and_configs_pair_up_in_order():
    args = cli.parse_args(["--stack", "s", "--policy-pack", "a", "--policy-pack", "b",
                           "--policy-pack-config", "a.json", "--policy-pack-config", "b.json"])  # fmt: skip
    assert cli.pack_pairs(args) == [(Path("a"), Path("a.json")), (Path("b"), Path("b.json"))]
    only_packs = cli.parse_args(["--stack", "s", "--policy-pack", "a", "--policy-pack", "b"])
    assert cli.pack_pairs(only_packs) == [(Path("a"), None), (Path("b"), None)]
    defaults = cli.parse_args(["--stack", "s"])
    assert cli.pack_pairs(defaults) == [] and Path(defaults.cwd) == ROOT and not defaults.json
    assert defaults.timeout == 120 and not defaults.new_stack and not defaults.wide


def test_a_config_without_its_pack_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(["--stack", "s", "--policy-pack", "a", "--policy-pack-config", "a.json",
                        "--policy-pack-config", "b.json"])  # fmt: skip
    assert exit_info.value.code == 2
    assert "must match the number of --policy-pack" in capsys.readouterr().err


# --- exit codes and the JSON document --------------------------------------------------------


def test_without_packs_no_policy_runs_and_the_json_document_has_its_shape():
    code, out, _ = tiny("test", "--json")
    doc = json.loads(out)
    assert code == 0
    assert (doc["project"], doc["stack"], doc["mode"]) == ("tiny", "test", "update")
    assert doc["policyPacks"] == [] and doc["violations"] == [] and "cost" not in doc
    assert doc["undecided"] == {"total": 0, "byPolicy": {}, "checks": []}
    assert "timings" not in doc  # only with --timings: the document is the same every run
    for r in doc["resources"]:
        assert set(r) == {"urn", "type", "name", "parent", "custom", "inputs"}
    types = {r["type"]: r for r in doc["resources"]}
    assert types["pulumi:pulumi:Stack"]["custom"] is False and types["aws:s3/bucket:Bucket"]["custom"] is True
    # ints arrive from the SDK as doubles; the document shows them as the program wrote them
    assert types["aws:ec2/securityGroup:SecurityGroup"]["inputs"]["ingress"][0]["fromPort"] == 443
    assert doc["outputs"]["groupId"]["value"].startswith("sg-")
    code, out, _ = tiny("test", "--json", "--timings")
    assert set(json.loads(out)["timings"]) >= {"program", "total"}


def test_a_mandatory_violation_exits_1_and_names_policy_and_resource():
    code, out, _ = tiny("test", "--json", "--policy-pack", str(PACK))
    doc = json.loads(out)
    assert code == 1
    mandatory = [v for v in doc["violations"] if v["enforcementLevel"] == "mandatory"]
    assert [(v["policyName"], v["urn"], v["policyPack"]) for v in mandatory] == [
        ("no-world-ingress", SG_URN, "tiny-pack")
    ]
    assert "port 443 is open" in mandatory[0]["message"]
    # the stack policy saw parents, property dependencies and the engine's environment
    assert not [v for v in doc["violations"] if v["policyName"] == "secret-versions-wired"]
    advisory = {v["policyName"] for v in doc["violations"] if v["enforcementLevel"] == "advisory"}
    assert advisory == {"bucket-versioning"}
    pack = doc["policyPacks"][0]
    assert (pack["name"], pack["version"]) == ("tiny-pack", "0.0.7")
    assert {p["name"]: p["enforcementLevel"] for p in pack["policies"]} == {
        "no-world-ingress": "mandatory",
        "bucket-versioning": "advisory",
        "secret-versions-wired": "mandatory",
    }


def test_the_config_file_sets_properties_and_levels_and_the_cost_hook_is_used():
    code, out, _ = tiny("test", "--json", "--policy-pack", str(PACK),
                        "--policy-pack-config", str(PACK / "config-allow-443.json"))  # fmt: skip
    doc = json.loads(out)
    assert code == 0
    assert not [v for v in doc["violations"] if v["enforcementLevel"] == "mandatory"]
    cost = doc["cost"]
    assert (cost["currency"], cost["baselineMonthly"], cost["peakMonthly"]) == ("USD", 5.0, 5.0)
    assert cost["region"] == "eu-west-1"  # the stack's aws:region
    assert {i["name"] for i in cost["items"]} == {"web-bucket-0", "web-bucket-1", "web-sg"}
    assert {u["name"] for u in cost["unpriced"]} == {"api-key"}

    code, out, _ = tiny("ssh", "--json", "--policy-pack", str(PACK),
                        "--policy-pack-config", str(PACK / "config-all-advisory.json"))  # fmt: skip
    levels = {v["policyName"]: v["enforcementLevel"] for v in json.loads(out)["violations"]}
    assert code == 0 and levels["no-world-ingress"] == "advisory"


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ("config-bad-level.json", "'fatal' is not a valid enforcement level"),
        ("config-bad-type.json", "no-world-ingress: allowedPorts: Invalid type. Expected: array"),
    ],
)
def test_a_config_file_the_engine_would_refuse_exits_2(config, named):
    code, out, err = tiny("test", "--policy-pack", str(PACK), "--policy-pack-config", str(PACK / config))
    assert code == 2 and out == ""
    assert named in err


def test_a_configuration_error_exits_2_with_its_message_and_no_traceback():
    code, out, err = tiny("badport")
    assert code == 2 and out == ""
    assert "tiny:openPort must be a port number" in err
    assert "Traceback" not in err


def test_a_malformed_stack_file_exits_2_naming_the_file():
    code, _, err = tiny("malformed")
    assert code == 2
    assert "Pulumi.malformed.yaml: not valid YAML" in err and "Traceback" not in err
    code, _, err = tiny("nosuch")
    assert code == 2 and "Pulumi.nosuch.yaml: no such stack file" in err


def test_an_invoke_the_mocks_cannot_answer_exits_2_naming_it_once():
    code, out, err = tiny("lookup", "--policy-pack", str(PACK))
    assert code == 2 and out == ""
    # called twice, in output form, inside the program's callbacks: one line, the token once
    assert err.count("aws:ec2/getInstance:getInstance") == 1
    assert (
        err.strip()
        == "error: the program calls aws:ec2/getInstance:getInstance, an invoke the offline preview cannot answer"
    )


def test_a_pack_that_cannot_start_exits_2_with_its_error(tmp_path):
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "__main__.py").write_text("import no_such_policy_module\n")
    code, _, err = tiny("test", "--policy-pack", str(tmp_path))
    assert code == 2
    assert "failed to start" in err and "no_such_policy_module" in err
    code, _, err = tiny("test", "--policy-pack", str(tmp_path / "missing"))
    assert code == 2 and "no PulumiPolicy.yaml" in err


# --- programs written by others ------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "lambda"])
def test_resource_objects_as_inputs_preview_instead_of_hanging(stack):
    """``role=role`` and ``function=fn``: the program used to hang at 0% CPU, or crash with "attached
    to a different loop", while the mock rebuilt the referenced resource on another event loop."""
    code, out, err = preview(
        "--stack", stack, "--cwd", str(FIXTURES / "preview_refs"), "--json", "--timeout", "30"
    )
    assert code == 0, err
    by_type = {r["type"]: r for r in json.loads(out)["resources"]}
    role = by_type["aws:iam/role:Role"]["inputs"]["name"]  # the auto-name Check filled in
    assert by_type["aws:iam/rolePolicyAttachment:RolePolicyAttachment"]["inputs"]["role"] == role
    if stack == "lambda":
        function = by_type["aws:lambda/function:Function"]["inputs"]["name"]
        assert by_type["aws:lambda/permission:Permission"]["inputs"]["function"] == function


def test_a_program_that_never_finishes_stops_at_the_timeout_naming_what_waits():
    code, out, err = preview("--stack", "dev", "--cwd", str(FIXTURES / "preview_stuck"), "--timeout", "2")
    assert code == 2 and out == ""
    assert "did not finish within 2 s" in err
    assert "aws:s3/bucket:Bucket 'stuck'" in err and "'ready'" not in err  # 'ready' did register
    assert "Traceback" not in err


def test_lookups_are_answered_and_the_report_lists_the_stand_ins():
    code, out, err = preview("--stack", "dev", "--cwd", str(UNKNOWNS), "--json")
    assert code == 0, err
    doc = json.loads(out)
    made_up = {s["invoke"]: s for s in doc["standIns"]}
    assert set(made_up) == {
        "aws:ec2/getVpc:getVpc",
        "aws:ec2/getSubnets:getSubnets",
        "aws:ssm/getParameter:getParameter",
        "aws:ec2/getAmi:getAmi",
        "aws:index/getCallerIdentity:getCallerIdentity",
    }
    assert made_up["aws:ssm/getParameter:getParameter"]["example"].startswith("value ami-")
    instance = next(r for r in doc["resources"] if r["type"] == "aws:ec2/instance:Instance")
    assert instance["inputs"]["ami"].startswith("ami-") and instance["inputs"]["subnetId"].startswith(
        "subnet-"
    )
    code, text, _ = preview("--stack", "dev", "--cwd", str(UNKNOWNS))
    assert code == 0
    section = text.split("Stand-in values", 1)[1]
    assert "aws:ec2/getVpc:getVpc" in section and "aws:index/getRegion" not in section
    # what the program logs reaches the report, as pulumi preview shows its diagnostics
    assert doc["programLog"] == [
        {"level": "warning", "message": "no VPC configured: using the account's default VPC"}
    ]
    assert "Diagnostics from the program:\n    warning: no VPC configured" in text


def test_outputs_say_whether_known_unknown_or_made_up_by_the_mocks():
    code, out, _ = preview("--stack", "dev", "--cwd", str(UNKNOWNS), "--json")
    assert code == 0
    outputs = json.loads(out)["outputs"]
    assert outputs["family"] == {"value": "api", "status": "known", "secret": False}
    for key in ("repositoryUrl", "logGroup", "imageId", "account"):  # URL, auto-name suffix, stand-ins
        assert outputs[key]["status"] == "mock-supplied", key
    code, out, _ = preview("--stack", "dev", "--cwd", str(UNKNOWNS), "--json", "--new-stack")
    assert code == 0
    outputs = json.loads(out)["outputs"]
    assert outputs["repositoryUrl"] == {"value": "output<string>", "status": "unknown", "secret": False}
    assert outputs["logGroup"]["status"] == "mock-supplied"  # an auto-name is known before creation
    _, text, _ = preview("--stack", "dev", "--cwd", str(UNKNOWNS), "--new-stack")
    lines = {line.split(":", 1)[0].strip(): line for line in text.splitlines() if line.startswith("    ")}
    assert lines["repositoryUrl"].endswith("output<string>") and lines["logGroup"].endswith("(mock)")
    assert lines["family"].endswith("api")


# --- a brand-new stack and undecided checks --------------------------------------------------------


def test_a_new_stack_counts_undecided_checks_per_policy_and_a_mandatory_one_fails():
    """The old way of building a program (container definitions from the repository URL) cannot be
    judged before the repository exists: undecided, said so, never a silent pass or a crash."""
    code, out, err = preview("--stack", "dev", "--cwd", str(UNKNOWNS), "--json", "--new-stack",
                             "--policy-pack", str(UNDECIDED_PACK))  # fmt: skip
    assert code == 1, err
    doc = json.loads(out)
    assert doc["mode"] == "new-stack" and doc["violations"] == []
    undecided = doc["undecided"]
    assert undecided["total"] == 3
    assert undecided["byPolicy"] == {
        "containers-pinned": 1,
        "legacy-log-driver": 1,
        "service-count-bounded": 1,
    }
    checks = {c["policyName"]: c for c in undecided["checks"]}
    # reported by the policy itself, at its own level
    assert (checks["containers-pinned"]["property"], checks["containers-pinned"]["enforcementLevel"]) == (
        "containerDefinitions", "mandatory")  # fmt: skip
    assert checks["containers-pinned"]["reason"].startswith(
        "undecided [containerDefinitions]: TaskDefinition 'api'"
    )
    assert checks["containers-pinned"]["urn"].endswith("aws:ecs/taskDefinition:TaskDefinition::api")
    # raised as the SDK's UnknownValueError with the marker: the SDK makes it advisory
    assert (checks["service-count-bounded"]["property"], checks["service-count-bounded"]["enforcementLevel"]) == (
        "desiredCount", "advisory")  # fmt: skip
    # an older pack touching the unknown through the SDK's proxy: counted, property unnamed
    assert checks["legacy-log-driver"]["property"] == "?"
    assert "can't be known during preview" in checks["legacy-log-driver"]["message"]

    code, text, _ = preview(
        "--stack", "dev", "--cwd", str(UNKNOWNS), "--new-stack", "--policy-pack", str(UNDECIDED_PACK)
    )
    assert "undecided (3: 2 advisory, 1 mandatory)" in text
    assert "? containers-pinned [mandatory]  (TaskDefinition: api; unknown: containerDefinitions)" in text
    assert "Preview failed: 1 mandatory check(s) undecided." in text


def test_the_normal_mode_previews_an_update_with_outputs_known():
    code, out, err = preview(
        "--stack", "dev", "--cwd", str(UNKNOWNS), "--json", "--policy-pack", str(UNDECIDED_PACK)
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["mode"] == "update" and doc["undecided"]["total"] == 0 and doc["violations"] == []
    task = next(r for r in doc["resources"] if r["type"] == "aws:ecs/taskDefinition:TaskDefinition")
    assert json.loads(task["inputs"]["containerDefinitions"])[0]["image"].endswith("/api-14c2529:v1.0.0")


def test_undecided_markers_are_read_from_the_policys_own_words():
    def diagnostic(message: str) -> Diagnostic:
        return Diagnostic("p", "pol", "mandatory", "", message, "u", description="Pinned images.")

    assert diagnostic("Pinned images.\nundecided [image]: x").undecided_property == "image"
    assert diagnostic("Pinned images.\nundecided [image]: x").reason == "undecided [image]: x"
    sdk = "can't run policy 'pol' from policy pack 'p@v1' during preview: "
    assert diagnostic(sdk + "undecided [desiredCount]: y").undecided_property == "desiredCount"
    assert (
        diagnostic(sdk + "number value at .desiredCount can't be known during preview").undecided_property
        == "?"
    )
    assert diagnostic("Pinned images.\nimage 'x' is not pinned").undecided_property is None
    assert diagnostic("Pinned images.\nthe word undecided [image]: later").undecided_property is None


# --- the cost view -----------------------------------------------------------------------------


def test_the_cost_model_gets_the_resources_the_pack_gets_unknowns_as_sentinels():
    from pulumi.output import Unknown

    resource = AnalyzedResource(
        urn="u", type="aws:ecs/service:Service", name="api", inputs={},
        outputs={"desiredCount": Unknown(), "cpu": 256.0, "tags": {"a": None}, "__defaults": []},
    )  # fmt: skip
    request = stack_request([resource])
    (view,) = stack_view(request)
    assert view["properties"] == {"desiredCount": UNKNOWN_STRING_VALUE, "cpu": 256.0, "tags": {}}
    # what pulumi_policy's AnalyzeStack makes of the same request, property for property
    from google.protobuf import json_format

    assert deserialize_properties(view["properties"]) == deserialize_properties(
        json_format.MessageToDict(request.resources[0].properties)
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_cost_model_reads_each_property_as_pulumi_policy_hands_it_to_a_policy(stack):
    """The model's process does not import pulumi_policy: the preview reads the properties for it,
    and must read them as the SDK does (secrets unwrapped, unknowns kept), on every resource of a
    real stack, new or existing, plus a secret at every depth."""
    from pulumi_policy import deserialize as sdk

    assert (cost.SIG_KEY, cost.SECRET_SIG) == (sdk.SPECIAL_SIG_KEY, sdk.SPECIAL_SECRET_SIG)
    secret = {sdk.SPECIAL_SIG_KEY: sdk.SPECIAL_SECRET_SIG, "value": {"password": "p", "n": 1.0}}
    nested = {"a": secret, "b": [secret, {"c": secret}], "d": None}
    assert cost.policy_view(nested) == sdk.deserialize_properties(nested)
    assert cost.policy_view(nested)["b"][1] == {"c": {"password": "p", "n": 1.0}}
    for new_stack in (False, True):
        files = program.load_files(ROOT, stack)
        resources = program.run(ROOT, stack, files, new_stack=new_stack).resources
        for view in stack_view(stack_request(resources)):
            assert cost.policy_view(view["properties"]) == sdk.deserialize_properties(view["properties"]), (
                view["urn"]
            )


def test_a_service_of_unknown_size_is_unpriced_not_free():
    _, out, _ = preview("--stack", "dev", "--cwd", str(UNKNOWNS), "--json", "--new-stack",
                        "--policy-pack", str(ROOT / "policies"))  # fmt: skip
    cost = json.loads(out)["cost"]
    unpriced = {u["name"]: u["reason"] for u in cost["unpriced"] if u["type"] == "aws:ecs/service:Service"}
    assert "desiredCount" in unpriced["api"]
    assert not [i for i in cost["items"] if i["type"] == "aws:ecs/service:Service"]


@pytest.mark.parametrize("mode", [[], ["--new-stack"]])
def test_the_report_estimate_is_the_figure_the_cost_ceiling_judged(tmp_path, mode):
    config = json.loads((ROOT / "policies" / "config" / "dev.json").read_text())
    config["cost-ceiling"] |= {"maxMonthlyUsd": 40, "maxPeakMonthlyUsd": 40}
    (tmp_path / "dev.json").write_text(json.dumps(config))
    code, out, err = preview("--stack", "dev", "--json", "--policy-pack", str(ROOT / "policies"),
                             "--policy-pack-config", str(tmp_path / "dev.json"), *mode)  # fmt: skip
    assert code == 1, err
    doc = json.loads(out)
    over = [v["message"] for v in doc["violations"] if v["policyName"] == "cost-ceiling"]
    assert over, "the stack must be over its ceiling"
    judged = {
        float(m.replace(",", "")) for text in over for m in re.findall(r"bill \$([\d,]+\.\d\d)/month", text)
    }
    assert judged == {round(doc["cost"]["baselineMonthly"], 2), round(doc["cost"]["peakMonthly"], 2)}
    assert doc["cost"]["ceiling"] == {"baselineMonthly": 40, "peakMonthly": 40}


# --- secrets -----------------------------------------------------------------------------------


def test_secure_values_become_placeholders_marked_secret_everywhere():
    files = load_stack_config(PROGRAM, "test")
    assert files.config["tiny:apiKey"] == SECRET_PLACEHOLDER and files.secret_keys == ["tiny:apiKey"]
    assert files.config["tiny:owner"] == "platform-team"  # project default, namespaced
    code, out, _ = tiny("test", "--json")
    assert code == 0
    doc = json.loads(out)
    version = next(
        r for r in doc["resources"] if r["type"] == "aws:secretsmanager/secretVersion:SecretVersion"
    )
    assert version["inputs"]["secretString"] == "[secret]"
    assert doc["outputs"]["apiKey"] == {"value": "[secret]", "status": "known", "secret": True}
    assert SECRET_PLACEHOLDER not in out
    # the pack receives the value wrapped as a secret, as the engine marshals it (KeepSecrets)
    wire = to_wire(
        {"s": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "x"}}
    )
    assert wire["s"]["value"] == "x" and wire["s"]["4dabf18193072939515e22adb298388d"]


# --- human output ------------------------------------------------------------------------------


def _res(urn: str, typ: str, parent: str = "", **extra) -> dict:
    return {"urn": urn, "type": typ, "name": urn, "parent": parent, "custom": True, "inputs": {}, **extra}


def _doc(resources: list[dict], **extra) -> dict:
    return {"project": "p", "stack": "s", "resources": resources, "outputs": {}, "policyPacks": [],
            "violations": [], **extra}  # fmt: skip


def test_the_tree_nests_children_under_their_parents():
    resources = [_res("stack", "pulumi:pulumi:Stack"), _res("net", "x:index:Net", "stack"),
                 _res("vpc", "aws:ec2/vpc:Vpc", "net"), _res("sg", "aws:ec2/securityGroup:SecurityGroup", "net"),
                 _res("key", "aws:kms/key:Key", "stack")]  # fmt: skip
    rows = [(prefix, r["urn"]) for prefix, r in tree_rows(resources)]
    assert rows == [("", "stack"), ("├─ ", "net"), ("│  ├─ ", "vpc"), ("│  └─ ", "sg"), ("└─ ", "key")]


def test_types_are_shortened_as_pulumi_preview_does():
    assert short_type("aws:ec2/securityGroup:SecurityGroup") == "aws:ec2:SecurityGroup"
    assert short_type("random:index/randomPassword:RandomPassword") == "random:index:RandomPassword"
    # only when the module's file is the type's own name
    assert short_type("aws:s3/bucketV2:Bucket") == "aws:s3/bucketV2:Bucket"
    assert short_type("pulumi:pulumi:Stack") == "pulumi:pulumi:Stack"
    assert short_type("awsx:ec2:Vpc") == "awsx:ec2:Vpc"


def test_the_report_draws_tree_counts_violations_by_level_and_cost_in_plain_text():
    code, out, _ = tiny("test", "--policy-pack", str(PACK))
    assert code == 1
    assert "\033[" not in out  # not a terminal: no colour
    lines = out.splitlines()
    assert any(
        line.startswith(" +   ├─ tiny:index:Web") and line.split()[-2:] == ["web", "create"] for line in lines
    )
    # nested one level below the component, in the order the program constructed it: first child
    assert any(line.startswith(" +   │  ├─ aws:ec2:SecurityGroup") for line in lines)
    assert "    + 7 to create" in lines
    assert "       4  Web web: 2 Bucket, 1 SecurityGroup, 1 Web" in lines  # one line per top-level component
    mandatory, advisory = out.index("mandatory (1)"), out.index("advisory (2)")
    assert mandatory < out.index("no-world-ingress") < advisory < out.index("bucket-versioning")
    assert "(SecurityGroup: web-sg)" in out
    assert out.index("Resources:") < mandatory < out.index("Estimated monthly cost (USD, eu-west-1)")
    assert "Preview failed: 1 mandatory policy violation" in out
    code, by_type, _ = tiny("test", "--by-type")
    assert "       2  aws:s3:Bucket" in by_type.splitlines()


def test_colour_only_for_terminals():
    doc = _doc([_res("a", "t")])
    assert "\033[32m+\033[0m" in render(doc, Style(True))
    assert "\033[" not in render(doc, Style(False))


def test_long_rows_fit_100_columns_and_wide_shows_them_whole():
    name = "a-resource-name-" * 6
    doc = _doc([_res("stack", "pulumi:pulumi:Stack"),
                _res(name, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "stack")],
               violations=[{"policyName": "p", "enforcementLevel": "advisory", "severity": "", "urn": name,
                            "message": "word " * 60, "policyPack": "x"}],
               policyPacks=[{"name": "x", "policies": []}])  # fmt: skip
    narrow, wide = render(doc, Style(False)), render(doc, Style(False), width=None)
    assert widest(narrow) <= 100 < widest(wide)
    assert "aws:s3:BucketServerSideEncryptionConfiguration" in narrow
    assert "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration" in wide
    assert narrow.count("word") == wide.count("word") == 60  # messages wrap, never cut


def test_the_ceiling_line_shows_use_and_headroom_once_when_baseline_is_peak():
    cost = {"currency": "USD", "region": "us-west-2", "items": [], "unpriced": []}
    same = render(_doc([], cost=cost | {"baselineMonthly": 82.28, "peakMonthly": 82.28,
                                        "ceiling": {"baselineMonthly": 85, "peakMonthly": 85}}), Style(False))  # fmt: skip
    assert "baseline = autoscaling peak: USD 82.28 of 85.00 ceiling: 2.72 headroom (97% used)" in same
    assert same.count("ceiling") == 1
    split = render(_doc([], cost=cost | {"baselineMonthly": 378.75, "peakMonthly": 1012.5,
                                         "ceiling": {"baselineMonthly": 410, "peakMonthly": 1000}}), Style(False))  # fmt: skip
    assert "USD 378.75 of 410.00 ceiling: 31.25 headroom (92% used)" in split
    assert "USD 1,012.50 of 1,000.00 ceiling: over by 12.50 (101% used)" in split


def test_a_remote_component_says_its_children_are_unseen_and_the_vpc_lists_them():
    vpc = _res("vpc", "awsx:ec2:Vpc", "stack", remote=True, children={
        "availabilityZones": 2, "subnets": {"public": 2, "private": 2}, "natGatewayStrategy": "Single",
        "natGateways": 1, "elasticIps": 1, "routeTables": 4, "internetGateways": 1, "vpcEndpoints": 0})  # fmt: skip
    other = _res("other", "x:index:Remote", "stack", remote=True)
    text = render(_doc([_res("stack", "pulumi:pulumi:Stack"), vpc, other]), Style(False))
    text = " ".join(text.replace("│", " ").split())  # the note wraps under the tree
    assert "2 AZs, 4 subnets (2 public, 2 private), 1 NAT gateway (Single), 1 elastic IP, 4 route" in text
    assert "remote component: its children are not visible offline" in text


def test_the_module_runs_as_a_script_and_is_plain_when_piped():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.preview",
            "--stack",
            "ssh",
            "--cwd",
            str(PROGRAM),
            "--policy-pack",
            str(PACK),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "\033[" not in proc.stdout and "port 22 is open to 0.0.0.0/0" in proc.stdout


# --- protocol pieces ---------------------------------------------------------------------------


def test_policy_config_files_parse_as_the_cli_parses_them(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            {"all": "mandatory", "a": "advisory", "b": {"enforcementLevel": "disabled", "x": 1}, "c": {}}
        )
    )
    parsed = load_policy_config(path)
    assert {k: (v.level, v.properties) for k, v in parsed.items()} == {
        "all": ("mandatory", {}),
        "a": ("advisory", {}),
        "b": ("disabled", {"x": 1}),
    }
    path.write_text("[1]")
    with pytest.raises(PolicyPackError, match="must be a JSON object"):
        load_policy_config(path)


def test_schema_validation_covers_what_policy_schemas_use():
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1},
              "l": {"type": "array", "items": {"type": "string"}}, "e": {"enum": ["a", "b"]}}, "required": ["n"]}  # fmt: skip
    assert _schema_errors(schema, {"n": 3, "l": ["x"], "e": "a"}, "") == []
    errors = _schema_errors(schema, {"n": 0, "l": [1], "e": "c"}, "")
    assert len(errors) == 3
    assert _schema_errors(schema, {}, "") == ["(root): n is required"]
    assert _schema_errors({"type": "integer"}, True, "x")  # a bool is not an integer


def test_the_engine_service_accepts_log_calls():
    engine = EngineServer()
    try:
        with grpc.insecure_channel(engine.address) as channel:
            stub = engine_pb2_grpc.EngineStub(channel)
            stub.Log(engine_pb2.LogRequest(severity=engine_pb2.WARNING, message="hello"))
        assert engine.logs == [("warning", "hello")]
    finally:
        engine.stop()


def test_the_cost_model_hook_is_found_in_packs():
    assert find_cost_model(PACK) == "tiny_policies.cost_model"
    assert find_cost_model(ROOT / "policies") == "wwhd_policies.cost_model"
    assert find_cost_model(PROGRAM) is None


# --- the real program and pack -----------------------------------------------------------------


def _real(stack: str, cwd: Path = ROOT, config: str = "dev", *extra: str) -> tuple[int, dict, str]:
    pack = ROOT / "policies"
    code, out, err = preview("--stack", stack, "--cwd", str(cwd), "--json", "--policy-pack", str(pack),
                             "--policy-pack-config", str(pack / "config" / f"{config}.json"), *extra)  # fmt: skip
    return code, (json.loads(out) if out else {}), err


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_real_stacks_pass_their_policy_config_with_a_cost_summary(stack):
    code, doc, err = _real(stack, config=stack)
    mandatory = [(v["policyName"], v["urn"], v["message"]) for v in doc.get("violations", [])
                 if v["enforcementLevel"] == "mandatory"]  # fmt: skip
    assert code == 0, mandatory or err
    assert doc["cost"]["baselineMonthly"] > 0 and doc["cost"]["currency"] == "USD"
    # awsx's Vpc is opaque under mocks: the pack still sees the NAT strategy it is built with
    # (dev: none, a NAT instance of the program's own instead; prod: one gateway).
    vpc = next(r for r in doc["resources"] if r["type"] == "awsx:ec2:Vpc")
    nat = next(i for i in doc["cost"]["items"] if i["urn"] == vpc["urn"])
    assert ("strategy None" if stack == "dev" else "strategy Single") in nat["detail"]
    assert vpc["remote"] and vpc["children"]["natGateways"] == (0 if stack == "dev" else 1)
    instances = [i for i in doc["cost"]["items"] if i["type"] == "aws:ec2/instance:Instance"]
    assert [i["name"] for i in instances] == (["wwhd-nat"] if stack == "dev" else [])
    assert doc["cost"]["unpriced"] == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_real_reports_fit_100_columns(stack):
    pack = ROOT / "policies"
    for mode in ([], ["--new-stack"]):
        code, out, err = preview("--stack", stack, "--policy-pack", str(pack),
                                 "--policy-pack-config", str(pack / "config" / f"{stack}.json"), *mode)  # fmt: skip
        assert code in (0, 1), err
        assert widest(out) <= 100, max(out.splitlines(), key=len)
        assert "from its inputs it creates" in out and "Stand-in values" in out


def test_the_broken_program_violates_each_guardrail_it_breaks():
    code, doc, err = _real("dev", BROKEN)
    assert code == 1, err
    mandatory = {v["policyName"] for v in doc["violations"] if v["enforcementLevel"] == "mandatory"}
    assert mandatory >= {
        "efs-encrypted",
        "security-group-no-public-ingress",
        "ecs-service-private-networking",
        "image-pinned",
        "single-writer-storage",
    }


def test_a_typo_in_a_stack_file_of_the_real_program_exits_2_naming_the_key(tmp_path):
    for name in ("__main__.py", "stack_config.py", "Pulumi.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(
        ROOT / "components", tmp_path / "components", ignore=shutil.ignore_patterns("__pycache__")
    )
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    assert "desiredCount:" in text
    (tmp_path / "Pulumi.dev.yaml").write_text(text.replace("desiredCount:", "desiredCunt:"))
    code, doc, err = _real("dev", tmp_path)
    assert code == 2 and doc == {}
    assert "wwhd:service.desiredCunt" in err and "Traceback" not in err


def test_the_same_inputs_give_byte_identical_text_and_json():
    """Two processes each, as two CI runs would: registrations arrive asynchronously, the order of
    the report must not."""
    base = [sys.executable, "-m", "tools.preview", "--stack", "prod", "--policy-pack", "policies",
            "--policy-pack-config", "policies/config/prod.json"]  # fmt: skip
    runs = {}
    for fmt in ("text", "json"):
        cmd = base + (["--json"] if fmt == "json" else [])
        procs = [
            subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)
        ]
        runs[fmt] = [p.communicate(timeout=180) for p in procs]
        assert all(p.returncode == 0 for p in procs), runs[fmt][0][1].decode()[-2000:]
    for fmt, ((out_a, _), (out_b, _)) in runs.items():
        assert out_a == out_b, fmt
