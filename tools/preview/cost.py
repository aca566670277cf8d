"""The monthly cost summary, from the policy pack's own cost model.

Hook: a pack that ships a package ``<pack>/<pkg>/cost_model/`` (or ``<pack>/cost_model/``)
exporting ``estimate(resources, usage=..., region=...)`` gets it used. The model runs in a
subprocess of the pack's interpreter with the pack directory as working directory (the preview
never imports pack code), is started early at low priority so its imports overlap the program
run without slowing it, prices the stack while the packs run AnalyzeStack, and receives the
resources on stdin as mappings ``{type, name, urn, outputs, parent, dependencies,
propertyDependencies, protect}``: the very resources of the AnalyzeStack request the pack gets,
their properties as pulumi_policy hands them to a policy (secrets unwrapped, values unknown before
deployment kept as pulumi_policy's unknown sentinels), so the model need not import pulumi_policy. Its answer (an object with ``to_dict()`` or a mapping)
must hold ``currency, baselineMonthly, peakMonthly, items, unpriced``. Usage assumptions and the
price region come from the config of the pack's ``cost-ceiling`` policy (``usage``, ``region``),
so the summary and the ceiling policy's verdict are one computation over one input; the region
defaults to the stack's ``aws:region``.

Two more functions are optional, used in the same process over the same estimate:
``advise(resources, usage=..., region=..., base=<the estimate>)`` returns the levers that lower
the bill (each with ``to_dict()`` or a mapping holding ``title, baselineSavingMonthly,
peakSavingMonthly, tradeOff, resources``), asked for always (``--cost-advice``) or only when a
total is above its ceiling; ``compare(before, after)`` returns the cost of a change between an
earlier preview's JSON document and this estimate (``--cost-baseline``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .analyzer import PolicyConfig

COST_POLICY = "cost-ceiling"

_SCRIPT = """
import gc, importlib, json, os, sys
gc.disable()  # a one-shot process, as the preview's own (see tools/preview/__main__.py)
# Imported while the program runs, but only on CPU the program and the packs leave idle; once
# the estimate is asked for, the program is done and there is a core to spare.
if hasattr(os, "nice"):
    os.nice(10)
sys.path.insert(0, ".")
model = importlib.import_module(sys.argv[1])
request = json.loads(sys.stdin.read())
usage, region = request.get("usage") or None, request["region"]
est = model.estimate(request["resources"], usage=usage, region=region)
def plain(x):
    return x.to_dict() if hasattr(x, "to_dict") else dict(x)
def needed(name, option):
    if not hasattr(model, name):
        sys.exit(f"{option} needs {name}() in the cost model, and {sys.argv[1]} has none")
    return getattr(model, name)
out = plain(est)
out.pop("advice", None)
over = any(
    isinstance(out.get(key), (int, float)) and out[key] > cap for key, cap in request["ceilings"].items()
)
advise = needed("advise", "--cost-advice") if request["advice"] == "always" else getattr(model, "advise", None)
if advise is not None and (request["advice"] == "always" or over):
    out["advice"] = [plain(lever) for lever in advise(request["resources"], usage=usage, region=region, base=est)]
if request["before"] is not None:
    out["change"] = needed("compare", "--cost-baseline")(request["before"], out)
sys.stdout.write(json.dumps(out))
"""

# When the levers are computed: on request, or only when a total is above its ceiling.
ADVICE_ALWAYS, ADVICE_OVER_CEILING = "always", "over-ceiling"

REQUIRED_KEYS = ("currency", "baselineMonthly", "peakMonthly", "items", "unpriced")

# How the property wire format marks a secret: pulumi_policy.deserialize's SPECIAL_SIG_KEY and
# SPECIAL_SECRET_SIG (a test holds them equal).
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def policy_view(value: Any) -> Any:
    """A property of an AnalyzeStack request as pulumi_policy's ``deserialize_properties`` gives it
    to a policy: secrets unwrapped, unknown sentinels kept. Assets and archives stay their wire
    mappings (the SDK would make ``pulumi.Asset`` objects of them; no cost model prices them)."""
    if isinstance(value, list):
        return [policy_view(v) for v in value]
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return policy_view(value["value"])
        return {k: policy_view(v) for k, v in value.items()}
    return value


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

    def estimate(
        self,
        resources: Sequence[Mapping[str, Any]],
        usage: Any,
        region: str,
        ceilings: Mapping[str, float] | None = None,
        advice: str = ADVICE_OVER_CEILING,
        before: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The estimate; with ``advice`` (ADVICE_ALWAYS, or ADVICE_OVER_CEILING when a total of
        ``ceilings``, keyed baselineMonthly/peakMonthly, is above its cap) its levers under
        "advice", and with ``before`` (an earlier preview's document) the change under "change"."""
        request = json.dumps(
            {
                "resources": [
                    {k: v for k, v in r.items() if k != "properties"}
                    | {"outputs": policy_view(r["properties"])}
                    for r in resources
                ],
                "usage": usage,
                "region": region,
                "ceilings": dict(ceilings or {}),
                "advice": advice,
                "before": before,
            }
        )
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


