"""Command line of the offline preview (see the package docstring)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any, TextIO, TypeVar

from . import program
from .analyzer import (
    EngineServer,
    IncrementalAnalysis,
    PolicyConfig,
    PolicyPack,
    PolicyPackError,
    StackContext,
    load_policy_config,
    stack_request,
    stack_view,
)
from .cost import (
    ADVICE_ALWAYS,
    ADVICE_OVER_CEILING,
    COST_POLICY,
    CostBaselineError,
    CostModel,
    CostModelError,
    add_cost_arguments,
    find_cost_model,
    load_cost_baseline,
    sorted_advice,
    with_recorded_bill,
)
from .render import REPORT_WIDTH, Style, failed, render

ROOT = Path(__file__).resolve().parents[2]
_T = TypeVar("_T")

EXIT_OK, EXIT_VIOLATIONS, EXIT_ERROR = 0, 1, 2
# A helper process per pack only where a second core can run it (see IncrementalAnalysis).
HELPERS = (os.cpu_count() or 1) > 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.preview",
        description="Offline preview of a Pulumi Python stack: run the program under mocks, check it "
        "with policy packs over the Analyzer gRPC interface, estimate its monthly cost. No Pulumi CLI, "
        "no cloud credentials. Exit 0: no mandatory violation; 1: a mandatory violation or a mandatory check "
        "that could not decide; 2: the program, its configuration or a policy pack failed.",
    )
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument(
        "--cwd",
        default=str(ROOT),
        help="directory holding Pulumi.yaml and the program, as `pulumi --cwd` (default: the repository root)",
    )
    parser.add_argument(
        "--policy-pack",
        action="append",
        default=[],
        metavar="DIR",
        help="policy pack directory (repeatable); without it no policy runs",
    )
    parser.add_argument(
        "--policy-pack-config",
        action="append",
        default=[],
        metavar="FILE",
        help="JSON config for the policy pack in the same position (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the report")
    parser.add_argument(
        "--new-stack",
        action="store_true",
        help="preview the stack as if it did not exist yet: every output computed at creation is unknown, "
        "as the engine has it for a first deployment (default: an update of an existing stack)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=program.DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"stop (exit 2) when the program has not finished after this long, naming the resources "
        f"still pending; 0 waits forever (default: {program.DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument("--wide", action="store_true", help="full type names and lines, however long")
    parser.add_argument(
        "--by-type", action="store_true", help="count resources per type instead of per top-level component"
    )
    parser.add_argument(
        "--timings",
        action="store_true",
        help="print the time split on stderr and add it to the JSON document",
    )
    add_cost_arguments(parser)
    args = parser.parse_args(argv)
    if args.policy_pack_config and len(args.policy_pack_config) != len(args.policy_pack):
        parser.error(
            "the number of --policy-pack-config paths must match the number of --policy-pack paths "
            f"({len(args.policy_pack_config)} configs for {len(args.policy_pack)} packs)"
        )
    return args


def pack_pairs(args: argparse.Namespace) -> list[tuple[Path, Path | None]]:
    """Each --policy-pack with the --policy-pack-config at the same position (or none)."""
    configs: list[Path | None] = [Path(c) for c in args.policy_pack_config] or [None] * len(args.policy_pack)
    return [(Path(p), c) for p, c in zip(args.policy_pack, configs, strict=True)]


def _cost_settings(
    packs: Sequence[PolicyPack], stack_config: dict[str, str]
) -> tuple[Any, str, dict[str, Any]]:
    """Usage, price region and ceilings, from the cost-ceiling policy's config as the pack got it."""
    region = stack_config.get("aws:region") or "us-west-2"
    for pack in packs:
        for policy in pack.policies:
            if policy.name == COST_POLICY:
                cfg = policy.config
                ceilings = {
                    label: cfg[key]
                    for label, key in (
                        ("baselineMonthly", "maxMonthlyUsd"),
                        ("peakMonthly", "maxPeakMonthlyUsd"),
                    )
                    if isinstance(cfg.get(key), (int, float))
                }
                return cfg.get("usage"), str(cfg.get("region") or region), ceilings
    return None, region, {}


