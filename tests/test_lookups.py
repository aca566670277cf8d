"""Lookups public example programs make, answered by the offline preview as the engine would
answer them for an existing stack (or left unknown where nothing offline can know them), on a
program of our own: tests/fixtures/preview_lookups."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from tools.preview import cli

ROOT = Path(__file__).resolve().parent.parent
LOOKUPS = ROOT / "tests" / "fixtures" / "preview_lookups"
REGISTRY = "123456789012.dkr.ecr.us-east-2.amazonaws.com"
DIGEST = r"@sha256:[0-9a-f]{64}"


def preview_json(*extra: str) -> tuple[int, dict]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["--stack", "dev", "--cwd", str(LOOKUPS), "--json", *extra], stdout=out, stderr=err)
    assert code != 2, err.getvalue()
    return code, json.loads(out.getvalue())


def inputs_of(doc: dict, name: str) -> dict:
    return next(r["inputs"] for r in doc["resources"] if r["name"] == name)


def test_the_lookups_public_programs_make_are_answered_and_listed_as_stand_ins():
    code, doc = preview_json()
    assert code == 0
    stand_ins = {s["invoke"]: s for s in doc["standIns"]}
    table = stand_ins["aws:ec2/getRouteTable:getRouteTable"]["example"].removeprefix("id ")
    # The route the program adds goes into the route table the lookup answered.
    assert table.startswith("rtb-")
    assert inputs_of(doc, "to-peer")["routeTableId"] == table == doc["outputs"]["routeTableId"]["value"]
    assert doc["outputs"]["routeTableId"]["status"] == "mock-supplied"
    # Registry credentials for the stack's own repository: the account's registry, user AWS, the
    # password a placeholder; both the current and the older call.
    assert "aws:ecr/getAuthorizationToken:getAuthorizationToken" in stand_ins
    assert "aws:ecr/getCredentials:getCredentials" in stand_ins
    for registry in (inputs_of(doc, "image")["registry"], inputs_of(doc, "built")["registries"][0]):
        assert registry.get("server", registry.get("address")) == f"https://{REGISTRY}"
        assert registry["username"] == "AWS"


def test_an_existing_stacks_images_are_pinned_by_digest_in_container_definitions():
    _, doc = preview_json()
    images = [c["image"] for c in json.loads(inputs_of(doc, "app")["containerDefinitions"])]
    # docker.Image's repoDigest: the repository without the tag, at the digest; docker-build's
    # ref: the pushed tag at the digest.
    assert re.fullmatch(rf"{REGISTRY}/repo-[0-9a-f]{{7}}{DIGEST}", images[0])
    assert re.fullmatch(rf"{REGISTRY}/repo-[0-9a-f]{{7}}:v2{DIGEST}", images[1])


def test_another_stacks_outputs_stay_unknown_and_say_so():
    for mode in ((), ("--new-stack",)):
        _, doc = preview_json(*mode)
        assert doc["outputs"]["team"]["status"] == "unknown"
        assert inputs_of(doc, "vpc")["tags"] == {"team": "output<string>"}
        reference = next(s for s in doc["standIns"] if s["invoke"] == "read pulumi:pulumi:StackReference")
        assert reference["example"] == "outputs output<string>"


def test_a_new_stack_makes_no_lookup_whose_arguments_are_unknown():
    _, doc = preview_json("--new-stack")
    assert [s["invoke"] for s in doc["standIns"]] == ["read pulumi:pulumi:StackReference"]
    assert inputs_of(doc, "to-peer")["routeTableId"] == "output<string>"
    assert inputs_of(doc, "app")["containerDefinitions"] == "output<string>"


@pytest.mark.parametrize(("mode", "image_pinned"), [((), "passes"), (("--new-stack",), "undecided")])
def test_the_pack_judges_pinned_images_on_an_update_and_cannot_on_a_new_stack(mode, image_pinned):
    _, doc = preview_json("--policy-pack", "policies", *mode)
    violated = {v["policyName"] for v in doc["violations"]}
    undecided = set(doc["undecided"]["byPolicy"])
    assert "image-pinned" not in violated
    assert ("image-pinned" in undecided) == (image_pinned == "undecided")
