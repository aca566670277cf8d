"""How a policy is declared and what it reports: the decorators that turn a check into a
resource or stack policy (metadata from the check's docstring, schema defaults applied in code),
and the findings a check records (violations, and checks it cannot decide)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from ._util import (
    KNOWN_BEFORE_CREATION,
    LITERAL,
    Res,
    Stack,
    as_list,
    is_unknown,
    plain,
    stack_name,
    truthy,
)

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY


UNDECIDED_PREFIX = "undecided"
# The per-stack config property every policy accepts, and its two values.
UNDECIDED_OPTION = "undecided"
AT_POLICY_LEVEL = "policy-level"
AS_ADVISORY = "advisory"


def setting(
    description: str,
    default: Any = None,
    *,
    kind: str | None = None,
    items: str | None = None,
    enum: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One property of a policy's config schema (JSON Schema): of type `kind`, else the type of
    `default`; a list's items of type `items`, else the type of its first element. Without a
    default, the policy reads the property as absent."""
    kind = kind or _JSON_TYPES[type(default)]
    prop: dict[str, Any] = {"type": kind, "description": description}
    if kind == "array":
        prop["items"] = {"type": items or _JSON_TYPES[type(default[0])]}
    if enum is not None:
        prop["enum"] = list(enum)
    if default is not None:
        prop["default"] = default
    return prop


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}
UNDECIDED_SCHEMA = setting(
    "How a check this policy cannot decide is reported: 'policy-level' (a violation at the policy's own "
    "level, so a mandatory check stays mandatory) or 'advisory' (the SDK's advisory \"can't run policy\" "
    "diagnostic).",
    AT_POLICY_LEVEL,
    enum=[AT_POLICY_LEVEL, AS_ADVISORY],
)


class UndecidedError(UnknownValueError):
    """Raised, when the stack's config downgrades undecided checks to advisory, with every
    undecided message of the run (one per line): the SDK reports an UnknownValueError as one
    advisory diagnostic per policy."""

    def __init__(self, messages: Sequence[str]) -> None:
        super().__init__(UNKNOWN_STRING_VALUE, [])
        self.messages = list(messages)
        self.message = "\n".join(self.messages)

    def __str__(self) -> str:
        return self.message


@dataclass
class _Undecided:
    props: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    remedies: list[str] = field(default_factory=list)

    def message(self) -> str:
        return f"{UNDECIDED_PREFIX} [{', '.join(self.props)}]: " + "; ".join(self.reasons + self.remedies)


class Findings:
    """What one policy run found: definite violations and the checks it could not decide.

    Undecided checks are reported once per resource (the urn given, or None for the resource a
    resource policy judges), as `undecided [<properties>]: <resource>: <what could not be judged>;
    <what would make it decidable>`; the preview tool parses that prefix. In a resource policy the
    urns given are dropped, as the SDK drops them: every finding is about the judged resource."""

    def __init__(self, in_stack: bool = False) -> None:
        self.violations: list[tuple[str, str | None]] = []
        self._undecided: dict[str | None, _Undecided] = {}
        self._in_stack = in_stack

    def violation(self, message: str, urn: str | None = None) -> None:
        self.violations.append((message, urn if self._in_stack else None))

    def cannot_decide(
        self,
        reason: str,
        prop: str = "value",
        remedy: str = KNOWN_BEFORE_CREATION,
        urn: str | None = None,
    ) -> None:
        """Record a check that cannot be judged. `reason` starts with the resource label and says
        what could not be judged; `prop` names the unknown property; `remedy` what would make
        it decidable; `urn` the resource (stack policies), merged into one message per urn."""
        entry = self._undecided.setdefault(urn if self._in_stack else None, _Undecided())
        for items, value in ((entry.props, prop), (entry.reasons, reason), (entry.remedies, remedy)):
            if value and value not in items:
                items.append(value)

    def unknown(
        self,
        res: Res,
        prop: str,
        judged: str,
        *,
        subject: str | None = None,
        plural: bool = False,
        remedy: str = LITERAL,
    ) -> None:
        """The common undecided check: `<res>: <subject> is unknown before creation, so <judged>
        cannot be judged`. `subject` defaults to the property's name (`plural`: "are")."""
        verb = "are" if plural else "is"
        self.cannot_decide(
            f"{res.label()}: {subject or prop} {verb} unknown before creation, so {judged} cannot be judged",
            prop=prop,
            remedy=remedy,
            urn=res.urn,
        )

    def flag(self, res: Res, prop: str, judged: str, *, subject: str | None = None) -> bool | None:
        """The boolean `prop` of `res` (unset is false, as in the AWS APIs the rules read), or None
        when it is unknown before creation, recorded as undecided (`unknown`)."""
        value = res.get(prop)
        if is_unknown(value):
            self.unknown(res, prop, judged, subject=subject)
            return None
        return truthy(value)

    @property
    def undecided(self) -> list[tuple[str, str | None]]:
        """(message, urn) of each resource with undecided checks, in the order first seen."""
        return [(entry.message(), urn) for urn, entry in self._undecided.items()]

    def emit(self, report: ReportViolation, undecided_as_advisory: bool = False) -> None:
        for message, urn in self.violations:
            report(message, urn)
        undecided = self.undecided
        if not undecided:
            return
        if undecided_as_advisory:
            raise UndecidedError([message for message, _ in undecided])
        for message, urn in undecided:
            report(message, urn)


