"""{{id}}: a plughost plugin written in Python, with the SDK in plughost/ (rewritten by `plughost build`)."""

from typing import Annotated

from plughost import config, log, plugin, prompt, resource, state, tool


@tool
def hello(name: Annotated[str, "Who to greet."]) -> str:
    """Greets someone by name (the greeting comes from config `greeting`)."""
    greeting = config.get("greeting", "Hello")
    count = state.get_json("greetings", 0) + 1
    state.set_json("greetings", count)
    log.info("greeted someone", name=name, count=count)
    return f"{greeting}, {name}! (greeting #{count})"


@resource("greetings", mime="text/plain")
def greetings() -> str:
    """How many greetings so far (contract 0.2.0): clients read `plughost://plugins/{{id}}/r/greetings`."""
    return f"{state.get_json('greetings', 0)} greetings so far"


@prompt
def welcome(name: Annotated[str, "Who to welcome."]) -> str:
    """Writes a welcome note for someone (contract 0.2.0): clients render `{{id}}__welcome`."""
    return f"Write a short welcome note for {name}."


# What the host calls (componentize-py looks for `Tools`): the manifest and every @tool above; it also defines
# `Resources` and `Prompts` from the @resource and @prompt above.
Tools = plugin(id="{{id}}", version="0.1.0", description="Greets people and counts the greetings.")