def _log_lines(pack: PolicyPack, helper: PolicyPack | None) -> list[str]:
    """What a pack wrote to stderr, then what its helper wrote that the pack did not (the helper
    runs the same code: its start-up output would repeat)."""
    lines = [line for line in pack.stderr if line.strip()]
    return lines + [line for line in (helper.stderr if helper else []) if line.strip() and line not in lines]


def _in_background(fn: Callable[..., _T], *args: Any) -> futures.Future[_T]:
    """``fn(*args)`` in a thread of its own. Nothing joins it: when the analysis fails first, the
    cost model's process is stopped, which ends the wait of the thread."""
    pool = futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)


def preview(args: argparse.Namespace, stderr: TextIO) -> tuple[dict[str, Any], list[str]]:
    """Run everything; returns the JSON document and the packs' log lines. Raises
    program.ProgramError / PolicyPackError / CostModelError for exit 2."""
    t0 = time.perf_counter()
    cwd = Path(args.cwd).resolve()
    files = program.load_files(cwd, args.stack)
    pairs = pack_pairs(args)
    file_configs: list[dict[str, PolicyConfig]] = [load_policy_config(c) if c else {} for _, c in pairs]
    # --cost-baseline: the earlier estimate, checked before anything runs, and its totals handed to
    # the pack as cost-increase-ceiling's recorded bill.
    before = (
        load_cost_baseline(Path(args.cost_baseline), files.project, args.stack)
        if args.cost_baseline
        else None
    )
    if before is not None:
        file_configs = [with_recorded_bill(cfg, before) for cfg in file_configs]
    context = StackContext(
        project=files.project,
        stack=args.stack,
        config=files.config,
        secret_keys=files.secret_keys,
        tags={"pulumi:project": files.project, "pulumi:runtime": "python"},
    )
    engine = EngineServer() if pairs else None
    packs: list[PolicyPack] = []
    helpers: list[PolicyPack | None] = []
    cost_model: CostModel | None = None
    timings: dict[str, float] = {}
    try:
        # Packs and the cost model start first: their imports overlap the program run. With a
        # second core, each pack gets a helper process (see IncrementalAnalysis), at low priority
        # so that its imports take only the CPU the program and the pack leave idle.
        for path, _ in pairs:
            assert engine is not None
            pack = PolicyPack(path, context, engine.address)
            packs.append(pack)
            pack.spawn()
        for pack in packs:
            helper = PolicyPack(pack.path, context, pack.engine_address) if HELPERS else None
            helpers.append(helper)
            if helper is not None:
                helper.spawn(niceness=10)
        for pack in packs:
            module = find_cost_model(pack.path)
            if module is not None:
                env = {
                    "PULUMI_CONFIG": json.dumps(files.config),
                    "PULUMI_STACK": args.stack,
                    "PULUMI_PROJECT": files.project,
                }
                cost_model = CostModel(pack.path, module, env)
                break
        if cost_model is None and (args.cost_advice or before is not None):
            option = "--cost-advice" if args.cost_advice else "--cost-baseline"
            raise CostModelError(
                f"{option} needs a policy pack that ships a cost model, and no --policy-pack does"
            )

        # The packs analyze each resource as soon as it is registered, while the program runs.
        analysis = IncrementalAnalysis(list(zip(packs, file_configs, helpers, strict=True)))
        t = time.perf_counter()
        with contextlib.redirect_stdout(stderr):  # a program's print() must not corrupt --json
            result = program.run(
                cwd,
                args.stack,
                files,
                new_stack=args.new_stack,
                timeout=args.timeout or None,
                on_resource=analysis.add,
            )
        timings["program"] = time.perf_counter() - t

        t = time.perf_counter()  # what analysis remains after the program: AnalyzeStack, mostly
        providers = {r.urn: r for r in result.resources if r.type.startswith("pulumi:providers:")}
        stack = stack_request(result.resources, providers)
        estimating: futures.Future[dict[str, Any]] | None = None
        if cost_model is not None:
            usage, region, ceilings = _cost_settings(analysis.connected(), files.config)
            # The resources exactly as the pack's AnalyzeStack gets them: the estimate and the
            # cost-ceiling verdict are one computation over one input. The model prices them in
            # its process while the packs analyze the stack in theirs.
            advice = ADVICE_ALWAYS if args.cost_advice else ADVICE_OVER_CEILING
            estimating = _in_background(
                cost_model.estimate, stack_view(stack), usage, region, ceilings, advice, before
            )
        diagnostics = analysis.finish(result.resources, stack)
        timings["policies"] = time.perf_counter() - t

        cost: dict[str, Any] | None = None
        if estimating is not None:
            t = time.perf_counter()  # the wait for the estimate once the packs are done
            cost = estimating.result()
            if ceilings:
                cost["ceiling"] = ceilings
            if "advice" in cost:
                cost["advice"] = sorted_advice(cost["advice"])
            timings["cost"] = time.perf_counter() - t
        logs = [f"{p.name}: {line}" for p, h in zip(packs, helpers, strict=True) for line in _log_lines(p, h)]
        if engine is not None:
            logs += [f"{level}: {message}" for level, message in engine.logs]
    finally:
        for pack in [*packs, *filter(None, helpers)]:
            pack.stop()
        if cost_model is not None:
            cost_model.stop()
        if engine is not None:
            engine.stop()
    timings["total"] = time.perf_counter() - t0

    undecided = [d for d in diagnostics if d.undecided_property is not None]
    doc: dict[str, Any] = {
        "project": files.project,
        "stack": args.stack,
        "mode": "new-stack" if args.new_stack else "update",
        "resources": [program.resource_json(result, r) for r in result.resources],
        "outputs": program.outputs_json(result),
        "standIns": program.stand_ins_json(result.mocks),
        "programLog": [{"level": level, "message": m} for level, m in result.run.monitor.log.messages],
        "policyPacks": [
            {
                "name": p.name,
                "version": p.version,
                "path": str(p.path),
                "policies": [{"name": i.name, "enforcementLevel": i.level} for i in p.policies],
            }
            for p in packs
        ],
        "violations": [d.to_json() for d in diagnostics if d.undecided_property is None],
        "undecided": {
            "total": len(undecided),
            "byPolicy": dict(sorted(Counter(d.policy_name for d in undecided).items())),
            "checks": [
                d.to_json() | {"property": d.undecided_property, "reason": d.reason} for d in undecided
            ],
        },
    }
    if cost is not None:
        doc["cost"] = cost
    if args.timings:
        doc["timings"] = {k: round(v, 3) for k, v in timings.items()}
    return doc, logs


def main(
    argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out: TextIO = stdout or sys.stdout
    err: TextIO = stderr or sys.stderr
    args = parse_args(argv)
    try:
        doc, logs = preview(args, err)
    except (program.ProgramError, PolicyPackError, CostModelError, CostBaselineError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_ERROR
    if args.json:
        json.dump(doc, out, indent=2)
        out.write("\n")
    else:
        color = out.isatty() and "NO_COLOR" not in os.environ
        width = None if args.wide else REPORT_WIDTH
        out.write(render(doc, Style(color), width=width, by_type=args.by_type, pack_logs=logs))
    if args.timings:
        split = ", ".join(f"{k} {v:.2f} s" for k, v in doc["timings"].items())
        print(f"timings: {split}", file=err)
    return EXIT_VIOLATIONS if failed(doc) else EXIT_OK
