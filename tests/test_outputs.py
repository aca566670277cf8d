"""A component registers exactly its typed attributes, once, by the same names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi

from components.outputs import register_typed_outputs


@dataclass(frozen=True)
class Coordinates:
    namespace: str
    dimensions: dict[str, str]


class Recorder:
    """Stands in for a ComponentResource: records what it was asked to register."""

    first: str
    """An output."""
    reference: object
    """A Python object handed to other components."""
    metric: Coordinates
    """A dataclass output."""
    maybe: str | None
    """An output that is not there."""

    def __init__(self) -> None:
        self.first, self.reference, self.maybe = "a", object(), None
        self.metric = Coordinates("WWHD/dev", {"path": "/data"})
        self.registered: list[dict[str, Any]] = []

    def register_outputs(self, outputs: dict[str, Any]) -> None:
        self.registered.append(outputs)


def test_every_annotated_attribute_but_the_internal_ones_is_registered_in_order() -> None:
    component = Recorder()
    register_typed_outputs(cast(pulumi.ComponentResource, component), internal=("reference",))
    assert component.registered == [
        {"first": "a", "metric": {"namespace": "WWHD/dev", "dimensions": {"path": "/data"}}, "maybe": None}
    ]
    assert list(component.registered[0]) == ["first", "metric", "maybe"]
