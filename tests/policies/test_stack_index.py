"""The stack index answers what a scan of the whole stack answers.

The stack policies look resources up through `Stack` (by type, by parent, by reference) so that
they stay linear in the stack size. These properties compare every indexed look-up with the
plain scan it replaces, on random stacks built the way the analyzer builds them."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from wwhd_policies._util import Stack, _identity_match, is_unknown

from .conftest import UNKNOWN, R, build_stack

TYPES = (
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
    "aws:ecs/taskDefinition:TaskDefinition",
    "aws:ec2/subnet:Subnet",
)
TD_ARN = "arn:aws:ecs:us-west-2:123456789012:task-definition/wwhd-api"
# A small pool, so that identities collide across resources and types.
VALUES = ("a", "b", "wwhd-docs", "subnet-1", f"{TD_ARN}:1", f"{TD_ARN}:2", UNKNOWN, "")
KEYS = ("id", "arn", "name", "bucket", "family")


@st.composite
def stacks(draw: st.DrawFn) -> list[R]:
    n = draw(st.integers(1, 12))
    specs: list[R] = []
    for i in range(n):
        props: dict[str, Any] = draw(
            st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)
        )
        earlier = [s.name for s in specs]
        parent = draw(st.sampled_from([None, *earlier])) if earlier else None
        prop_deps = (
            {"bucket": draw(st.lists(st.sampled_from(earlier), max_size=2, unique=True))} if earlier else {}
        )
        specs.append(R(draw(st.sampled_from(TYPES)), f"r{i}", props, parent=parent, prop_deps=prop_deps))
    return specs


def scan_resolve(stack: Stack, src: Any, value: Any, types: tuple[str, ...]) -> list[Any] | None:
    """The reference: every resource of `types` compared with the value, then the dependencies."""
    if not is_unknown(value) and value is not None:
        hits = [r for r in stack.resources if r.type in types and _identity_match(r, str(value))]
        if hits:
            return hits
    deps = [stack.by_urn[u] for u in src.property_dependencies.get("bucket", []) if u in stack.by_urn]
    return [r for r in deps if r.type in types] or None


@settings(max_examples=150, deadline=None)
@given(specs=stacks(), types=st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True).map(tuple))
def test_resolve_matches_a_scan(specs: list[R], types: tuple[str, ...]) -> None:
    stack = Stack.from_args(type("Args", (), {"resources": build_stack(specs)})())  # type: ignore[arg-type]
    # Every pooled value, a revision no resource has, and every urn of the stack.
    values = [*VALUES, None, f"{TD_ARN}:7", *(r.urn for r in stack.resources)]
    for src in stack.resources:
        for value in values:
            assert stack.resolve(src, "bucket", value, types) == scan_resolve(stack, src, value, types), value


@settings(max_examples=100, deadline=None)
@given(specs=stacks(), types=st.lists(st.sampled_from(TYPES), max_size=3).map(tuple))
def test_type_and_parent_lookups_match_a_scan(specs: list[R], types: tuple[str, ...]) -> None:
    stack = Stack.from_args(type("Args", (), {"resources": build_stack(specs)})())  # type: ignore[arg-type]
    assert stack.of_type(*types) == [r for r in stack.resources if r.type in types]
    for res in stack.resources:
        assert stack.children(res) == [r for r in stack.resources if r.parent == res.urn]


def test_task_definition_revisions_resolve_to_their_family() -> None:
    specs = [
        R("aws:ecs/taskDefinition:TaskDefinition", "api", {"arn": f"{TD_ARN}:3", "family": "wwhd-api"}),
        R("aws:ecs/taskDefinition:TaskDefinition", "other", {"arn": f"{TD_ARN}-worker:3"}),
        R("aws:ecs/service:Service", "svc", {"taskDefinition": f"{TD_ARN}:4"}),
    ]
    stack = Stack.from_args(type("Args", (), {"resources": build_stack(specs)})())  # type: ignore[arg-type]
    svc = stack.by_urn[stack.resources[2].urn]
    found = stack.resolve(
        svc, "taskDefinition", svc.get("taskDefinition"), ("aws:ecs/taskDefinition:TaskDefinition",)
    )
    assert [r.name for r in found or []] == ["api"]
