"""Helpers that build pulumi_policy's own argument types, the way the analyzer does."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

PACK_DIR = Path(__file__).resolve().parents[2] / "policies"
if str(PACK_DIR) not in sys.path:
    sys.path.insert(0, str(PACK_DIR))

from pulumi_policy import (  # noqa: E402
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy  # noqa: E402

UNKNOWN = UNKNOWN_STRING_VALUE


def urn(typ: str, name: str) -> str:
    return f"urn:pulumi:test::wwhd::{typ}::{name}"


def options(protect: bool = False, parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)


def check_resource(
    policy: ResourceValidationPolicy,
    typ: str,
    props: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    name: str = "res",
    protect: bool = False,
) -> list[str]:
    """Run a resource policy as the analyzer does (props behind the unknown-checking proxy);
    returns the reported messages, undecided ones ("undecided [...]") included. With the
    config {"undecided": "advisory"} an undecided check raises UnknownValueError instead."""
    messages: list[str] = []
    args = ResourceValidationArgs(
        typ,
        unknown_checking_proxy(dict(props)),
        urn(typ, name),
        name,
        options(protect),
        None,
        dict(config) if config is not None else None,
    )
    policy.validate(args, lambda msg, _urn=None: messages.append(msg))
    return messages


def iam_document_findings(typ: str, props: Mapping[str, Any]) -> dict[str, list[str]]:
    """What the pack's IAM document policies (no wildcard actions, justified wildcard resources,
    no privilege escalation) report on one policy-bearing resource, by policy name; a document
    that passes them all gives ``{}``."""
    from wwhd_policies import security

    policies = (security.iam_no_wildcard_actions, security.iam_wildcard_resource_justified,
                security.iam_no_privilege_escalation)  # fmt: skip
    return {p.name: found for p in policies if (found := check_resource(p, typ, props))}


class R:
    """A stack resource spec; `parent`, `deps` and `prop_deps` name other resources by name."""

    def __init__(
        self,
        typ: str,
        name: str,
        props: Mapping[str, Any] | None = None,
        parent: str | None = None,
        deps: Sequence[str] = (),
        prop_deps: Mapping[str, Sequence[str]] | None = None,
        protect: bool = False,
    ) -> None:
        self.typ, self.name, self.props = typ, name, dict(props or {})
        self.parent, self.deps, self.protect = parent, list(deps), protect
        self.prop_deps: dict[str, Sequence[str]] = dict(prop_deps or {})

    @classmethod
    def referencing(cls, typ: str, name: str, props: Mapping[str, Any] | None = None, **refs: str) -> R:
        """A resource whose reference properties (`refs`: property -> resource name) are unknown
        before creation and depend on those resources, as on a stack that does not exist yet."""
        unknown = dict.fromkeys(refs, UNKNOWN)
        return cls(typ, name, {**(props or {}), **unknown}, prop_deps={k: [v] for k, v in refs.items()})


def build_stack(specs: Sequence[R]) -> list[PolicyResource]:
    by_name: dict[str, PolicyResource] = {}
    for s in specs:
        by_name[s.name] = PolicyResource(
            s.typ,
            unknown_checking_proxy(dict(s.props)),
            urn(s.typ, s.name),
            s.name,
            options(s.protect),
            None,
            None,
            [],
            {},
        )
    for s in specs:
        r = by_name[s.name]
        if s.parent:
            r.parent = by_name[s.parent]
            r.opts.parent = r.parent.urn
        r.dependencies = [by_name[d] for d in s.deps]
        r.property_dependencies = {k: [by_name[d] for d in v] for k, v in s.prop_deps.items()}
    return list(by_name.values())


def check_stack(
    policy: StackValidationPolicy, specs: Sequence[R], config: Mapping[str, Any] | None = None
) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    args = StackValidationArgs(build_stack(specs), dict(config) if config is not None else None)
    policy.validate(args, lambda msg, u=None: found.append((msg, u)))
    return found


@pytest.fixture
def stack_named(monkeypatch: pytest.MonkeyPatch):
    def set_name(name: str) -> None:
        monkeypatch.setenv("PULUMI_STACK", name)

    return set_name


@pytest.fixture(scope="session")
def pack():
    """The real pack process, started once per test session (per xdist worker) and reconfigured
    by each run: see grpc_pack.GrpcPack."""
    from .grpc_pack import GrpcPack, start_pack

    process = start_pack()
    try:
        yield GrpcPack(process)
    finally:
        process.stop()
