"""textstats: word and line statistics for a piece of text, written in Python.

Uses three host capabilities: `log` (one line per call), `state` (running totals across calls) and `config`
(`top_words`: how many frequent words to report, default 5).
"""

# componentize-py snapshots the modules imported while it builds: import at top level what the tools use
# (a module first imported inside a call, even by the standard library, is not there at run time).
import json
import re
from collections import Counter

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import tools as t
from wit_world.imports import config, log, state
from wit_world.imports.types import Pair

WORD = re.compile(r"[A-Za-z0-9']+")
STOP = {"a", "an", "and", "the", "of", "to", "in", "is", "it", "on", "for", "that", "this", "with", "as", "at"}


def fail(kind, message):
    raise Err(kind(message))


def read_counter(key):
    raw = state.get(key)
    return int(raw.decode()) if raw else 0


def analyze(args):
    text = args.get("text")
    if not isinstance(text, str):
        fail(t.ToolError_InvalidArguments, "`text` (a string) is required")
    top = args.get("top")
    if top is None:
        top = int(config.get("top_words") or "5")
    if not isinstance(top, int) or top < 0:
        fail(t.ToolError_InvalidArguments, "`top` must be a non-negative integer")
    words = [w.lower() for w in WORD.findall(text)]
    freq = Counter(w for w in words if w not in STOP)
    result = {
        "characters": len(text),
        "words": len(words),
        "lines": len(text.splitlines()) if text else 0,
        "unique_words": len(set(words)),
        "top_words": [{"word": w, "count": c} for w, c in sorted(freq.items(), key=lambda wc: (-wc[1], wc[0]))[:top]],
    }
    docs = read_counter("documents") + 1
    total = read_counter("words") + len(words)
    state.set("documents", str(docs).encode())
    state.set("words", str(total).encode())
    log.write(log.Level.INFO, "analyzed a document", [Pair("words", str(len(words))), Pair("documents", str(docs))])
    return result


def totals(_args):
    return {"documents": read_counter("documents"), "words": read_counter("words")}


def count_primes(args):
    below = args.get("below")
    if not isinstance(below, int) or below < 0:
        fail(t.ToolError_InvalidArguments, "`below` must be a non-negative integer")
    count = 0
    n = 2
    while n < below:
        d = 2
        while d * d <= n and n % d:
            d += 1
        if d * d > n:
            count += 1
        n += 1
    return {"below": below, "primes": count}


TOOLS = {
    "analyze": (
        analyze,
        "Counts characters, words, lines and the most frequent words of a text; keeps running totals.",
        {
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "The text to analyze."},
                "top": {"type": "integer", "minimum": 0, "description": "How many frequent words (default: config top_words, else 5)."},
            },
            "required": ["text"],
        },
        False,
    ),
    "totals": (totals, "Documents and words analyzed so far.", {"type": "object", "properties": {}}, True),
    "count_primes": (
        count_primes,
        "Counts the primes below a number by trial division (CPU-bound: large inputs run out of fuel).",
        {
            "type": "object",
            "properties": {"below": {"type": "integer", "minimum": 0}},
            "required": ["below"],
        },
        True,
    ),
}


class Tools(exports.Tools):
    def describe(self) -> t.Manifest:
        return t.Manifest(
            id="py-textstats",
            name="Text statistics (Python)",
            version="0.1.0",
            description="Word and line statistics with running totals; the Python example plugin.",
            tools=[
                t.Tool(
                    name=name,
                    title=None,
                    description=desc,
                    input_schema=json.dumps(schema),
                    output_schema=None,
                    annotations=t.Annotations(read_only=ro, destructive=False, idempotent=ro, open_world=False),
                )
                for name, (_, desc, schema, ro) in TOOLS.items()
            ],
        )

    def call(self, tool: str, arguments: str) -> t.Output:
        entry = TOOLS.get(tool)
        if entry is None:
            fail(t.ToolError_UnknownTool, tool)
        try:
            args = json.loads(arguments)
        except ValueError as e:
            fail(t.ToolError_InvalidArguments, f"arguments are not JSON: {e}")
        if not isinstance(args, dict):
            fail(t.ToolError_InvalidArguments, "arguments must be a JSON object")
        result = entry[0](args)
        text = json.dumps(result)
        return t.Output(content=[t.Content_Json(text)], structured=text)
