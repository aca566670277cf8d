"""WwhdComponent: what every component of the program does the same way.

A component is registered under its type token, builds its children parented to itself and
registers its outputs once, when it is built. The base class does the first and the last, so
no component can forget either; each component only builds, in ``_build``:

    class WwhdNetwork(WwhdComponent[WwhdNetworkArgs], token=TOKEN):
        vpc_id: pulumi.Output[str]

        def _build(self, name: str, args: WwhdNetworkArgs) -> None:
            ...  # children with opts=self._child, invokes with opts=self._invoke
            self.vpc_id = vpc.vpc_id

Outputs are the class's annotated attributes, registered by the same names in the same order,
so a new output cannot be declared and forgotten in ``register_outputs``. The token and the
attributes kept out of the outputs are class keywords, not annotations, for that reason.
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
from collections.abc import Collection
from typing import Any, Generic, TypeVar

import pulumi

ArgsT = TypeVar("ArgsT")


class WwhdComponent(pulumi.ComponentResource, Generic[ArgsT], metaclass=abc.ABCMeta):
    """A component of type ``token`` built from args of type ``ArgsT``.

    Class keywords: ``token``, the type token (``wwhd:index:<ClassName>``: part of every URN
    below the component, so it never changes); ``internal``, annotated attributes that hand
    Python objects to other components (a resource, a reference of input values) rather than
    values the stack records. Default: none excluded.
    """

    def __init_subclass__(cls, *, token: str, internal: Collection[str] = (), **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._token = token
        cls._internal = frozenset(internal)

    def __init__(self, name: str, args: ArgsT, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(self._token, name, None, opts)
        # Children get these, never the caller's opts: the parent carries the caller's provider,
        # protection and aliases down to them, and an explicit provider reaches the invokes.
        self._child = pulumi.ResourceOptions(parent=self)
        self._invoke = pulumi.InvokeOptions(parent=self)
        self._build(name, args)
        outputs = [key for key in inspect.get_annotations(type(self)) if key not in self._internal]
        self.register_outputs({key: _recordable(getattr(self, key)) for key in outputs})

    @abc.abstractmethod
    def _build(self, name: str, args: ArgsT) -> None:
        """Create the children and assign every annotated output."""


def _recordable(value: Any) -> Any:
    """A dataclass value (a metric's coordinates, a reference) is recorded as the mapping of its
    fields; each field keeps its value (an Output stays an Output: it is not copied)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _recordable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value
