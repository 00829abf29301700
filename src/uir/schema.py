"""Strict conversion of plain values (parsed YAML) into typed dataclasses, and back.

``parse(cls, value)`` checks a nested dict against a dataclass's type hints: unknown keys, missing required
keys and values of the wrong type raise ``ConfigError`` naming the dotted key path, what was expected and what
came. Supported hints: dataclasses, ``int``, ``float`` (integers accepted), ``bool``, ``str``, ``None``,
``Literal``, unions, ``list[X]``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``dict[str, X]`` and ``Any``. A dataclass
may define ``check()`` raising ``ValueError`` for rules across fields; a field with ``metadata={"tagged": f}``
is parsed as the dataclass ``f(value["name"])`` (a tagged union, e.g. the method's config).

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Optim:
    ...     lr: float = 1e-3
    >>> parse(Optim, {"lr": 1})
    Optim(lr=1.0)
    >>> parse(Optim, {"lr": "fast"}, "optim")
    Traceback (most recent call last):
    ...
    uir.schema.ConfigError: optim.lr: expected number, got string 'fast'
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml

from uir.errors import UirError


class ConfigError(UirError):
    """A config value is wrong. ``key`` is its dotted path (``data.sources.0.kind``)."""

    def __init__(self, key: str, message: str, *, named: bool = False) -> None:
        self.key, self.message = key, message
        super().__init__(message if named or not key else f"{key}: {message}")


# --------------------------------------------------------------------------- parsing


def describe_type(hint: Any) -> str:
    """A type as a config user reads it: ``number``, ``list of number``, ``integer or null``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in args)
    if origin in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return "a list [" + ", ".join(describe_type(a) for a in args) + "]"
        return f"list of {describe_type(args[0])}"
    if origin is dict or dataclasses.is_dataclass(hint):
        return "mapping"
    names = {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def describe_value(value: Any) -> str:
    """A value as error messages show it: its YAML type and (shortened) repr."""
    text = repr(value)
    return f"{describe_type(type(value))} {text if len(text) <= 40 else text[:37] + '...'}"


def _parse_scalar(hint: Any, value: Any, key: str) -> Any:
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
        type(None): value is None,
    }
    if hint is Any:
        return value
    if not ok.get(hint, False):
        raise ConfigError(key, f"expected {describe_type(hint)}, got {describe_value(value)}")
    return float(value) if hint is float else value


def _parse_sequence(hint: Any, value: Any, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if not isinstance(value, (list, tuple)):
        raise ConfigError(key, f"expected {describe_type(hint)}, got {describe_value(value)}")
    if origin is list or args[-1] is Ellipsis:
        return origin(parse(args[0], v, f"{key}.{i}") for i, v in enumerate(value))
    if len(value) != len(args):
        raise ConfigError(key, f"expected {describe_type(hint)}, got {describe_value(value)}")
    return tuple(parse(a, v, f"{key}.{i}") for i, (a, v) in enumerate(zip(args, value, strict=True)))


def parse(hint: Any, value: Any, key: str = "") -> Any:
    """Check ``value`` against the type ``hint`` and build it (dataclasses from mappings)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _parse_dataclass(hint, value, key)
    if origin is Literal:
        if value not in args or isinstance(value, bool):
            raise ConfigError(key, f"expected {describe_type(hint)}, got {describe_value(value)}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            try:
                return parse(arg, value, key)
            except ConfigError as err:
                if err.key != key:  # the value has this shape but something inside it is wrong
                    raise
        raise ConfigError(key, f"expected {describe_type(hint)}, got {describe_value(value)}")
    if origin in (list, tuple):
        return _parse_sequence(hint, value, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"expected a mapping, got {describe_value(value)}")
        return {str(k): parse(args[1], v, f"{key}.{k}") for k, v in value.items()}
    return _parse_scalar(hint, value, key)


def _parse_dataclass(cls: type, value: Any, key: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a mapping, got {describe_value(value)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    where = f"{key}." if key else ""
    for name in value:
        if name not in fields:
            section = f"{key} takes" if key else "sections are"
            message = f"unknown key '{where}{name}' ({section}: {', '.join(fields)})"
            raise ConfigError(f"{where}{name}", message, named=True)
    kwargs = {}
    for name, f in fields.items():
        if name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}{name}", "missing (required)")
            continue
        tagged = f.metadata.get("tagged")
        hint = _tagged_type(tagged, value[name], f, f"{where}{name}") if tagged else hints[name]
        kwargs[name] = parse(hint, value[name], f"{where}{name}")
    obj = cls(**kwargs)
    if hasattr(obj, "check"):
        try:
            obj.check()
        except ValueError as err:
            raise ConfigError(key, str(err)) from err
    return obj


def _tagged_type(resolve: Callable[[str], type], value: Any, f: dataclasses.Field, key: str) -> type:
    """The dataclass of a tagged section: ``resolve(value["name"])``, the field default's name if absent."""
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a mapping, got {describe_value(value)}")
    name = value.get("name", f.default_factory().name)  # type: ignore[misc]
    if not isinstance(name, str):
        raise ConfigError(f"{key}.name", f"expected string, got {describe_value(name)}")
    try:
        return resolve(name)
    except UirError as err:
        raise ConfigError(f"{key}.name", str(err)) from err


# --------------------------------------------------------------------------- YAML and --set


class _Loader(yaml.SafeLoader):
    """Safe YAML, plus ``1e-3`` as a number (YAML 1.2) and duplicate keys as errors."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML text with uir's loader; errors become one-line ``UirError``s mentioning ``where``."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise UirError(f"{where}: invalid YAML{line}: {' '.join(str(problem).split())}") from err


def copy_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: copy_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [copy_plain(v) for v in value]
    return value


def to_plain(cfg: Any) -> Any:
    """A config as plain dicts, lists and scalars (tuples become lists): what YAML and checkpoints hold."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, dict):
        return {k: to_plain(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [to_plain(v) for v in cfg]
    return cfg


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_path(value: str, key: str = "path") -> Path:
    """Expand ``${VAR}``, ``${VAR:-default}`` and ``~`` in a config path.

    Raises:
        UirError: a variable without a default is not set.
    """

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise UirError(f"{key}: ${{{name}}} is not set; export {name}=... (e.g. ../shared/data) or write the path")

    return Path(_VAR.sub(substitute, value)).expanduser()
