"""What the preview does to be fast changes nothing it shows: a provider SDK imported by name gives
the very objects the full import gives. (Timings are ``make bench``'s business, never a test's.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
