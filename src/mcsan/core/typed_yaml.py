"""Typed YAML: dataclasses from nested dicts and back, with every key and type checked.

Generic machinery, independent of what the dataclasses hold (:mod:`mcsan.config.run` holds the
run's): :func:`from_dict` builds a dataclass from a dict, recursively, converting values to
the field types (unions, ``Literal`` choices, tuples, lists, dicts, nested dataclasses) and
raising :class:`~mcsan.core.errors.ConfigError` that names the dotted key and the source file;
:func:`to_dict` is its inverse. :func:`apply_overrides` sets ``--set key.path=value``
overrides (values parsed as YAML scalars or flow lists/maps, e.g. ``model.levels=[global]``);
:func:`read_yaml_mapping` reads a YAML file whose top level is a mapping.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from mcsan.core.errors import ConfigError
from mcsan.core.io import read_text_lines

YAML_BOOL_WORDS: dict[bool, tuple[str, ...]] = {
    False: ("off", "false", "no", "n"),
    True: ("on", "true", "yes", "y"),
}
"""Words YAML 1.1 turns into booleans; a choice field given one gets the word back."""


def to_dict(obj: Any) -> Any:
    """A dataclass (nested) as plain dicts, lists and scalars."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    return obj


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


class _Mismatch(Exception):
    """A value that is not of the expected type; ``expected`` says what was wanted."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """``value`` checked against / converted to type ``tp``; errors name ``key``."""
    try:
        return _convert_any(value, tp, key, source)
    except _Mismatch as exc:
        raise ConfigError(
            f"{source}: key '{key}' must be {exc.expected}, got {value!r}; fix the value"
        ) from None


def _convert_any(value: Any, tp: Any, key: str, source: str) -> Any:
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, typing.get_args(tp), key, source)
    if origin is Literal:
        return _convert_choice(value, typing.get_args(tp))
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise _Mismatch(f"a mapping ({tp.__name__})")
        return from_dict(tp, value, source, prefix=key)
    if origin in (list, tuple) or tp in (list, tuple):
        return _convert_sequence(value, tp, key, source)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _Mismatch("a mapping")
        key_tp, val_tp = typing.get_args(tp) or (Any, Any)
        return {
            _convert(k, key_tp, f"{key}.{k}", source): _convert(v, val_tp, f"{key}.{k}", source)
            for k, v in value.items()
        }
    return _convert_scalar(value, tp)


def _convert_union(value: Any, args: tuple[Any, ...], key: str, source: str) -> Any:
    if value is None and type(None) in args:
        return None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(value, arg, key, source)
        except ConfigError:
            continue
    raise _Mismatch(" or ".join(_type_name(a) for a in args))


def _convert_choice(value: Any, args: tuple[Any, ...]) -> Any:
    if isinstance(value, bool):  # YAML 1.1 reads off/on/no/yes as booleans
        spellings = YAML_BOOL_WORDS[value]
        value = next((a for a in args if isinstance(a, str) and a in spellings), value)
    if value not in args:
        raise _Mismatch("one of " + ", ".join(repr(a) for a in args))
    return value


def _convert_sequence(value: Any, tp: Any, key: str, source: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise _Mismatch("a list")
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise _Mismatch(f"a list of {len(args)} items")
        pairs = enumerate(zip(value, args, strict=True))
        items = [_convert(v, a, f"{key}[{i}]", source) for i, (v, a) in pairs]
    else:
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value)]
    return tuple(items) if (origin is tuple or tp is tuple) else items


def _convert_scalar(value: Any, tp: Any) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise _Mismatch("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Mismatch("an integer")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise _Mismatch("a number") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Mismatch("a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _Mismatch("a string")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise _Mismatch(f"a {tp.__name__}")
    return value


def from_dict(cls: type, data: dict[str, Any], source: str = "<config>", prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, recursively, checking keys and types.

    Missing keys keep their defaults; an unknown key raises ConfigError naming its
    full dotted path and ``source``.
    """
    if not isinstance(data, dict):
        where = f"'{prefix}'" if prefix else "the top level"
        raise ConfigError(f"{source}: {where} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        path = f"{prefix}.{name}" if prefix else str(name)
        if name not in known:
            choices = ", ".join(sorted(known))
            raise ConfigError(f"{source}: unknown key '{path}'; valid keys here: {choices}")
        kwargs[name] = _convert(value, hints[name], path, source)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        where = f"'{prefix}'" if prefix else "config"
        raise ConfigError(f"{source}: invalid {where}: {exc}") from exc


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` -> (["a", "b"], value parsed as a YAML scalar / flow collection)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.epochs=5")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: empty key; use dotted names like model.levels")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({exc})") from exc
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with every ``KEY=VALUE`` override set (nested keys)."""
    result = _deep_copy(data)
    for text in overrides:
        parts, value = parse_override(text)
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                path = ".".join(parts[: depth + 1])
                raise ConfigError(f"--set {text!r}: '{path}' is not a section")
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def config_differences(
    saved: dict[str, Any], current: dict[str, Any], ignore: tuple[str, ...] = (), prefix: str = ""
) -> list[str]:
    """Dotted keys whose values differ between two config dicts (``ignore``d keys skipped)."""
    out = []
    for key in sorted(set(saved) | set(current)):
        path = f"{prefix}{key}"
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, ignore, f"{path}.")
        elif path not in ignore and to_dict(a) != to_dict(b):
            out.append(path)
    return out


class RepeatedKeyError(yaml.YAMLError):
    """A mapping key given twice."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML keeps the last one
    silently: a repeated section would drop the first one's settings)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if isinstance(key, str | int | float | bool) and key in seen:
            raise RepeatedKeyError(f"{line}: key {key!r} given twice (also on line "
                                   f"{seen[key]}); keep one, YAML would silently drop the "
                                   "first")  # fmt: skip
        if isinstance(key, str | int | float | bool):
            seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def strict_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses repeated keys (yaml.YAMLError)."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)


def read_yaml_mapping(path: str | os.PathLike[str], what: str = "config file") -> dict[str, Any]:
    """The mapping at the top of a YAML file; ConfigError naming the file otherwise (also
    for an empty or comment-only file and a key or section given twice)."""
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"{source}: {what} not found; check the --config path")
    try:
        data = strict_yaml("\n".join(read_text_lines(source, what)))
    except RepeatedKeyError as exc:
        raise ConfigError(f"{source}:{exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc}); fix the file") from exc
    if data is None:
        raise ConfigError(
            f"{source}: the {what} is empty (or only comments); give at least one setting, "
            "or leave out --config to use the defaults"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    return data
