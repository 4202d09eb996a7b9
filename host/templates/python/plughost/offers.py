"""`@resource` and `@prompt` (contract 0.2.0): what a plugin offers MCP clients besides tools.

    @resource("greetings", mime="text/plain")
    def greetings() -> str:
        "How many greetings so far."
        ...

    @resource("day/{date}")               # a template: each `{variable}` is a parameter of the function
    def day(date: str) -> str: ...

    @prompt
    def welcome(name: Annotated[str, "Who to welcome."]) -> str:
        "Writes a welcome note for someone."
        return f"Write a short welcome note for {name}."

Clients read `plughost://plugins/<id>/r/greetings` and render the prompt `<id>__welcome`. `plughost build`
exports `resources` (`prompts`) when the code imports `resource` (`prompt`) from plughost; `plugin(...)` then
also defines the `Resources` and `Prompts` exports next to `Tools`. Each read and render runs like a tool call
(its own instance, fuel, grants, ledger); raise a `ToolError` (e.g. `NotFound`) to refuse one.
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass
from typing import Any, Callable

from .errors import InvalidArguments, NotFound
from .schema import unwrap


@dataclass
class _Resource:
    fn: Callable[..., Any]
    path: str
    name: str
    title: str | None
    description: str | None
    mime: str | None
    pattern: re.Pattern[str] | None


@dataclass
class _Prompt:
    fn: Callable[..., Any]
    name: str
    title: str | None
    description: str | None
    # (name, description, required)
    arguments: list[tuple[str, str | None, bool]]


_RESOURCES: dict[str, _Resource] = {}
_PROMPTS: dict[str, _Prompt] = {}
_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")
_VAR = re.compile(r"\{([a-z0-9_]+)\}")


def resource(
    path: str, *, mime: str | None = None, name: str | None = None, title: str | None = None,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Makes a function a resource at `path` (relative to the plugin, e.g. `today` or `notes/{day}`: a path with
    `{variables}` is a template, and the function gets each variable as a keyword argument). It returns the body:
    `str` is text, `bytes` a blob. Its docstring is the description; `mime` the MIME type."""

    def register(f: Callable[..., Any]) -> Callable[..., Any]:
        if path in _RESOURCES:
            raise ValueError(f"two resources have path `{path}`")
        variables = _VAR.findall(path)
        pattern = None
        if variables:
            parts = _VAR.split(path)
            regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
            pattern = re.compile(f"^{regex}$")
        summary = _summary(f.__doc__)
        _RESOURCES[path] = _Resource(
            fn=f, path=path, name=name or f.__name__, title=title, description=description or summary, mime=mime,
            pattern=pattern,
        )
        return f

    return register


def prompt(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, title: str | None = None,
    description: str | None = None,
) -> Any:
    """Makes a function a prompt. Its parameters are the arguments (strings; required unless they have a default;
    described by `Annotated[str, "..."]` or an `Args:` docstring section), its docstring the description. It
    returns the messages: a `str` is one user message, else a list of `(role, text)` with role `"user"` or
    `"assistant"`. Use as `@prompt` or `@prompt(name=...)`."""

    def register(f: Callable[..., Any]) -> Callable[..., Any]:
        from .tools import _docstring

        prompt_name = name or f.__name__
        if not _NAME.match(prompt_name):
            raise ValueError(f"prompt name `{prompt_name}` must match [a-z0-9_-]{{1,64}}")
        if prompt_name in _PROMPTS:
            raise ValueError(f"two prompts are named `{prompt_name}`")
        summary, arg_docs = _docstring(f.__doc__ or "")
        hints = typing.get_type_hints(f, include_extras=True)
        arguments = []
        for p in inspect.signature(f).parameters.values():
            extra = unwrap(hints.get(p.name, str))[1]
            doc = extra.get("description") or arg_docs.get(p.name)
            arguments.append((p.name, doc, p.default is inspect.Parameter.empty))
        _PROMPTS[prompt_name] = _Prompt(
            fn=f, name=prompt_name, title=title, description=description or summary or None, arguments=arguments
        )
        return f

    return register(fn) if fn is not None else register


def _summary(doc: str | None) -> str | None:
    text = inspect.cleandoc(doc or "")
    return " ".join(text.split("\n\n", 1)[0].split()) or None


def exports_into(namespace: dict[str, Any], wit_error: Callable[[Any], Any]) -> None:
    """Defines `Resources` and `Prompts` in the app module, for each of them the world exports."""
    from componentize_py_types import Err
    from wit_world import exports

    from .errors import ToolError

    if hasattr(exports, "Resources"):
        from wit_world.exports import resources as r

        listing = r.Listing(
            resources=[
                r.Resource(path=x.path, name=x.name, title=x.title, description=x.description, mime_type=x.mime)
                for x in _RESOURCES.values() if x.pattern is None
            ],
            templates=[
                r.Template(path_template=x.path, name=x.name, title=x.title, description=x.description,
                           mime_type=x.mime)
                for x in _RESOURCES.values() if x.pattern is not None
            ],
        )

        class Resources(exports.Resources):
            def list(self) -> Any:
                return listing

            def read(self, path: str) -> Any:
                try:
                    return [_read(r, path)]
                except ToolError as e:
                    raise Err(wit_error(e)) from None

        namespace["Resources"] = Resources

    if hasattr(exports, "Prompts"):
        from wit_world.exports import prompts as pr

        listed = [
            pr.Prompt(
                name=x.name, title=x.title, description=x.description,
                arguments=[pr.Argument(name=n, title=None, description=d, required=req) for n, d, req in x.arguments],
            )
            for x in _PROMPTS.values()
        ]

        class Prompts(exports.Prompts):
            def list(self) -> Any:
                return listed

            def get(self, name: str, arguments: Any) -> Any:
                try:
                    return _render(pr, name, {a.key: a.value for a in arguments})
                except ToolError as e:
                    raise Err(wit_error(e)) from None

        namespace["Prompts"] = Prompts


def _read(r: Any, path: str) -> Any:
    entry, kwargs = _RESOURCES.get(path), {}
    if entry is not None and entry.pattern is not None:
        entry = None
    if entry is None:
        for x in _RESOURCES.values():
            m = x.pattern.match(path) if x.pattern else None
            if m:
                entry, kwargs = x, m.groupdict()
                break
    if entry is None:
        raise NotFound(f"no resource at `{path}`")
    body = entry.fn(**kwargs)
    if isinstance(body, (bytes, bytearray)):
        return r.Contents(path=path, mime_type=entry.mime, body=r.Body_Blob(bytes(body)))
    return r.Contents(path=path, mime_type=entry.mime, body=r.Body_Text(str(body)))


def _render(pr: Any, name: str, args: dict[str, str]) -> Any:
    entry = _PROMPTS.get(name)
    if entry is None:
        raise NotFound(f"no prompt named `{name}`")
    known = {n for n, _, _ in entry.arguments}
    unknown = sorted(set(args) - known)
    if unknown:
        raise InvalidArguments(f"unknown argument `{unknown[0]}`")
    out = entry.fn(**args)
    if isinstance(out, str):
        out = [("user", out)]
    messages = []
    for role, text in out:
        if role not in ("user", "assistant"):
            raise ValueError(f"a message's role is `user` or `assistant`, not `{role}`")
        messages.append(pr.Message(role=pr.Role.USER if role == "user" else pr.Role.ASSISTANT, text=str(text)))
    return pr.Rendered(description=entry.description, messages=messages)
