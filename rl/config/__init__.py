"""Typed configuration: dataclasses from YAML plus dotted command-line overrides.

Each package owns the dataclasses of its own section (``policy.config``, ``rewards.config``,
...); this module only turns plain data into those dataclasses and back, and reports every
mistake with the dotted key, what was given and what is allowed.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Opt:
    ...     lr: float = 1e-6
    ...     algo: Literal["dapo", "gspo"] = "dapo"
    >>> from_dict(Opt, {"lr": "2e-6"}).lr
    2e-06
    >>> from_dict(Opt, {"algo": "ppo"})
    Traceback (most recent call last):
    ...
    rl.config.ConfigError: algo: 'ppo' is not allowed; choose one of 'dapo', 'gspo'
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")
_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")

__all__ = [
    "ConfigError",
    "from_dict",
    "to_dict",
    "load_config",
    "apply_overrides",
    "parse_override",
    "save_yaml",
]


class ConfigError(ValueError):
    """A configuration mistake; the message names the dotted key and what to change."""


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise ConfigError(f"{where}: {value!r} is not allowed; choose one of {choices}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where}: must not be null")
        variants = _tagged_variants(args)
        if variants:
            return _convert_tagged(variants, value, where)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{where}: {value!r} fits none of {tp}"
        )
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        items = [_convert(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        args = get_args(tp)
        val_tp = args[1] if len(args) == 2 else Any
        return {str(k): _convert(val_tp, v, _join(where, str(k))) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        # No setting of this project means anything at NaN or infinity.
        if not math.isfinite(number):
            raise ConfigError(f"{where}: must be a finite number, got {value!r}")
        return number
    if tp is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def _tagged_variants(args: tuple[Any, ...]) -> dict[str, type] | None:
    """{tag: dataclass} when every non-None member of a union is a dataclass whose ``name``
    field is a one-value Literal (a tagged union), else None."""
    out: dict[str, type] = {}
    for arg in args:
        if arg is type(None):
            continue
        if not _is_dataclass_type(arg):
            return None
        hint = get_type_hints(arg).get("name")
        if get_origin(hint) is not Literal or len(get_args(hint)) != 1:
            return None
        out[get_args(hint)[0]] = arg
    return out or None


def _convert_tagged(variants: dict[str, type], value: Any, where: str) -> Any:
    """A tagged-union value: ``"tag"`` or ``{name: tag, option: value, ...}``; an option of
    another variant (or of none) is rejected naming the key and the variant's options."""
    if isinstance(value, tuple(variants.values())):
        return value
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a name or a mapping with 'name', got {value!r}")
    choices = ", ".join(repr(k) for k in variants)
    if "name" not in value:
        raise ConfigError(f"{where}.name: missing; choose one of {choices}")
    tag = value["name"]
    if tag not in variants:
        raise ConfigError(f"{where}: {tag!r} is not allowed; choose one of {choices}")
    cls = variants[tag]
    options = [f.name for f in dataclasses.fields(cls) if f.init and f.name != "name"]
    for key in value:
        if key != "name" and key not in options:
            owners = [
                t for t, c in variants.items() if key in {f.name for f in dataclasses.fields(c)}
            ]
            elsewhere = f" (an option of {', '.join(map(repr, owners))})" if owners else ""
            raise ConfigError(
                f"{_join(where, str(key))}: not an option of {tag!r}{elsewhere}; "
                f"{tag!r} takes: {', '.join(options) or 'no options'}"
            )
    try:
        return from_dict(cls, value, where)
    except ConfigError as err:
        text = str(err)
        raise ConfigError(text if text.startswith(where) else f"{where}.{text}") from err


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and bad values raise ConfigError."""
    data = dict(data or {})
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"{_join(where, str(key))}: unknown key{hint}; allowed keys: {', '.join(fields)}"
        )
    kwargs = {name: _convert(hints[name], data[name], _join(where, name)) for name in data}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        message = str(err)
        if where and message.startswith(f"{where}."):  # already names the dotted key
            raise ConfigError(message) from err
        raise ConfigError(f"{where or cls.__name__}: {message}") from err


def to_dict(obj: Any) -> Any:
    """Plain data (dicts, lists, scalars) from a dataclass tree, ready for YAML or JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'rl.lr=1e-6'`` -> ``(['rl', 'lr'], 1e-06)``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected dotted.key=value, e.g. rl.lr=1e-6")
    value = yaml.safe_load(raw) if raw.strip() else ""
    # YAML 1.1 reads "1e-6" as a string; numbers in scientific notation are common here.
    if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        value = float(value)
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each ``dotted.key=value`` into a nested dict (creating levels as needed)."""
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            if isinstance(node.get(part), str):  # a tagged variant by name: open its options
                node[part] = {"name": node[part]}
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping")
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] = ()) -> T:
    """Dataclass ``cls`` from a YAML file (optional) and dotted overrides."""
    data = read_yaml(path) if path else {}
    return from_dict(cls, apply_overrides(data, list(overrides)))


def save_yaml(obj: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(obj), sort_keys=False))


def check(condition: bool, where: str, message: str) -> None:
    """Raise ConfigError(``where: message``) unless ``condition``; for __post_init__ checks."""
    if not condition:
        raise ConfigError(f"{where}: {message}")
