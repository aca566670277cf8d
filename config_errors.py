"""Configuration problems in the stack file's words, shared by the program and the bootstrap.

Both projects read a Pulumi namespace into strict, frozen pydantic models and refuse a bad
stack file before anything is registered, with one message that lists every problem, each
named by its key path as written in the stack file (``wwhd:service.desiredCount``,
``wwhd-bootstrap:github.repository``), in plain words, with a suggestion for a misspelt key.

The bootstrap is a Pulumi project of its own (``pulumi -C bootstrap up``): its ``__main__.py``
puts the repository root on ``sys.path`` to import this module, so it imports nothing from the
program but pulumi and pydantic, which both projects install.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, get_args

import pulumi
from pydantic import BaseModel, ConfigDict, ValidationError, alias_generators
from pydantic_core import ErrorDetails


@dataclass(frozen=True)
class Problem:
    """One problem in a stack file: the key path as written there, and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(pulumi.RunError):
    """The configuration is invalid. A ``RunError``, so Pulumi prints the message without a
    traceback; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem], subject: str = "stack configuration"):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"invalid {subject} ({len(problems)} {noun}):\n{lines}")


class StrictModel(BaseModel):
    """Stack file sections: camelCase keys, unknown keys refused, immutable once read.

    Strict: a value must already have its field's type, as YAML (through the JSON Pulumi hands
    the program) gives it. Lax pydantic would turn ``flowLogs: "yes"`` into true and
    ``memory: "4096"`` into 4096; strict refuses both, and an integer where a number is meant
    (``latencyP95Seconds: 2``) stays acceptable. The docstring under each field documents it:
    the README's configuration table is generated from them (tools/readme.py reads them from the
    source; pydantic's ``use_attribute_docstrings`` would parse them at every import)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=alias_generators.to_camel,
        populate_by_name=True,
    )


_M = TypeVar("_M", bound=BaseModel)


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: itself, or as the items of a list or an optional value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = nested_model(arg)
        if found is not None:
            return found
    return None


def field_at(model: type[BaseModel], key: str) -> tuple[int, type[BaseModel] | None]:
    """Where ``key`` (as written in the stack file) stands among ``model``'s fields, and the
    model it holds; an unknown key stands after every known one."""
    for position, (name, field) in enumerate(model.model_fields.items()):
        if key in (name, field.alias):
            return position, nested_model(field.annotation)
    return len(model.model_fields), None


def model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model that holds the last key of ``loc`` (list indexes are stepped over)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return None
        if isinstance(part, str):
            current = field_at(current, part)[1]
    return current


