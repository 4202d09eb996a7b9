"""Leveled log lines (needs the `log` grant): `log.info("fetched", zone=zone, records=3)`.

Keyword arguments become the line's structured fields (values are written with `str`)."""

from __future__ import annotations

from wit_world.imports import log as _raw
from wit_world.imports.types import Pair as _Pair


def _write(level: _raw.Level, message: str, fields: dict[str, object]) -> None:
    _raw.write(level, message, [_Pair(k, str(v)) for k, v in fields.items()])


def trace(message: str, **fields: object) -> None:
    _write(_raw.Level.TRACE, message, fields)


def debug(message: str, **fields: object) -> None:
    _write(_raw.Level.DEBUG, message, fields)


def info(message: str, **fields: object) -> None:
    _write(_raw.Level.INFO, message, fields)


def warn(message: str, **fields: object) -> None:
    _write(_raw.Level.WARN, message, fields)


def error(message: str, **fields: object) -> None:
    _write(_raw.Level.ERROR, message, fields)
