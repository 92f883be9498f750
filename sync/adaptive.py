"""Adaptive Card building blocks, and the escaping of text Lockstep did not write.

TextBlock and FactSet text is Markdown in Teams: a flow named `[Re-authorise here](https://…)`
must not become a link inside a card people trust, so every name and message someone else
controls goes through `literal`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"

# Markdown's active characters in the Adaptive Card subset and in Teams' renderers: backslash
# escapes (CommonMark) keep them literal where escapes are honoured; where a client shows the
# backslash (older Teams mobile) the syntax is still broken, never rendered.
_ACTIVE = re.compile(r"([\\`*_\[\]<>~#|{}!])")
_LIST_MARKER = re.compile(r"^(\s*)([-+]|\d+\.)(?=\s)")
# A zero-width space after ':' in '://' and after a '.' inside a name stops auto-linking of URLs
# and bare domains (evil.example) and is invisible.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=\.)(?=[0-9A-Za-z])|(?<=www)(?=\.)", re.IGNORECASE)
ZWSP = "\u200b"


def literal(text: str) -> str:
    """Others' text as Markdown that renders it literally: one line, no control characters, every
    Markdown token escaped, no auto-link."""
    text = "".join(
        " " if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char
        for char in text
        if unicodedata.category(char) != "Cf" or char == ZWSP
    )
    text = _ACTIVE.sub(r"\\\1", text)
    text = _LIST_MARKER.sub(lambda m: f"{m[1]}\\{m[2]}" if m[2] in "-+" else f"{m[1]}{m[2][:-1]}\\.", text)
    return _AUTOLINK.sub(ZWSP, text)


def text_block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def adaptive_card(body: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "AdaptiveCard", "$schema": SCHEMA, "version": "1.4", "body": body}
