"""Import only the parts of a generated provider SDK that a program uses.

A generated Pulumi provider SDK (pulumi_aws) loads each of its subpackages lazily, but on the
first attribute a program reads (``aws.ec2.SecurityGroup``) the subpackage's ``__init__`` runs
whole, importing every module of it: for ``pulumi_aws.ec2``, 182 modules, each defining its
classes with type annotations evaluated at import. A program using a dozen resource types of
twenty subpackages spends most of its start-up there.

:func:`import_by_name` changes how such subpackages load, not what they hold: reading a name
imports the one module that defines it (found in the modules' ``__all__``, read as text), so
``aws.ec2.SecurityGroup`` is the very class the full import would give. Anything else read
from the package (``__all__``, ``__dict__`` through ``dir()``, a name no module declares) first
completes the whole import as the SDK would have done it (only ``vars()`` sees the names read so
far). Only the SDK's generated form is handled: an ``__init__`` made of imports alone, each
star-imported module with a literal ``__all__``; any other package keeps its own loading.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from pathlib import Path

from pulumi import _utils

# The lines a generated subpackage ``__init__`` consists of; any other statement means the
# package does more on import than collect its modules' names, and it is left alone.
_HEADER = {
    "import builtins as _builtins",
    "from .. import _utilities",
    "import typing",
}
_STAR = re.compile(r"from \.(\w+) import \*")
_SUBMODULE = re.compile(r"from \. import (\w+)")
_ALL = re.compile(r"^__all__ = \[(.*?)\]", re.MULTILINE | re.DOTALL)
_NAME = re.compile(r"'(\w+)'")


def _index(init: Path) -> dict[str, str] | None:
    """Each public name of a generated subpackage -> the module that defines it, later star
    imports overriding earlier ones as they do in ``__init__``; None when not the generated form."""
    where: dict[str, str] = {}
    for line in init.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line in _HEADER or _SUBMODULE.fullmatch(line):
            continue
        star = _STAR.fullmatch(line)
        if star is None:
            return None
        source = init.parent / f"{star[1]}.py"
        found = _ALL.search(_head(source)) if source.is_file() else None
        if found is None:
            return None
        for name in _NAME.findall(found[1]):
            where[name] = star[1]
    return where


def _head(source: Path) -> str:
    """A generated module's text up to the end of its ``__all__`` (it follows the imports): an
    ``ec2`` module runs to 100 kB and more, and the index reads 182 of them."""
    lines: list[str] = []
    with source.open(encoding="utf-8") as text:
        for line in text:
            if lines or line.startswith("__all__"):
                lines.append(line)
                if "]" in line:
                    break
    return "".join(lines)


class _ByNameModule(types.ModuleType):
    """A subpackage that imports a name's own module on first use (see the module docstring)."""

    def _names(self) -> dict[str, str] | None:
        if "_by_name" not in self.__dict__:
            types.ModuleType.__setattr__(self, "_by_name", _index(Path(self.__file__ or "")))
        return self.__dict__["_by_name"]

    def _defined(self, name: str, module: str) -> object:
        return getattr(importlib.import_module(f"{self.__name__}.{module}"), name)

    def __getattr__(self, name: str) -> object:
        names = self._names()
        if names is None or name.startswith("__"):
            return getattr(self._import_all(), name)
        if name in names:
            value = self._defined(name, names[name])
        elif Path(self.__path__[0], f"{name}.py").is_file():
            value = importlib.import_module(f"{self.__name__}.{name}")
        else:
            return getattr(self._import_all(), name)
        setattr(self, name, value)
        return value

    def __setattr__(self, name: str, value: object) -> None:
        # Importing a submodule binds it on its package (``get_ami`` the module); the full
        # ``__init__``'s star imports then rebind the name to what the module defines (``get_ami``
        # the lookup). Keep that binding whichever way the submodule got imported.
        names = self._names() if isinstance(value, types.ModuleType) else None
        if names is not None and name in names:
            value = self._defined(name, names[name])
        types.ModuleType.__setattr__(self, name, value)

    def __dir__(self) -> list[str]:
        return dir(self._import_all())

    def _import_all(self) -> types.ModuleType:
        """The whole ``__init__`` run, by the SDK's own lazy module (which any attribute read but
        the introspection ones sets off)."""
        self.__dict__.pop("_by_name", None)
        types.ModuleType.__setattr__(self, "__class__", _utils._LazyModule)
        hasattr(self, "__all__")
        return self


def import_by_name(package: str) -> None:
    """Import ``package`` (when installed) and make each of its subpackages not yet loaded
    import a name's module on first use instead of all its modules. Idempotent."""
    if importlib.util.find_spec(package) is None:
        return
    importlib.import_module(package)
    prefix = package + "."
    for fullname, module in list(sys.modules.items()):
        if fullname.startswith(prefix) and type(module) is _utils._LazyModule:
            types.ModuleType.__setattr__(module, "__class__", _ByNameModule)
