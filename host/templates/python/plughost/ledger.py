"""The host's usage ledger (needs the `ledger` grant): append domain events, read this plugin's usage."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from componentize_py_types import Err
from wit_world.imports import ledger as _raw

from .errors import InvalidArguments, ToolError, Unavailable


class Usage(NamedTuple):
    calls: int
    fuel: int
    cost_tokens: int
    window_start_unix: int


def _typed(e: Err) -> ToolError:
    v = e.value
    if isinstance(v, _raw.LedgerError_TooLarge):
        return InvalidArguments(f"ledger: the event is too large ({v.value} bytes)")
    if isinstance(v, _raw.LedgerError_InvalidKind):
        return InvalidArguments(f"ledger: invalid event kind `{v.value}`")
    return Unavailable(f"ledger: {v.value}")


def append(kind: str, data: Any = None) -> int:
    """Appends an event (`data` is stored as JSON); returns its sequence number."""
    try:
        return _raw.append(kind, json.dumps(data))
    except Err as e:
        raise _typed(e) from None


def usage() -> Usage:
    """This plugin's calls, fuel and cost in its current contract window."""
    try:
        u = _raw.usage()
    except Err as e:
        raise _typed(e) from None
    return Usage(u.calls, u.fuel, u.cost_tokens, u.window_start_unix)