def config(args: ResourceValidationArgs | StackValidationArgs, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The policy's configuration with defaults applied (the pack applies none itself)."""
    merged = dict(defaults)
    merged.update(plain(args.get_config()) or {})
    return merged


Config = dict[str, Any]
"""A policy's configuration, its schema's defaults applied."""
ResourceCheck = Callable[[Res, Config, Findings], None]
StackCheck = Callable[[Stack, Config, Findings], None]
REMEDIATION = "Remediation:"


def _described(check: Callable[..., None]) -> tuple[str, str]:
    """(description, remediation steps) of a policy, from its check's docstring: the first
    paragraph, and the paragraph that starts with "Remediation:"; paragraphs between them are
    notes for readers of the code. Line breaks fold into single spaces."""
    paragraphs = [" ".join(p.split()) for p in inspect.cleandoc(check.__doc__ or "").split("\n\n")]
    steps = [p.removeprefix(REMEDIATION).strip() for p in paragraphs if p.startswith(REMEDIATION)]
    if not paragraphs[0] or paragraphs[0].startswith(REMEDIATION) or len(steps) != 1:
        raise ValueError(
            f"{check.__name__}: its docstring must give the description, then one {REMEDIATION} paragraph"
        )
    return paragraphs[0], steps[0]


@dataclass(frozen=True)
class _Declared:
    """What both kinds of policy are built from: the published fields and the validate function."""

    fields: dict[str, Any]
    defaults: dict[str, Any]


def _declare(
    name: str,
    check: Callable[..., None],
    level: EnforcementLevel,
    severity: Severity,
    schema: Mapping[str, dict[str, Any]] | None,
    url: str | None,
) -> _Declared:
    # Every policy also accepts the `undecided` option; the pack applies no schema defaults itself.
    full_schema = {**(schema or {}), UNDECIDED_OPTION: UNDECIDED_SCHEMA}
    description, remediation = _described(check)
    return _Declared(
        fields={
            "name": name,
            "description": description,
            "enforcement_level": level,
            "config_schema": PolicyConfigSchema(properties=full_schema),
            "severity": severity,
            "remediation_steps": remediation,
            "url": url,
        },
        defaults={k: v["default"] for k, v in full_schema.items() if "default" in v},
    )


def _run(
    check: Callable[[Any, Config, Findings], None],
    subject: Any,
    args: ResourceValidationArgs | StackValidationArgs,
    defaults: Mapping[str, Any],
    report: ReportViolation,
) -> None:
    findings = Findings(in_stack=isinstance(subject, Stack))
    cfg = config(args, defaults)
    check(subject, cfg, findings)
    findings.emit(report, undecided_as_advisory=cfg.get(UNDECIDED_OPTION) == AS_ADVISORY)


def resource_policy(
    name: str,
    level: EnforcementLevel,
    severity: Severity,
    *,
    types: Sequence[str],
    schema: Mapping[str, dict[str, Any]] | None = None,
    url: str | None = None,
) -> Callable[[ResourceCheck], ResourceValidationPolicy]:
    """Declare the decorated check as a resource policy over resources of `types` (plain props,
    schema defaults applied in code); its docstring gives the description and remediation
    (`_described`). The decorated name is the policy."""

    def declare(check: ResourceCheck) -> ResourceValidationPolicy:
        declared = _declare(name, check, level, severity, schema, url)
        type_set = frozenset(types)

        def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
            if args.resource_type in type_set:
                _run(check, Res.from_args(args), args, declared.defaults, report)

        return ResourceValidationPolicy(validate=validate, **declared.fields)

    return declare


def stack_policy(
    name: str,
    level: EnforcementLevel,
    severity: Severity,
    *,
    schema: Mapping[str, dict[str, Any]] | None = None,
    url: str | None = None,
) -> Callable[[StackCheck], StackValidationPolicy]:
    """Declare the decorated check as a stack policy, like `resource_policy`: it sees the stack."""

    def declare(check: StackCheck) -> StackValidationPolicy:
        declared = _declare(name, check, level, severity, schema, url)

        def validate(args: StackValidationArgs, report: ReportViolation) -> None:
            _run(check, Stack.from_args(args), args, declared.defaults, report)

        return StackValidationPolicy(validate=validate, **declared.fields)

    return declare


def stacks_schema(what: str) -> dict[str, Any]:
    """The `stacks` config property of a rule that applies in some stacks only (see stack_enforced)."""
    return setting(f"{what} (empty list: every stack).", ["prod"])


def stack_enforced(stacks: Any) -> bool:
    """True when the current stack is in a configured list (an empty/absent list means all)."""
    names = [s for s in as_list(stacks) if isinstance(s, str)]
    return not names or stack_name() in names