def unknown_key(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f"unknown key; did you mean {close[0]}?" if close else "unknown key"


def _number(value: float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def plain(value: Any) -> str:
    """A value as the stack file spells it, after "not" in a message."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {_number(value)}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if value is None:
        return "an empty value"
    if isinstance(value, Mapping):
        return "a mapping"
    return "a list" if isinstance(value, list) else repr(value)


# What each of pydantic's type errors expects, in words, and the types a quoted value of the
# right kind has once unquoted (``memory: "4096"``: write it without quotes).
_EXPECTED: dict[str, tuple[str, tuple[type, ...]]] = {
    "bool_type": ("true or false", (bool,)),
    "int_type": ("an integer", (int,)),
    "float_type": ("a number", (int, float)),
    "string_type": ("a string", ()),
    "list_type": ("a list", ()),
    "dict_type": ("a mapping of keys to values", ()),
    "model_type": ("a mapping of keys to values", ()),
}
_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("above", "gt"),
    "less_than_equal": ("at most", "le"),
    "less_than": ("below", "lt"),
}
_LENGTHS = {
    "too_short": ("at least", "min_length"),
    "too_long": ("at most", "max_length"),
    "string_too_short": ("at least", "min_length"),
    "string_too_long": ("at most", "max_length"),
}


def message(err: ErrorDetails) -> str:
    """One pydantic error as a plain sentence about the value the stack file holds."""
    kind, value, ctx = err["type"], err["input"], err.get("ctx", {})
    if kind in _EXPECTED:
        expected, quoted_types = _EXPECTED[kind]
        hint = ""
        if isinstance(value, str) and type(_unquoted(value)) in quoted_types:
            hint = "; write it without quotes"
            if kind == "float_type":
                # `pulumi config set --path` types integers and booleans, and keeps 1.5 a string.
                hint += " (pulumi config set: add --type float)"
        elif kind == "string_type" and isinstance(value, int | float):
            hint = "; put it in quotes"
        return f"must be {expected}, not {plain(value)}{hint}"
    if kind == "literal_error":
        return f"must be {ctx['expected']}, not {plain(value)}"
    if kind in _BOUNDS:
        words, bound = _BOUNDS[kind]
        return f"must be {words} {_number(ctx[bound])}, not {_number(value)}"
    if kind == "missing":
        return "required key is missing"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx['pattern']}, not {plain(value)}"
    if kind in _LENGTHS:
        words, bound = _LENGTHS[kind]
        if kind.startswith("string"):
            return f"must be {words} {ctx[bound]} characters long, not {len(value)}"
        return f"must hold {words} {ctx[bound]} items, not {ctx['actual_length']}"
    # Our own validators (and email-validator) already speak plainly.
    return err["msg"].removeprefix("Value error, ")


def _unquoted(text: str) -> Any:
    """What YAML would read ``text`` as without its quotes (None when not a JSON scalar)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def key_path(where: str, loc: tuple[int | str, ...]) -> str:
    """The stack file's spelling of ``loc`` below ``where``: a key path (``wwhd:network``) goes on
    with ``.key`` and ``[index]``; a bare namespace (``wwhd-bootstrap``) takes its key after a
    colon, as the stack file writes it (``wwhd-bootstrap:github``)."""
    path = where
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f"{'.' if ':' in path else ':'}{part}"
    return path


def expects(model: type[BaseModel], key: str) -> str | None:
    """What a pattern field of ``model`` holds, in words: its ``json_schema_extra["expects"]``
    (``{"expects": "an S3 bucket name"}``), for a message kinder than the regular expression."""
    for name, field in model.model_fields.items():
        if key in (name, field.alias) and isinstance(field.json_schema_extra, dict):
            found = field.json_schema_extra.get("expects")
            return found if isinstance(found, str) else None
    return None


def problem(where: str, model: type[BaseModel] | None, err: ErrorDetails) -> Problem:
    """One pydantic error of validating ``model`` at ``where``, in the stack file's words."""
    loc = tuple(err["loc"])
    if loc and loc[-1] == "[key]":
        # A mapping's key is wrong, not its value: name the mapping and the key.
        return Problem(key_path(where, loc[:-2]), f"key {message(err)}")
    holder = model_at(model, loc[:-1]) if model and loc else None
    if err["type"] == "extra_forbidden":
        valid = [field.alias or name for name, field in holder.model_fields.items()] if holder else []
        return Problem(key_path(where, loc), unknown_key(str(loc[-1]), valid))
    if err["type"] == "string_pattern_mismatch" and holder and (words := expects(holder, str(loc[-1]))):
        return Problem(key_path(where, loc), f"must be {words}, not {plain(err['input'])}")
    return Problem(key_path(where, loc), message(err))


def _without(values: Any, loc: tuple[int | str, ...]) -> Any:
    """A copy of ``values`` without the key at ``loc``."""
    if not loc:
        return values
    head, rest = loc[0], loc[1:]
    if isinstance(values, Mapping):
        if not rest:
            return {k: v for k, v in values.items() if k != head}
        return {k: _without(v, rest) if k == head else v for k, v in values.items()}
    if isinstance(values, list) and isinstance(head, int):
        return [_without(v, rest) if i == head else v for i, v in enumerate(values)]
    return values


def validate(model: type[_M], values: Any, where: str) -> tuple[_M | None, list[Problem]]:
    """``values`` as a ``model``, or None, with every problem found, each named by its key path
    under ``where``. Unknown keys alone do not reject the mapping: it is validated again without
    them, so a misspelt key does not hide what the rules across keys find in the rest."""
    try:
        return model.model_validate(values), []
    except ValidationError as exc:
        errors = exc.errors()
    problems = [problem(where, model, err) for err in errors]
    unknown = [tuple(err["loc"]) for err in errors if err["type"] == "extra_forbidden"]
    if len(unknown) < len(errors):
        return None, problems
    for loc in unknown:
        values = _without(values, loc)
    return model.model_validate(values), problems


def read_namespace(
    namespace: str, plain_keys: tuple[str, ...] = (), skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The running stack's keys of ``namespace`` (without the prefix; ``skip`` left out), each
    value decoded from the JSON text Pulumi hands the program, but for ``plain_keys``, which are
    strings as written. A value that is not JSON stays text, reported as the wrong kind of
    value where a mapping or a number belongs (``wwhd:service: big``)."""
    prefix = f"{namespace}:"
    config = pulumi.Config(namespace)
    raw: dict[str, Any] = {}
    for key in sorted({k[len(prefix) :] for k in _all_config_keys() if k.startswith(prefix)} - set(skip)):
        text = config.get(key)
        if key in plain_keys or text is None:
            raw[key] = text
            continue
        try:
            raw[key] = json.loads(text)
        except json.JSONDecodeError:
            raw[key] = text
    return raw


def _all_config_keys() -> set[str]:
    """Every configuration key of the running stack, wherever the SDK was given it."""
    from pulumi.runtime import config as runtime_config

    return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
