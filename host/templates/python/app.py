"""{{id}}: a plughost plugin written in Python, with the SDK in plughost/ (rewritten by `plughost build`)."""

from typing import Annotated

from plughost import config, log, plugin, state, tool


@tool
def hello(name: Annotated[str, "Who to greet."]) -> str:
    """Greets someone by name (the greeting comes from config `greeting`)."""
    greeting = config.get("greeting", "Hello")
    count = state.get_json("greetings", 0) + 1
    state.set_json("greetings", count)
    log.info("greeted someone", name=name, count=count)
    return f"{greeting}, {name}! (greeting #{count})"


# What the host calls (componentize-py looks for `Tools`): the manifest and every @tool above.
Tools = plugin(id="{{id}}", version="0.1.0", description="Greets people and counts the greetings.")
