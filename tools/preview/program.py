"""Run a Pulumi Python program offline and describe what it registers as the engine sees it."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc

from tools.mocks import (
    AWSX_VPC,
    STACK_TYPE,
    ProgramRun,
    ProgramTimeoutError,
    RecordingMocks,
    Registration,
    StackFiles,
    StackOutput,
    awsx_vpc_plan,
    is_unknown,
    load_stack_config,
    run_program,
)

from .analyzer import AnalyzedResource

SECRET_TEXT = "[secret]"
# How `pulumi preview` shows a value not known before deployment.
UNKNOWN_TEXT = "output<string>"
DEFAULT_TIMEOUT_S = 120.0
_PENDING_SHOWN = 10


class ProgramError(Exception):
    """The program or its configuration failed; str() is the message for stderr."""


@dataclass
class Preview:
    """A finished program run: resources in the order the program constructed them, stack
    outputs, config."""

    files: StackFiles
    stack: str
    new_stack: bool
    run: ProgramRun
    resources: list[AnalyzedResource]
    registrations: dict[str, Registration]

    @property
    def project(self) -> str:
        return self.files.project

    @property
    def mocks(self) -> RecordingMocks:
        return self.run.mocks


def load_files(cwd: Path, stack: str) -> StackFiles:
    """Pulumi.yaml + Pulumi.<stack>.yaml, or ProgramError naming the file and problem."""
    try:
        return load_stack_config(cwd, stack)
    except ValueError as exc:
        raise ProgramError(str(exc)) from None


def provider_urn(reference: str) -> str:
    """A provider reference is ``<urn>::<id>``; the URN itself contains ``::``."""
    return reference.rsplit("::", 1)[0] if reference else ""


def _unanswered(mocks: RecordingMocks) -> ProgramError | None:
    """One message for the invokes the mocks could not answer, each named once."""
    if not mocks.unanswered:
        return None
    first, reason = mocks.unanswered[0]
    others = sorted({token for token, _ in mocks.unanswered} - {first})
    also = f" (and also {', '.join(others)})" if others else ""
    detail = f": {reason}" if reason else ""
    return ProgramError(
        f"the program calls {first}, an invoke the offline preview cannot answer{detail}{also}"
    )


def _timed_out(exc: ProgramTimeoutError) -> ProgramError:
    if not exc.pending:
        return ProgramError(
            f"the program did not finish within {exc.seconds:g} s, with no resource waiting: "
            "an output or callback it awaits never resolves (raise --timeout if it is only slow)"
        )
    shown = [f"{typ} '{name}'" for typ, name in exc.pending[:_PENDING_SHOWN]]
    more = len(exc.pending) - len(shown)
    listing = "\n  ".join(shown) + (f"\n  ... and {more} more" if more > 0 else "")
    return ProgramError(
        f"the program did not finish within {exc.seconds:g} s; {len(exc.pending)} resource(s) still "
        f"wait for inputs that never resolve:\n  {listing}\n(raise --timeout if the program is only slow)"
    )


def run(
    cwd: Path,
    stack: str,
    files: StackFiles,
    new_stack: bool = False,
    timeout: float | None = None,
    on_resource: Callable[[AnalyzedResource], None] | None = None,
) -> Preview:
    """Run the program under the recording mocks (``new_stack``: as a stack that does not exist
    yet). Configuration errors (``pulumi.RunError``), invokes the mocks cannot answer and a
    program still running after ``timeout`` seconds become ProgramError with their own message;
    anything else carries its traceback, as the language host would print it. ``on_resource``
    gets each resource as soon as it is registered, with its checked inputs (what ``Analyze``
    reads); its outputs are final only in :attr:`Preview.resources`."""
    mocks = RecordingMocks(region=files.config.get("aws:region") or "us-west-2", new_stack=new_stack)
    on_register = None if on_resource is None else lambda reg: on_resource(_analyzed(reg, reg.outputs))
    try:
        result = run_program(cwd, stack, mocks=mocks, timeout=timeout, on_register=on_register)
    except ProgramTimeoutError as exc:
        raise _timed_out(exc) from None
    except Exception as exc:
        unanswered = _unanswered(mocks)
        if unanswered is not None:
            raise unanswered from None
        if isinstance(exc, pulumi.RunError):
            raise ProgramError(str(exc)) from None
        tb = "".join(traceback.format_exception(exc))
        raise ProgramError(f"the program failed with an unhandled exception:\n{tb}") from None
    unanswered = _unanswered(mocks)
    if unanswered is not None:
        raise unanswered
    monitor = result.monitor
    resources: list[AnalyzedResource] = []
    for reg in result.registrations:
        if reg.type == STACK_TYPE:
            outputs = _stack_view(result.stack_outputs)
        elif reg.remote:
            outputs = _remote_component_view(reg)
        elif reg.custom:
            outputs = reg.outputs
        else:  # local components: what they passed to register_outputs
            outputs = monitor.outputs.get(reg.urn, {})
        resources.append(_analyzed(reg, outputs))
    return Preview(
        files=files,
        stack=stack,
        new_stack=new_stack,
        run=result,
        resources=resources,
        registrations={r.urn: r for r in result.registrations},
    )


def _analyzed(reg: Registration, outputs: Mapping[str, Any]) -> AnalyzedResource:
    return AnalyzedResource(
        urn=reg.urn,
        type=reg.type,
        name=reg.name,
        inputs=reg.checked_inputs,
        outputs=outputs,
        parent=reg.parent,
        dependencies=reg.dependencies,
        property_dependencies=reg.property_dependencies,
        protect=reg.protect,
        provider_urn=provider_urn(reg.provider),
    )


def _remote_component_view(reg: Registration) -> dict[str, Any]:
    """A remote component (awsx) is opaque under mocks: the engine would hand analyzers its
    children (NAT gateways, subnets, route tables), which the mocks cannot create. Stand-in: its
    outputs, plus its inputs, the configuration those children are built from
    (natGateways.strategy, numberOfAvailabilityZones), wherever an output of the same name is
    empty (the children lists under mocks) or unknown (a new stack)."""
    view = dict(reg.outputs)
    for key, value in reg.inputs.items():
        if key not in view or view[key] == [] or is_unknown(view[key]):
            view[key] = value
    return view


def _stack_view(outputs: dict[str, StackOutput]) -> dict[str, Any]:
    """The stack's outputs as the engine records them: secrets wrapped, unknowns kept."""
    return {k: rpc.wrap_rpc_secret(o.value) if o.secret else o.value for k, o in outputs.items()}


