"""plughost's Python SDK: write tools as typed functions.

    from plughost import tool, plugin, InvalidArguments
    from plughost import state, log        # each capability module you import is imported by the component

    @tool
    def hello(name: Annotated[str, "Who to greet."]) -> str:
        "Greets someone by name."
        ...

    Tools = plugin(id="demo", version="0.1.0", description="Greets people.")

Capabilities are modules of this package: `log`, `state`, `config`, `http`, `metrics`, `ledger`, and `progress`
(contract 0.2.0, no grant). Import them with `from plughost import state`: `plughost build` derives the world
(the WIT imports, each needing a grant) from these imports. Importing `resource` or `prompt` (contract 0.2.0)
makes the world export `resources` or `prompts`; see `plughost.offers`.
"""

from .errors import Denied, Failed, InvalidArguments, NotFound, ToolError, Unavailable, UnknownTool, Upstream
from .offers import prompt, resource
from .tools import plugin, tool

__all__ = [
    "Denied",
    "Failed",
    "InvalidArguments",
    "NotFound",
    "ToolError",
    "Unavailable",
    "UnknownTool",
    "Upstream",
    "plugin",
    "prompt",
    "resource",
    "tool",
]
