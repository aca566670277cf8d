"""The offline preview: arguments, exit codes, the JSON document, the tree, secrets, the pack protocol.

Most tests run ``main()`` in-process on a tiny fixture program (tests/fixtures/preview_program) and a
tiny fixture pack (tests/fixtures/preview_pack, always a subprocess, as the engine runs it); a few
run the real program and pack."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc

from tools.mocks import SECRET_PLACEHOLDER, load_stack_config
from tools.preview import cli
from tools.preview.analyzer import EngineServer, PolicyPackError, _schema_errors, load_policy_config, to_wire
from tools.preview.cost import find_cost_model
from tools.preview.render import Style, render, tree_rows

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PROGRAM = FIXTURES / "preview_program"
PACK = FIXTURES / "preview_pack"
BROKEN = ROOT / "tests" / "broken_program"
SG_URN = "urn:pulumi:test::tiny::tiny:index:Web$aws:ec2/securityGroup:SecurityGroup::web-sg"


def preview(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def tiny(stack: str = "test", *extra: str) -> tuple[int, str, str]:
    return preview("--stack", stack, "--cwd", str(PROGRAM), *extra)


# --- arguments -------------------------------------------------------------------------------


def test_packs_and_configs_pair_up_in_order():
    args = cli.parse_args(["--stack", "s", "--policy-pack", "a", "--policy-pack", "b",
                           "--policy-pack-config", "a.json", "--policy-pack-config", "b.json"])  # fmt: skip
    assert cli.pack_pairs(args) == [(Path("a"), Path("a.json")), (Path("b"), Path("b.json"))]
    only_packs = cli.parse_args(["--stack", "s", "--policy-pack", "a", "--policy-pack", "b"])
    assert cli.pack_pairs(only_packs) == [(Path("a"), None), (Path("b"), None)]
    defaults = cli.parse_args(["--stack", "s"])
    assert cli.pack_pairs(defaults) == [] and Path(defaults.cwd) == ROOT and not defaults.json


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
    assert (doc["project"], doc["stack"]) == ("tiny", "test")
    assert doc["policyPacks"] == [] and doc["violations"] == [] and "cost" not in doc
    for r in doc["resources"]:
        assert set(r) == {"urn", "type", "name", "parent", "custom", "inputs"}
    types = {r["type"]: r for r in doc["resources"]}
    assert types["pulumi:pulumi:Stack"]["custom"] is False and types["aws:s3/bucket:Bucket"]["custom"] is True
    # ints arrive from the SDK as doubles; the document shows them as the program wrote them
    assert types["aws:ec2/securityGroup:SecurityGroup"]["inputs"]["ingress"][0]["fromPort"] == 443
    assert doc["outputs"]["groupId"].startswith("sg-")
    assert set(doc["timings"]) >= {"program", "total"}


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


def test_an_invoke_the_mocks_cannot_answer_exits_2_naming_it():
    code, _, err = tiny("lookup", "--policy-pack", str(PACK))
    assert code == 2
    assert "aws:ec2/getInstance:getInstance" in err


def test_a_pack_that_cannot_start_exits_2_with_its_error(tmp_path):
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "__main__.py").write_text("import no_such_policy_module\n")
    code, _, err = tiny("test", "--policy-pack", str(tmp_path))
    assert code == 2
    assert "failed to start" in err and "no_such_policy_module" in err
    code, _, err = tiny("test", "--policy-pack", str(tmp_path / "missing"))
    assert code == 2 and "no PulumiPolicy.yaml" in err


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
    assert doc["outputs"]["apiKey"] == "[secret]"
    assert SECRET_PLACEHOLDER not in out
    # the pack receives the value wrapped as a secret, as the engine marshals it (KeepSecrets)
    wire = to_wire(
        {"s": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "x"}}
    )
    assert wire["s"]["value"] == "x" and wire["s"]["4dabf18193072939515e22adb298388d"]


# --- human output ------------------------------------------------------------------------------


def _res(urn: str, typ: str, parent: str = "") -> dict:
    return {"urn": urn, "type": typ, "name": urn, "parent": parent, "custom": True, "inputs": {}}


def test_the_tree_nests_children_under_their_parents():
    resources = [_res("stack", "pulumi:pulumi:Stack"), _res("net", "x:index:Net", "stack"),
                 _res("vpc", "aws:ec2/vpc:Vpc", "net"), _res("sg", "aws:ec2/securityGroup:SecurityGroup", "net"),
                 _res("key", "aws:kms/key:Key", "stack")]  # fmt: skip
    rows = [(prefix, r["urn"]) for prefix, r in tree_rows(resources)]
    assert rows == [("", "stack"), ("├─ ", "net"), ("│  ├─ ", "vpc"), ("│  └─ ", "sg"), ("└─ ", "key")]


def test_the_report_draws_tree_counts_violations_by_level_and_cost_in_plain_text():
    code, out, _ = tiny("test", "--policy-pack", str(PACK))
    assert code == 1
    assert "\033[" not in out  # not a terminal: no colour
    lines = out.splitlines()
    assert any(
        line.startswith(" +   ├─ tiny:index:Web") and line.split()[-2:] == ["web", "create"] for line in lines
    )
    # nested one level below the component (its position among the siblings follows registration)
    assert any(
        line.startswith((" +   │  ├─ aws:ec2/securityGroup", " +   │  └─ aws:ec2/securityGroup"))
        for line in lines
    )
    assert "    + 7 to create" in lines
    mandatory, advisory = out.index("mandatory (1)"), out.index("advisory (2)")
    assert mandatory < out.index("no-world-ingress") < advisory < out.index("bucket-versioning")
    assert "(aws:ec2/securityGroup:SecurityGroup: web-sg)" in out
    assert out.index("Resources:") < mandatory < out.index("Estimated monthly cost (USD, eu-west-1)")
    assert "Preview failed: 1 mandatory policy violation" in out


def test_colour_only_for_terminals():
    doc = {"project": "p", "stack": "s", "resources": [_res("a", "t")], "outputs": {},
           "policyPacks": [], "violations": []}  # fmt: skip
    assert "\033[32m+\033[0m" in render(doc, Style(True))
    assert "\033[" not in render(doc, Style(False))


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


def _real(stack: str, cwd: Path = ROOT, config: str = "dev") -> tuple[int, dict, str]:
    pack = ROOT / "policies"
    code, out, err = preview("--stack", stack, "--cwd", str(cwd), "--json", "--policy-pack", str(pack),
                             "--policy-pack-config", str(pack / "config" / f"{config}.json"))  # fmt: skip
    return code, (json.loads(out) if out else {}), err


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_real_stacks_pass_their_policy_config_with_a_cost_summary(stack):
    code, doc, err = _real(stack, config=stack)
    mandatory = [(v["policyName"], v["urn"], v["message"]) for v in doc.get("violations", [])
                 if v["enforcementLevel"] == "mandatory"]  # fmt: skip
    assert code == 0, mandatory or err
    assert doc["cost"]["baselineMonthly"] > 0 and doc["cost"]["currency"] == "USD"
    # awsx's Vpc is opaque under mocks: the pack still sees the NAT strategy it is built with
    vpc = next(r for r in doc["resources"] if r["type"] == "awsx:ec2:Vpc")
    nat = next(i for i in doc["cost"]["items"] if i["urn"] == vpc["urn"])
    assert ("strategy Single" if stack == "dev" else "strategy OnePerAz") in nat["detail"]


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