# --- --cost-advice and --cost-baseline -------------------------------------------------------

INCREASE_POLICY = "cost-increase-ceiling"


class CostBaselineError(Exception):
    """The --cost-baseline file is not an earlier preview's JSON document of this stack."""


def add_cost_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cost-advice",
        action="store_true",
        help="list the levers that lower this stack's bill, each with its monthly saving computed by the "
        "pack's cost model and its trade-off (shown without the flag when a total is above its ceiling); "
        "exit 2 when no pack ships a cost model that advises",
    )
    parser.add_argument(
        "--cost-baseline",
        metavar="FILE",
        help="an earlier --json output of this stack's preview: print the cost difference per resource and "
        "in total, and give its totals to the pack's cost-increase-ceiling policy as the recorded bill",
    )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_cost_baseline(path: Path, project: str, stack: str) -> dict[str, Any]:
    """The "cost" object of an earlier ``--json`` document of the same project and stack.
    Raises CostBaselineError saying what is wrong with the file."""
    where = f"cost baseline {path}"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CostBaselineError(f"{where}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CostBaselineError(f"{where}: not valid JSON ({exc})") from None
    cost = doc.get("cost") if isinstance(doc, dict) else None
    if not isinstance(cost, dict):
        raise CostBaselineError(f"{where}: not a --json document of the preview with a cost estimate")
    if (doc.get("project"), doc.get("stack")) != (project, stack):
        raise CostBaselineError(
            f"{where}: previews stack {doc.get('stack')!r} of project {doc.get('project')!r}, "
            f"not stack {stack!r} of {project!r}"
        )
    problems = [
        f"cost.{k} is not a number" for k in ("baselineMonthly", "peakMonthly") if not _number(cost.get(k))
    ]
    items = cost.get("items")
    if not isinstance(items, list):
        problems.append("cost.items is not a list")
    else:
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("urn"), str):
                problems.append(f"cost.items[{i}] has no urn")
            elif not (_number(item.get("baselineMonthly")) and _number(item.get("peakMonthly"))):
                problems.append(f"cost.items[{i}] ({item['urn']}) has no baselineMonthly/peakMonthly numbers")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CostBaselineError(f"{where}: {problems[0]}{more}")
    return cost


def with_recorded_bill(
    file_config: Mapping[str, PolicyConfig], before: Mapping[str, Any]
) -> dict[str, PolicyConfig]:
    """The pack config with ``before``'s totals as cost-increase-ceiling's recorded bill (over any
    recorded in the file: the command line names the bill to compare with). Its price region and
    usage default to cost-ceiling's, so the increase is judged on the estimate the report shows.
    The policy's limit (maxIncreaseUsd) and level stay the config's: without a limit it does not
    apply."""
    config = dict(file_config)
    current = config.get(INCREASE_POLICY) or PolicyConfig(None, {})
    pricing = (config.get(COST_POLICY) or PolicyConfig(None, {})).properties
    props = {k: pricing[k] for k in ("region", "usage") if k in pricing} | current.properties
    props |= {
        "baselineMonthlyUsd": before["baselineMonthly"],
        "baselinePeakMonthlyUsd": before["peakMonthly"],
    }
    config[INCREASE_POLICY] = PolicyConfig(current.level, props)
    return config


def sorted_advice(levers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Levers by baseline saving, then peak saving, then title: the same order for the same stack
    whatever order the model answers in."""
    return sorted(
        (dict(lever) for lever in levers),
        key=lambda lv: (
            -float(lv.get("baselineSavingMonthly") or 0),
            -float(lv.get("peakSavingMonthly") or 0),
            str(lv.get("title")),
        ),
    )
