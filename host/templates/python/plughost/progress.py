"""Progress of the running call (contract 0.2.0; needs no grant): `progress.report(3, 10, "step 3")`.

The host forwards it to the MCP client as `notifications/progress` when the client asked for progress; otherwise,
and beyond the host's rate limit (one report per 50 ms; the last one saying `done == total` is kept), it is
dropped. A report never fails and never blocks. `plughost build` imports `progress` when the code imports it."""

from __future__ import annotations

from wit_world.imports import progress as _raw


def report(done: int, total: int | None = None, message: str | None = None) -> None:
    """`done` of `total` units (`total` when known; `done` should only grow); `message` says what is happening."""
    _raw.report(done, total, message)
