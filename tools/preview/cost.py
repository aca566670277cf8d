"""The monthly cost summary, from the policy pack's own cost model.

Hook: a pack that ships a package ``<pack>/<pkg>/cost_model/`` (or ``<pack>/cost_model/``)
exporting ``estimate(resources, usage=..., region=...)`` gets it used. The model runs in a
subprocess of the pack's interpreter with the pack directory as working directory (the preview
never imports pack code), is started early so its imports overlap the program run, and receives
the resources on stdin as mappings ``{type, name, urn, outputs, parent, dependencies,
propertyDependencies, protect}``: the very resources of the AnalyzeStack request the pack gets,
their properties read by pulumi_policy as the pack reads them (values unknown before deployment
stay pulumi_policy's unknown sentinels). Its answer (an object with ``to_dict()`` or a mapping)
must hold ``currency, baselineMonthly, peakMonthly, items, unpriced``. Usage assumptions and the
price region come from the config of the pack's ``cost-ceiling`` policy (``usage``, ``region``),
so the summary and the ceiling policy's verdict are one computation over one input; the region
defaults to the stack's ``aws:region``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

COST_POLICY = "cost-ceiling"

_SCRIPT = """
import importlib, json, sys
from pulumi_policy.deserialize import deserialize_properties
sys.path.insert(0, ".")
model = importlib.import_module(sys.argv[1])
request = json.loads(sys.stdin.read())
for r in request["resources"]:
    r["outputs"] = deserialize_properties(r.pop("properties"))
est = model.estimate(request["resources"], usage=request.get("usage") or None, region=request["region"])
out = est.to_dict() if hasattr(est, "to_dict") else dict(est)
sys.stdout.write(json.dumps(out))
"""

REQUIRED_KEYS = ("currency", "baselineMonthly", "peakMonthly", "items", "unpriced")


class CostModelError(Exception):
    """The pack's cost model failed or answered something else than a cost summary."""


def find_cost_model(pack: Path) -> str | None:
    """The importable module name of the pack's cost model, or None."""
    if (pack / "cost_model" / "__init__.py").is_file():
        return "cost_model"
    for init in sorted(pack.glob("*/cost_model/__init__.py")):
        return f"{init.parent.parent.name}.cost_model"
    return None


class CostModel:
    """The pack's cost model in its own process (spawned early, fed once)."""

    def __init__(self, pack: Path, module: str, env: Mapping[str, str], python: str | None = None):
        self.pack = pack
        self.module = module
        self._proc = subprocess.Popen(
            [python or sys.executable, "-c", _SCRIPT, module],
            cwd=pack,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def estimate(self, resources: Sequence[Mapping[str, Any]], usage: Any, region: str) -> dict[str, Any]:
        request = json.dumps({"resources": list(resources), "usage": usage, "region": region})
        try:
            out, err = self._proc.communicate(request.encode(), timeout=60)
        except subprocess.TimeoutExpired:
            self.stop()
            raise CostModelError(f"cost model {self.module} took more than 60 s") from None
        if self._proc.returncode != 0:
            tail = "\n".join(err.decode(errors="replace").strip().splitlines()[-8:])
            raise CostModelError(f"cost model {self.module} failed:\n{tail}")
        try:
            result = json.loads(out)
        except ValueError:
            raise CostModelError(f"cost model {self.module} printed no JSON") from None
        missing = [k for k in REQUIRED_KEYS if not isinstance(result, dict) or k not in result]
        if missing:
            raise CostModelError(f"cost model {self.module} answer lacks {', '.join(missing)}")
        return result

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
