"""The policy pack as the engine drives it, for tests: one pack process per test session, spoken to
over the Analyzer gRPC interface by the offline preview's own client (spawn, Handshake,
GetAnalyzerInfo, Configure, Analyze for each resource's inputs, AnalyzeStack with outputs, parents
and dependencies). Each run reconfigures the same process: the policies under test at the
requested level and config, every other policy disabled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tools.preview.analyzer import AnalyzedResource, Diagnostic, PolicyConfig, PolicyPack, StackContext

from .conftest import PACK_DIR, R, urn

UNDECIDED = "undecided ["
STACK = "prod"  # PULUMI_STACK of the pack process


@dataclass(frozen=True)
class Found:
    """One diagnostic, with the policy's description line taken off the message."""

    policy: str
    level: str  # "mandatory" | "advisory"
    text: str
    urn: str

    @property
    def undecided(self) -> bool:
        """Reported through the undecided contract at the policy's level."""
        return self.text.startswith(UNDECIDED)

    @property
    def cannot_run(self) -> bool:
        """The SDK's advisory "can't run policy ... during preview" (an UnknownValueError)."""
        return self.text.startswith("can't run policy")

    @property
    def name(self) -> str:
        """The resource name the diagnostic points at ("" for a stack-wide one)."""
        return self.urn.rsplit("::", 1)[-1] if self.urn else ""


def _found(d: Diagnostic) -> Found:
    # Violations arrive as "<description>\n<message>"; the SDK's own advisory has no description line.
    text = d.message
    if d.description and text.startswith(d.description + "\n"):
        text = text[len(d.description) + 1 :]
    return Found(d.policy_name, d.enforcement_level, text, d.urn)


def analyzed(specs: Sequence[R]) -> list[AnalyzedResource]:
    """The specs as the engine hands resources to analyzers: names resolved to URNs; the props are
    both the inputs (Analyze) and the outputs (AnalyzeStack), as on a stack previewed before creation."""
    urns = {s.name: urn(s.typ, s.name) for s in specs}
    return [
        AnalyzedResource(
            urn=urns[s.name],
            type=s.typ,
            name=s.name,
            inputs=s.props,
            outputs=s.props,
            parent=urns[s.parent] if s.parent else "",
            dependencies=[urns[d] for d in s.deps],
            property_dependencies={k: [urns[d] for d in v] for k, v in s.prop_deps.items()},
            protect=s.protect,
        )
        for s in specs
    ]


class GrpcPack:
    """A started pack; :meth:`run` analyzes resources under a policy config."""

    def __init__(self, pack: PolicyPack) -> None:
        self.pack = pack
        # Connected without a config file: every policy at its coded level.
        self.coded = {p.name: p.level for p in pack.policies}

    def configure(self, configs: Mapping[str, PolicyConfig]) -> None:
        self.pack.configure(configs)

    def run(
        self,
        policy: str,
        specs: Sequence[R],
        config: Mapping[str, Any] | None = None,
        level: str | None = None,
    ) -> list[Found]:
        """Analyze and AnalyzeStack `specs` with only `policy` enabled (its coded level unless
        `level` is given, its properties from `config`); that policy's diagnostics."""
        if policy not in self.coded:
            raise AssertionError(f"the pack has no policy named {policy}")
        self.configure(
            {
                "all": PolicyConfig("disabled", {}),
                policy: PolicyConfig(level or self.coded[policy], dict(config or {})),
            }
        )
        resources = analyzed(specs)
        found = self.pack.analyze(resources) + self.pack.analyze_stack(resources)
        return [_found(d) for d in found if d.policy_name == policy]

    def run_all(self, specs: Sequence[R], configs: Mapping[str, PolicyConfig]) -> list[Found]:
        """Every policy, configured as a --policy-pack-config file would configure it."""
        self.configure(configs)
        resources = analyzed(specs)
        return [_found(d) for d in self.pack.analyze(resources) + self.pack.analyze_stack(resources)]


def start_pack() -> PolicyPack:
    context = StackContext(project="wwhd", stack=STACK, config={"aws:region": "us-west-2"})
    # The Python policy host never dials the engine address; a closed local port stands in.
    pack = PolicyPack(PACK_DIR, context, "127.0.0.1:1")
    pack.spawn()
    pack.connect({})
    return pack
