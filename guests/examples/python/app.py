"""textstats: word and line statistics for a piece of text, written in Python with the plughost SDK.

Uses `log` (one line per call), `state` (running totals across calls), `config` (`top_words`: how many frequent
words to report, default 5) and `http` (`fetch_stats` reads a text from a granted origin).
"""

# componentize-py snapshots the modules imported while it builds: import at top level what the tools use
# (a module first imported inside a call, even by the standard library, is not there at run time).
import re
from collections import Counter
from typing import Annotated, TypedDict

from plughost import InvalidArguments, Upstream, config, http, log, plugin, state, tool

WORD = re.compile(r"[A-Za-z0-9']+")
STOP = {"a", "an", "and", "the", "of", "to", "in", "is", "it", "on", "for", "that", "this", "with", "as", "at"}


class WordCount(TypedDict):
    word: str
    count: int


class Stats(TypedDict):
    characters: int
    words: int
    lines: int
    unique_words: int
    top_words: list[WordCount]


class Totals(TypedDict):
    documents: int
    words: int


def stats(text: str, top: int | None) -> Stats:
    if top is None:
        top = int(config.get("top_words", "5"))
    if top < 0:
        raise InvalidArguments("`top` must be a non-negative integer")
    words = [w.lower() for w in WORD.findall(text)]
    freq = Counter(w for w in words if w not in STOP)
    ranked = sorted(freq.items(), key=lambda wc: (-wc[1], wc[0]))[:top]
    docs = state.get_json("documents", 0) + 1
    state.set_json("documents", docs)
    state.set_json("words", state.get_json("words", 0) + len(words))
    log.info("analyzed a document", words=len(words), documents=docs)
    return {
        "characters": len(text),
        "words": len(words),
        "lines": len(text.splitlines()) if text else 0,
        "unique_words": len(set(words)),
        "top_words": [{"word": w, "count": c} for w, c in ranked],
    }


@tool
def analyze(
    text: Annotated[str, "The text to analyze."],
    top: Annotated[int | None, "How many frequent words (default: config top_words, else 5).", {"minimum": 0}] = None,
) -> Stats:
    """Counts characters, words, lines and the most frequent words of a text; keeps running totals."""
    return stats(text, top)


@tool(open_world=True)
def fetch_stats(url: Annotated[str, "An http(s) URL of a granted origin that serves text."]) -> Stats:
    """Fetches a text over HTTP and analyzes it like `analyze` (counted in the totals too)."""
    response = http.get(url, headers={"Accept": "text/plain"})
    if not response.ok:
        raise Upstream(f"{url} answered {response.status}", status=response.status)
    return stats(response.text, None)


@tool(read_only=True, idempotent=True)
def totals() -> Totals:
    """Documents and words analyzed so far."""
    return {"documents": state.get_json("documents", 0), "words": state.get_json("words", 0)}


@tool(read_only=True, idempotent=True)
def count_primes(below: Annotated[int, {"minimum": 0}]) -> dict[str, int]:
    """Counts the primes below a number by trial division (CPU-bound: large inputs run out of fuel)."""
    if below < 0:
        raise InvalidArguments("`below` must be a non-negative integer")
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


Tools = plugin(
    id="py-textstats",
    name="Text statistics (Python)",
    version="0.1.0",
    description="Word and line statistics with running totals; the Python example plugin.",
)
