"""A component's outputs: its typed attributes, registered once.

Each component declares its outputs as class annotations with docstrings and assigns them in
``__init__``; ``register_typed_outputs`` then registers every one of them, by the same names and
in the same order, so a new output cannot be declared and forgotten in ``register_outputs``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

import pulumi


def register_typed_outputs(component: pulumi.ComponentResource, internal: Collection[str] = ()) -> None:
    """Register every annotated attribute of ``component``'s class as an output, except
    ``internal``: attributes that hand Python objects to other components (a resource, a
    reference dataclass) rather than values the stack records. Default: none excluded. A
    dataclass value (a metric's coordinates) is recorded as the mapping of its fields."""
    names = [name for name in type(component).__annotations__ if name not in internal]
    component.register_outputs({name: _recordable(getattr(component, name)) for name in names})


def _recordable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value
