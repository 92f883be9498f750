"""Decoded views of a text, each character mapped back to where it came from.

A remote service may echo a value escaped for JSON (`p\\"ss\\u00f6`), escaped twice (JSON in a
JSON string), percent-encoded, or as HTML entities. Rather than encode every value in every
way (which misses mixed or upper-case escapes), the text is decoded in each of those ways, up
to two layers deep; a value found in a decoded view is masked over the span of the original
text its characters came from. Pure functions: no values here, only text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

Span = tuple[int, int]
# A view: the decoded text and, for each of its characters, the span of the original text.
View = tuple[str, list[Span]]

_JSON = re.compile(r"(?:\\u[0-9a-fA-F]{4})+|\\x[0-9a-fA-F]{2}|\\[\\\"'/bfnrt]")
_PERCENT = re.compile(r"(?:%[0-9a-fA-F]{2})+")
_PERCENT_PLUS = re.compile(r"(?:%[0-9a-fA-F]{2})+|\+")
_HTML = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,9});")
_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
MAX_DEPTH = 2


def _json(escape: str) -> str:
    if escape.startswith("\\u"):
        units = bytes.fromhex("".join(escape[i + 2 : i + 6] for i in range(0, len(escape), 6)))
        return units.decode("utf-16-be", errors="surrogatepass")
    if escape.startswith("\\x"):
        return chr(int(escape[2:], 16))
    return _SIMPLE.get(escape[1], escape[1])


def _percent(escape: str) -> str:
    if escape == "+":
        return " "
    return bytes.fromhex(escape.replace("%", "")).decode("utf-8", errors="replace")


DECODERS: tuple[tuple[re.Pattern[str], Callable[[str], str]], ...] = (
    (_JSON, _json),
    (_PERCENT, _percent),
    (_PERCENT_PLUS, _percent),
    (_HTML, html.unescape),
)


def identity(text: str) -> View:
    return text, [(index, index + 1) for index in range(len(text))]


def decode(view: View, pattern: re.Pattern[str], decoder: Callable[[str], str]) -> View:
    """The view with each escape `pattern` matches decoded; decoded characters map to the escape."""
    text, spans = view
    out: list[str] = []
    out_spans: list[Span] = []
    position = 0
    for match in pattern.finditer(text):
        start, end = match.span()
        out.append(text[position:start])
        out_spans.extend(spans[position:start])
        decoded = decoder(match.group())
        out.append(decoded)
        out_spans.extend([(spans[start][0], spans[end - 1][1])] * len(decoded))
        position = end
    out.append(text[position:])
    out_spans.extend(spans[position:])
    return "".join(out), out_spans


def views(text: str) -> list[View]:
    """The text itself and every distinct decoding of it, up to MAX_DEPTH layers."""
    found = [identity(text)]
    seen = {text}
    frontier = list(found)
    for _ in range(MAX_DEPTH):
        next_frontier: list[View] = []
        for view in frontier:
            for pattern, decoder in DECODERS:
                if not pattern.search(view[0]):
                    continue
                decoded = decode(view, pattern, decoder)
                if decoded[0] not in seen:
                    seen.add(decoded[0])
                    next_frontier.append(decoded)
        found.extend(next_frontier)
        frontier = next_frontier
    return found


def fold(text: str) -> str:
    """Lower case without changing the length (so positions stay valid)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def merge(spans: list[Span]) -> list[Span]:
    """Overlapping or touching spans joined, in order."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
