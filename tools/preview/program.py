"""Run a Pulumi Python program offline and describe what it registers as the engine sees it."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc, settings
from pulumi.runtime.sync_await import _sync_await

from tools.mocks import ProgramRun, Registration, StackFiles, load_stack_config, run_program

from .analyzer import AnalyzedResource

SECRET_TEXT = "[secret]"
UNKNOWN_TEXT = "[unknown]"


class ProgramError(Exception):
    """The program or its configuration failed; str() is the message for stderr."""


@dataclass
class Preview:
    """A finished program run: resources in registration order, stack outputs, config."""

    files: StackFiles
    stack: str
    run: ProgramRun
    resources: list[AnalyzedResource]
    registrations: dict[str, Registration]
    outputs: dict[str, Any]

    @property
    def project(self) -> str:
        return self.files.project


def load_files(cwd: Path, stack: str) -> StackFiles:
    """Pulumi.yaml + Pulumi.<stack>.yaml, or ProgramError naming the file and problem."""
    try:
        return load_stack_config(cwd, stack)
    except ValueError as exc:
        raise ProgramError(str(exc)) from None


def provider_urn(reference: str) -> str:
    """A provider reference is ``<urn>::<id>``; the URN itself contains ``::``."""
    return reference.rsplit("::", 1)[0] if reference else ""


def run(cwd: Path, stack: str, files: StackFiles) -> Preview:
    """Run the program under the recording mocks. Configuration errors (``pulumi.RunError``, e.g.
    stack_config.ConfigError) and invokes the mocks cannot answer become ProgramError with their
    own message; anything else carries its traceback, as the language host would print it."""
    try:
        result = run_program(cwd, stack)
    except pulumi.RunError as exc:
        raise ProgramError(str(exc)) from None
    except NotImplementedError as exc:
        raise ProgramError(f"the program calls an invoke the offline preview cannot answer: {exc}") from None
    except Exception as exc:
        tb = "".join(traceback.format_exception(exc))
        raise ProgramError(f"the program failed with an unhandled exception:\n{tb}") from None
    monitor = result.monitor
    resources: list[AnalyzedResource] = []
    for reg in result.registrations:
        if reg.remote:
            outputs = _remote_component_view(reg)
        elif reg.custom:
            outputs = reg.outputs
        else:  # local components and the stack: what they passed to register_outputs
            outputs = monitor.outputs.get(reg.urn, {})
        resources.append(
            AnalyzedResource(
                urn=reg.urn,
                type=reg.type,
                name=reg.name,
                inputs=reg.inputs,
                outputs=outputs,
                parent=reg.parent,
                dependencies=list(dict.fromkeys(reg.dependencies)),
                property_dependencies=reg.property_dependencies,
                protect=reg.protect,
                provider_urn=provider_urn(reg.provider),
            )
        )
    outputs = _stack_outputs(result)
    for r in resources:
        if r.type == "pulumi:pulumi:Stack":
            r.outputs = outputs
    return Preview(
        files=files,
        stack=stack,
        run=result,
        resources=resources,
        registrations={r.urn: r for r in result.registrations},
        outputs=outputs,
    )


def _remote_component_view(reg: Registration) -> dict[str, Any]:
    """A remote component (awsx) is opaque under mocks: the engine would hand analyzers its
    children (NAT gateways, subnets, route tables), which the mocks cannot create and answer with
    empty lists. Stand-in: its inputs, the configuration those children are built from
    (natGateways.strategy, numberOfAvailabilityZones), under its non-empty outputs."""
    return {**reg.inputs, **{k: v for k, v in reg.outputs.items() if v != []}}


def _stack_outputs(result: ProgramRun) -> dict[str, Any]:
    """The exports, secret ones wrapped as secrets. A program run with runpy never reaches the
    SDK's own stack finalisation, so the root's export map is read directly."""
    root = settings.get_root_resource()
    exported = getattr(root, "outputs", {}) if root is not None else {}
    outputs: dict[str, Any] = {}
    for key, value in result.outputs.items():
        source = exported.get(key)
        secret = isinstance(source, pulumi.Output) and _sync_await(source.is_secret())
        outputs[key] = rpc.wrap_rpc_secret(value) if secret else value
    return outputs


def jsonable(value: Any, unwrap_secrets: bool = False) -> Any:
    """A recorded value as JSON: secrets shown as "[secret]" (or unwrapped for the cost model),
    unknowns as "[unknown]", whole floats as ints (the SDK sends every number as a double)."""
    if isinstance(value, dict):
        if rpc.is_rpc_secret(value):
            return jsonable(rpc.unwrap_rpc_secret(value), unwrap_secrets) if unwrap_secrets else SECRET_TEXT
        return {str(k): jsonable(v, unwrap_secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, unwrap_secrets) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, pulumi.output.Unknown):
        return UNKNOWN_TEXT
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        for attr in ("path", "text", "uri"):
            if hasattr(value, attr):
                return {attr: getattr(value, attr)}
    if isinstance(value, pulumi.Resource):
        from .analyzer import to_wire

        return to_wire(value)
    return str(value)
