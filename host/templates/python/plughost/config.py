"""The operator's settings and secrets for this plugin (needs the `config` grant). Prefer `http.secret(...)`
as a header value to `secret()`: then the plugin never holds the secret."""

from __future__ import annotations

from wit_world.imports import config as _raw


def get(key: str, default: str | None = None) -> str | None:
    """A plain setting, or `default`."""
    value = _raw.get(key)
    return default if value is None else value


def keys() -> list[str]:
    """The names of all plain settings."""
    return _raw.keys()


def has_secret(key: str) -> bool:
    """Whether a secret named `key` is configured (without revealing it)."""
    return _raw.has_secret(key)


def secret(key: str) -> str | None:
    """Reveals a secret."""
    return _raw.reveal_secret(key)
