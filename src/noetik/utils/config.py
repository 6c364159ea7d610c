"""Typed config dataclasses from JSON: every value checked against its field's annotation.

:func:`from_json` rebuilds a (nested) frozen dataclass from the JSON form of its fields and
refuses anything a user could have mistyped with one line naming where it came from and the
field: ``config.json: field 'encoder.hidden' must be a list of int, got 256``. Checked kinds:
``bool``, ``int``, ``float`` (an int is accepted), ``str``, ``None``, ``Literal[...]``, unions,
``tuple[X, ...]`` and fixed tuples (from JSON lists), ``dict``/``Mapping`` and nested
dataclasses (unknown keys refused); ``Any`` accepts anything. The dataclass's own
``__post_init__`` then checks ranges.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from noetik.errors import ConfigError

T = TypeVar("T")

__all__ = ["describe_type", "from_json", "read_config_file"]


class _Mismatch(Exception):
    """A value that does not fit its annotation (``path`` is the dotted field name)."""

    def __init__(self, path: str, expected: str, value: Any) -> None:
        super().__init__(path)
        self.path, self.expected, self.value = path, expected, value


def from_json(cls: type[T], data: Any, where: str) -> T:
    """``cls`` (a dataclass) rebuilt from ``data``, its JSON form; ``where`` names the source
    (a file, an option) in the one-line :class:`ConfigError` raised for a mistyped value."""
    try:
        result: T = _convert(cls, data, "")
    except _Mismatch as exc:
        field = f"field '{exc.path}'" if exc.path else "the file"
        shown = repr(exc.value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ConfigError(f"{where}: {field} must be {exc.expected}, got {shown}") from None
    except ConfigError as exc:  # a range check of __post_init__
        raise ConfigError(f"{where}: {exc}") from None
    return result


def read_config_file(path: Path, what: str) -> Any:
    """The JSON value held by the ``.json`` or ``.toml`` file ``path``; a file that cannot be
    read or parsed raises a one-line :class:`ConfigError` naming it (``what``: what it is)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    try:
        if path.suffix == ".json":
            return json.loads(text)
        if path.suffix == ".toml":
            return tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()} ({exc})") from None
    raise ConfigError(f"{path}: a {what} file ends in .json or .toml")


#: Names of the scalar annotations in messages.
_NAMES: dict[Any, str] = {
    type(None): "null",
    None: "null",
    float: "a number",
    bool: "true or false",
}


def describe_type(tp: Any) -> str:
    """A short human name of annotation ``tp`` (``"int"``, ``"a list of str"``, ...)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in args)
    if origin is tuple:
        variable = len(args) == 2 and args[1] is Ellipsis
        return f"a list of {describe_type(args[0])}" if variable else f"a list of {len(args)}"
    mapping = origin in (dict, Mapping) or tp in (dict, Mapping)
    if mapping or (isinstance(tp, type) and dataclasses.is_dataclass(tp)):
        return "an object"
    name = _NAMES.get(tp) or getattr(tp, "__name__", None)
    return str(name) if name else str(tp)


def _join(path: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else name


def _convert(tp: Any, value: Any, path: str) -> Any:
    """``value`` checked against ``tp`` and converted (lists to tuples, dicts to dataclasses)."""
    if tp is Any or tp is object:
        return value
    return _convert_typed(tp, value, path)


def _convert_typed(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _convert(arg, value, path)
            except _Mismatch:
                continue
        raise _Mismatch(path, describe_type(tp), value)
    if origin is Literal:
        if value in typing.get_args(tp) and not isinstance(value, bool | float):
            return value
        raise _Mismatch(path, describe_type(tp), value)
    if origin is tuple:
        return _tuple(tp, value, path)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _Mismatch(path, "an object", value)
        return dict(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp, value, path)
    return _scalar(tp, value, path)


#: Which JSON values each scalar annotation accepts (bool is no int or float here).
_SCALARS: dict[Any, Callable[[Any], bool]] = {
    type(None): lambda v: v is None,
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    str: lambda v: isinstance(v, str),
}


def _scalar(tp: Any, value: Any, path: str) -> Any:
    accepts = _SCALARS.get(tp)
    if accepts is None:  # another class: an instance of it; anything else: unchecked
        accepts = (lambda v: isinstance(v, tp)) if isinstance(tp, type) else (lambda v: True)
    if not accepts(value):
        raise _Mismatch(path, describe_type(tp), value)
    return float(value) if tp is float else value


def _tuple(tp: Any, value: Any, path: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise _Mismatch(path, describe_type(tp), value)
    args = typing.get_args(tp)
    if not args:
        return tuple(value)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_convert(args[0], v, _join(path, i)) for i, v in enumerate(value))
    if len(value) != len(args):
        raise _Mismatch(path, describe_type(tp), value)
    return tuple(
        _convert(a, v, _join(path, i)) for i, (a, v) in enumerate(zip(args, value, strict=True))
    )


def _dataclass(tp: type[Any], value: Any, path: str) -> Any:
    if isinstance(value, tp):
        return value
    if not isinstance(value, Mapping):
        raise _Mismatch(path, "an object", value)
    hints = typing.get_type_hints(tp)
    fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        known = ", ".join(fields)
        where = f"'{path}'" if path else tp.__name__
        raise ConfigError(f"{where} has no field '{unknown[0]}' (fields: {known})")
    missing = [
        name
        for name, f in fields.items()
        if name not in value
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        where = f"'{path}'" if path else tp.__name__
        raise ConfigError(f"{where} needs field '{missing[0]}'")
    kwargs = {k: _convert(hints[k], v, _join(path, k)) for k, v in value.items()}
    try:
        return tp(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path else str(exc)) from None