def output_status(output: StackOutput, mocks: RecordingMocks) -> str:
    """``unknown`` (not known before deployment), ``mock-supplied`` (holds a value the mocks
    made up: an id, an ARN, a DNS name, an auto-name suffix, a stand-in answer) or ``known``."""
    if not output.known:
        return "unknown"
    return "mock-supplied" if mocks.is_invented(output.value) else "known"


def outputs_json(preview: Preview) -> dict[str, Any]:
    """Each export with its value (``output<string>`` when unknown), status and secrecy."""
    return {
        key: {
            "value": SECRET_TEXT if out.secret else jsonable(out.value) if out.known else UNKNOWN_TEXT,
            "status": output_status(out, preview.mocks),
            "secret": out.secret,
        }
        for key, out in sorted(preview.run.stack_outputs.items())
    }


def resource_json(preview: Preview, r: AnalyzedResource) -> dict[str, Any]:
    reg = preview.registrations[r.urn]
    doc: dict[str, Any] = {
        "urn": r.urn,
        "type": r.type,
        "name": r.name,
        "parent": r.parent,
        "custom": reg.custom,
        "inputs": jsonable(r.inputs),
    }
    if reg.remote:
        # The engine would show its children; offline they do not exist. For awsx's VPC they
        # follow from its inputs.
        doc["remote"] = True
        if reg.type == AWSX_VPC:
            doc["children"] = awsx_vpc_plan(reg.inputs).to_json()
    return doc


def stand_ins_json(mocks: RecordingMocks) -> list[dict[str, Any]]:
    """The invokes (and reads of existing resources) answered with made-up data."""
    keys = ("accountId", "value", "names", "ids", "imageId", "zoneId", "outputs", "id")
    found = []
    for token, answers in sorted(mocks.stand_ins.items()):
        first = answers[0]
        key = next((k for k in keys if first.get(k) not in (None, "", [])), None)
        found.append(
            {
                "invoke": token,
                "calls": len(answers),
                "example": f"{key} {jsonable(first[key])}" if key else "",
            }
        )
    return found


def jsonable(value: Any, unwrap_secrets: bool = False) -> Any:
    """A recorded value as JSON: secrets shown as "[secret]" (or unwrapped), unknowns as
    ``output<string>``, whole floats as ints (the SDK sends every number as a double)."""
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
    if is_unknown(value):
        return UNKNOWN_TEXT
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        for attr in ("path", "text", "uri"):
            if hasattr(value, attr):
                return {attr: getattr(value, attr)}
    return str(value)
