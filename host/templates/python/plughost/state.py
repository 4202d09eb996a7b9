"""The plugin's private key/value store (needs the `state` grant). Values are bytes; `get_json` / `set_json`
store JSON. Failures raise the SDK's typed errors (a full quota is `Unavailable`)."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from componentize_py_types import Err
from wit_world.imports import state as _raw

from .errors import InvalidArguments, ToolError, Unavailable


class Quota(NamedTuple):
    used_bytes: int
    limit_bytes: int


def _typed(e: Err) -> ToolError:
    v = e.value
    if isinstance(v, _raw.StateError_QuotaExceeded):
        return Unavailable(f"state quota exceeded ({v.value.used_bytes} of {v.value.limit_bytes} bytes used)")
    if isinstance(v, _raw.StateError_InvalidKey):
        return InvalidArguments(f"invalid state key: {v.value}")
    return Unavailable(f"state unavailable: {v.value}")


def get(key: str) -> bytes | None:
    """The value stored under `key`, or None."""
    try:
        return _raw.get(key)
    except Err as e:
        raise _typed(e) from None


def set(key: str, value: bytes | str) -> None:
    """Stores `value` (text is stored as UTF-8) under `key`."""
    data = value.encode() if isinstance(value, str) else bytes(value)
    try:
        _raw.set(key, data)
    except Err as e:
        raise _typed(e) from None


def delete(key: str) -> bool:
    """Removes `key`; True when it existed."""
    try:
        return _raw.delete(key)
    except Err as e:
        raise _typed(e) from None


def keys(prefix: str = "") -> list[str]:
    """The keys that start with `prefix`, in byte order."""
    try:
        return _raw.list_keys(prefix)
    except Err as e:
        raise _typed(e) from None


def usage() -> Quota:
    """Bytes used and allowed."""
    try:
        q = _raw.usage()
    except Err as e:
        raise _typed(e) from None
    return Quota(q.used_bytes, q.limit_bytes)


def get_json(key: str, default: Any = None) -> Any:
    """The JSON value stored under `key`, or `default`."""
    raw = get(key)
    return default if raw is None else json.loads(raw)


def set_json(key: str, value: Any) -> None:
    """Stores `value` as JSON under `key`."""
    set(key, json.dumps(value))
