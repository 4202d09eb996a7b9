"""{{id}}: a plughost plugin written in Python (built with componentize-py by `plughost build`).

The host calls `Tools.describe()` once to learn the tools, then `Tools.call(tool, arguments)` for every call, each
time in a fresh sandbox. Host capabilities are plain modules: `log`, `state` and `config` here (see
wit/world.wit). Raise `Err(ToolError_...)` to fail a call with a typed error.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import tools as t
from wit_world.imports import config, log, state
from wit_world.imports.types import Pair

HELLO_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "description": "Who to greet."}},
    "required": ["name"],
}


def hello(args):
    name = args.get("name")
    if not isinstance(name, str):
        raise Err(t.ToolError_InvalidArguments("`name` (a string) is required"))
    greeting = config.get("greeting") or "Hello"
    raw = state.get("greetings")
    count = (int(raw.decode()) if raw else 0) + 1
    state.set("greetings", str(count).encode())
    log.write(log.Level.INFO, "greeted someone", [Pair("name", name), Pair("count", str(count))])
    return f"{greeting}, {name}! (greeting #{count})"


class Tools(exports.Tools):
    def describe(self) -> t.Manifest:
        return t.Manifest(
            id="{{id}}",
            name="{{id}}",
            version="0.1.0",
            description="Greets people and counts the greetings.",
            tools=[
                t.Tool(
                    name="hello",
                    title="Hello",
                    description="Greets someone by name (the greeting comes from config `greeting`).",
                    input_schema=json.dumps(HELLO_SCHEMA),
                    output_schema=None,
                    annotations=t.Annotations(read_only=False, destructive=False, idempotent=False, open_world=False),
                )
            ],
        )

    def call(self, tool: str, arguments: str) -> t.Output:
        try:
            args = json.loads(arguments)
        except ValueError as e:
            raise Err(t.ToolError_InvalidArguments(f"arguments are not JSON: {e}"))
        if tool == "hello":
            return t.Output(content=[t.Content_Text(hello(args))], structured=None)
        raise Err(t.ToolError_UnknownTool(tool))
