"""JSON Schema from Python type hints, and arguments from JSON back into those types.

Understood: str, int, float, bool, None, Any, list[T], tuple[T, ...], dict[str, T], Optional[T] / T | None,
Literal[...], Enum subclasses, dataclasses, TypedDicts, and `Annotated[T, "description", {"minimum": 0}]` (a
string is the description, a dict is merged into the schema).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any

from .errors import InvalidArguments

_PRIMITIVES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def unwrap(hint: Any) -> tuple[Any, dict]:
    """`Annotated[T, ...]` → (T, what its metadata adds to the schema)."""
    extra: dict = {}
    while typing.get_origin(hint) is typing.Annotated:
        for meta in hint.__metadata__:
            if isinstance(meta, str):
                extra.setdefault("description", meta)
            elif isinstance(meta, dict):
                extra.update(meta)
        hint = hint.__origin__
    return hint, extra


def _optional_inner(hint: Any) -> Any | None:
    """T for Optional[T] / T | None, else None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
    return None


def schema_of(hint: Any) -> dict:
    """The JSON Schema of a type hint."""
    hint, extra = unwrap(hint)
    return {**_schema(hint), **extra}


def _schema(hint: Any) -> dict:
    if hint is Any or hint is object:
        return {}
    if hint is None or hint is type(None):
        return {"type": "null"}
    if hint in _PRIMITIVES:
        return {"type": _PRIMITIVES[hint]}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        # One branch per type (not a type list): some MCP clients reject `"type": [..]`.
        return {"anyOf": [schema_of(a) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if hint in (list, tuple) or origin in (list, tuple, typing.Sequence):
        items = args[0] if args else Any
        return {"type": "array", "items": schema_of(items)} if items is not Any else {"type": "array"}
    if hint is dict or origin is dict:
        out: dict = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            out["additionalProperties"] = schema_of(args[1])
        return out
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [m.value for m in hint]}
    if dataclasses.is_dataclass(hint):
        return _object(hint, {f.name for f in dataclasses.fields(hint) if _has_default(f)})
    if typing.is_typeddict(hint):
        return _object(hint, set(hint.__optional_keys__))
    raise TypeError(f"plughost cannot derive a JSON Schema from the type {hint!r}")


def _has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _object(cls: type, optional: set[str]) -> dict:
    hints = typing.get_type_hints(cls, include_extras=True)
    props = {name: schema_of(h) for name, h in hints.items() if not name.startswith("_")}
    out: dict = {"type": "object", "properties": props}
    required = [n for n in props if n not in optional]
    if required:
        out["required"] = required
    doc = _own_doc(cls)
    if doc:
        out["description"] = doc
    return out


def _own_doc(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    # A dataclass without a docstring gets a generated one: the constructor's signature.
    if not doc or (dataclasses.is_dataclass(cls) and doc.startswith(cls.__name__ + "(")):
        return None
    return " ".join(doc.split())


def convert(value: Any, hint: Any, where: str) -> Any:
    """Checks a JSON value against a type hint and builds dataclasses and enums from it."""
    hint, _ = unwrap(hint)
    if hint is Any or hint is object:
        return value
    inner = _optional_inner(hint)
    if inner is not None:
        return None if value is None else convert(value, inner, where)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is None or hint is type(None):
        if value is not None:
            raise InvalidArguments(f"`{where}` must be null")
        return None
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in _PRIMITIVES:
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise InvalidArguments(f"`{where}` must be {_a(_PRIMITIVES[hint])}")
        return value
    if origin in (typing.Union, types.UnionType):
        for a in args:
            try:
                return convert(value, a, where)
            except InvalidArguments:
                continue
        raise InvalidArguments(f"`{where}` has none of the allowed types")
    if origin is typing.Literal:
        if value not in args:
            raise InvalidArguments(f"`{where}` must be one of {list(args)}")
        return value
    if hint in (list, tuple) or origin in (list, tuple, typing.Sequence):
        if not isinstance(value, list):
            raise InvalidArguments(f"`{where}` must be an array")
        item = args[0] if args else Any
        out = [convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if tuple in (hint, origin) else out
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise InvalidArguments(f"`{where}` must be an object")
        item = args[1] if len(args) == 2 else Any
        return {k: convert(v, item, f"{where}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise InvalidArguments(f"`{where}` must be one of {[m.value for m in hint]}") from None
    if dataclasses.is_dataclass(hint) or typing.is_typeddict(hint):
        if not isinstance(value, dict):
            raise InvalidArguments(f"`{where}` must be an object")
        hints = typing.get_type_hints(hint, include_extras=True)
        optional = (
            {f.name for f in dataclasses.fields(hint) if _has_default(f)}
            if dataclasses.is_dataclass(hint)
            else set(hint.__optional_keys__)
        )
        fields = {}
        for name, h in hints.items():
            if name in value:
                fields[name] = convert(value[name], h, f"{where}.{name}")
            elif name not in optional:
                raise InvalidArguments(f"`{where}.{name}` is required")
        return hint(**fields) if dataclasses.is_dataclass(hint) else fields
    return value


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def to_json_value(value: Any) -> Any:
    """Dataclasses, enums and tuples → plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    return value
