"""Metric observations (needs the `metrics` grant). Keyword arguments are labels: `metrics.counter("fetches", zone=z)`."""

from __future__ import annotations

from wit_world.imports import metrics as _raw
from wit_world.imports.types import Pair as _Pair


def _labels(labels: dict[str, object]) -> list[_Pair]:
    return [_Pair(k, str(v)) for k, v in labels.items()]


def counter(name: str, delta: int = 1, **labels: object) -> None:
    """Adds `delta` to a counter."""
    _raw.counter_add(name, delta, _labels(labels))


def gauge(name: str, value: float, **labels: object) -> None:
    """Sets a gauge."""
    _raw.gauge_set(name, float(value), _labels(labels))


def histogram(name: str, value: float, **labels: object) -> None:
    """Records one observation in a histogram."""
    _raw.histogram_observe(name, float(value), _labels(labels))
