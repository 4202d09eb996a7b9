"""`@tool` and `plugin(...)`: tools from typed functions, and the export the host calls."""

from __future__ import annotations

import inspect
import json
import sys
import re
import typing
from dataclasses import dataclass
from typing import Any, Callable

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import tools as t

from .errors import InvalidArguments, ToolError, UnknownTool, Upstream
from .schema import unwrap, convert, schema_of, to_json_value


@dataclass
class _Tool:
    fn: Callable[..., Any]
    name: str
    title: str | None
    description: str
    params: dict[str, tuple[Any, bool]]
    input_schema: str
    output_schema: str | None
    annotations: t.Annotations


_TOOLS: dict[str, _Tool] = {}
_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
    read_only: bool | None = None,
    destructive: bool | None = None,
    idempotent: bool | None = None,
    open_world: bool | None = None,
    long_running: bool = False,
) -> Any:
    """Makes a function a tool. Its parameters are the arguments (JSON Schema from the type hints, required unless
    they have a default), its docstring the description (an `Args:` section describes the parameters), its return
    type the output: `str` is text, anything else JSON (a dataclass, TypedDict or dict also gives an output schema
    and structured content). Use as `@tool` or `@tool(read_only=True, ...)`. `long_running=True` declares that the
    tool may run long: an MCP client that supports tasks then gets a task for a call and polls for its result."""

    def register(f: Callable[..., Any]) -> Callable[..., Any]:
        tool_name = name or f.__name__
        if not _NAME.match(tool_name):
            raise ValueError(f"tool name `{tool_name}` must match [a-z0-9_-]{{1,64}}")
        if tool_name in _TOOLS:
            raise ValueError(f"two tools are named `{tool_name}`")
        summary, arg_docs = _docstring(f.__doc__ or "")
        hints = typing.get_type_hints(f, include_extras=True)
        props: dict[str, Any] = {}
        params: dict[str, tuple[Any, bool]] = {}
        for p in inspect.signature(f).parameters.values():
            hint = hints.get(p.name, Any)
            schema = schema_of(hint)
            # An `Annotated` description wins over the docstring's, which wins over a dataclass's own docstring.
            if p.name in arg_docs and "description" not in unwrap(hint)[1]:
                schema["description"] = arg_docs[p.name]
            props[p.name] = schema
            params[p.name] = (hint, p.default is inspect.Parameter.empty)
        input_schema: dict[str, Any] = {"type": "object", "properties": props}
        required = [n for n, (_, req) in params.items() if req]
        if required:
            input_schema["required"] = required
        if long_running:
            # The manifest's place for it (the host takes it out of the schema clients see).
            input_schema["x-plughost-long-running"] = True
        out = schema_of(hints["return"]) if "return" in hints else None
        output_schema = json.dumps(out) if out and out.get("type") == "object" else None
        _TOOLS[tool_name] = _Tool(
            fn=f,
            name=tool_name,
            title=title,
            description=description or summary or tool_name,
            params=params,
            input_schema=json.dumps(input_schema),
            output_schema=output_schema,
            annotations=t.Annotations(
                read_only=read_only, destructive=destructive, idempotent=idempotent, open_world=open_world
            ),
        )
        return f

    return register(fn) if fn is not None else register


def _docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(first paragraph, {parameter: description} from an `Args:` section)."""
    text = inspect.cleandoc(doc)
    summary = " ".join(text.split("\n\n", 1)[0].split()) if text else ""
    args: dict[str, str] = {}
    section = re.search(r"^(?:Args|Arguments|Parameters):\s*\n((?:[ \t]+.*\n?|\s*\n)+)", text, re.M)
    if section:
        current = None
        for line in section.group(1).splitlines():
            m = re.match(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", line)
            if m:
                current = m.group(1)
                args[current] = m.group(2).strip()
            elif current and line.strip():
                args[current] += " " + line.strip()
    if section and summary.startswith(("Args:", "Arguments:", "Parameters:")):
        summary = ""
    return summary, args


def plugin(*, id: str, version: str, description: str, name: str | None = None) -> type:
    """The export the host calls: assign it to `Tools` in the app module (componentize-py looks for that name).
    The manifest lists every `@tool` defined before this call. When the world exports resources or prompts
    (contract 0.2.0: the code uses `@resource` or `@prompt`), it also defines `Resources` and `Prompts` in the
    calling module, from every `@resource` and `@prompt` defined before this call."""
    from .offers import exports_into

    exports_into(sys._getframe(1).f_globals, _wit_error)
    manifest = t.Manifest(
        id=id,
        name=name or id,
        version=version,
        description=description,
        tools=[
            t.Tool(
                name=x.name,
                title=x.title,
                description=x.description,
                input_schema=x.input_schema,
                output_schema=x.output_schema,
                annotations=x.annotations,
            )
            for x in _TOOLS.values()
        ],
    )

    class Tools(exports.Tools):
        def describe(self) -> t.Manifest:
            return manifest

        def call(self, tool: str, arguments: str) -> t.Output:
            try:
                return _call(tool, arguments)
            except ToolError as e:
                raise Err(_wit_error(e)) from None

    return Tools


def _call(name: str, arguments: str) -> t.Output:
    entry = _TOOLS.get(name)
    if entry is None:
        raise UnknownTool(name)
    try:
        args = json.loads(arguments) if arguments.strip() else {}
    except ValueError as e:
        raise InvalidArguments(f"arguments are not JSON: {e}") from None
    if not isinstance(args, dict):
        raise InvalidArguments("arguments must be a JSON object")
    kwargs = {}
    for pname, (hint, required) in entry.params.items():
        if pname in args:
            kwargs[pname] = convert(args[pname], hint, pname)
        elif required:
            raise InvalidArguments(f"`{pname}` is required")
    return _output(entry.fn(**kwargs))


def _output(result: Any) -> t.Output:
    if isinstance(result, str):
        return t.Output(content=[t.Content_Text(result)], structured=None)
    if result is None:
        return t.Output(content=[], structured=None)
    value = to_json_value(result)
    text = json.dumps(value)
    return t.Output(content=[t.Content_Json(text)], structured=text if isinstance(value, dict) else None)


def _wit_error(e: ToolError) -> Any:
    if isinstance(e, Upstream):
        return t.ToolError_Upstream(
            t.UpstreamError(
                status=e.status, code=e.code, message=e.message, retry_after_seconds=e.retry_after_seconds
            )
        )
    kinds = {
        "invalid-arguments": t.ToolError_InvalidArguments,
        "unknown-tool": t.ToolError_UnknownTool,
        "denied": t.ToolError_Denied,
        "not-found": t.ToolError_NotFound,
        "unavailable": t.ToolError_Unavailable,
    }
    return kinds.get(e.kind, t.ToolError_Failed)(e.message)
