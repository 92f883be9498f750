"""Last-line scrubbing for text that crosses a trust boundary (error bodies from remote services).

Values are kept in SecretStr, which covers our own formatting. A remote service, though, may
echo what it was sent, or what a row held before, in an error message: raw, JSON-escaped,
percent-encoded, trimmed, cut short. Three rules keep every form of every value out:

- **Every held value, without being passed.** The adapters `register` each SecretStr where a
  value enters memory (a Key Vault read, a Dataverse value row: the previous value too). The
  registry holds weak references, so a value is covered for exactly as long as Lockstep holds
  it, across the run's tasks, with no scope to open or forget; `scrub` covers all of them (plus
  any passed explicitly, as before).
- **Every form.** The text is decoded (JSON escapes, twice; percent-encoding; HTML entities; see
  sync.redact_views) and compared case-insensitively; in a remote message any run of FRAGMENT or
  more characters of a value (trimmed or truncated echoes, one value a prefix of another) is
  masked in the original; in other text (our words around it) runs of LONG or more, or whole
  values.
- **Short values withhold the whole text.** Masking every "a" of a one-character value spells the
  value out, so a value shorter than FRAGMENT that stands in the text withholds all of it (for
  remote messages: anywhere in it; the service's error code is kept).

Remote messages (`redact_remote`) also lose quoted text: a service quotes what it echoes.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable
from dataclasses import dataclass

from pydantic import SecretStr

from sync.redact_registry import FRAGMENT, LONG, REGISTRY, split
from sync.redact_views import Span, View, fold, merge, views

MASK = "***"
WITHHELD = "(text withheld: it may contain a secret value)"
WITHHELD_REMOTE = "(message withheld: it may repeat a secret value)"
MAX_REMOTE_CHARS = 4000
_CODE = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_QUOTES = (
    ("'", "'"),
    ('"', '"'),
    ("`", "`"),
    ("\u2018", "\u2019"),
    ("\u201c", "\u201d"),
    ("\u00ab", "\u00bb"),
)
_QUOTED = [(re.compile(rf"(?<!\w){o}.*?{c}(?!\w)", re.S), f"{o}…{c}") for o, c in _QUOTES]


def register(*values: SecretStr | None) -> None:
    """Covers each value in every later `scrub` for as long as something holds it."""
    for value in values:
        if value is not None:
            REGISTRY.register(value)


def held_values() -> set[str]:
    """The distinct values registered and still held."""
    return REGISTRY.values()


@dataclass(frozen=True)
class _Index:
    grams: list[Container[str]]  # FRAGMENT-grams of every form
    small: set[str]  # forms shorter than LONG

    @property
    def empty(self) -> bool:
        return not self.small and not any(self.grams)

    def short(self) -> set[str]:
        return {form for form in self.small if len(form) < FRAGMENT}


def _index(secrets: Iterable[SecretStr | None]) -> _Index:
    """The registry's index, with the values passed explicitly."""
    grams, small = REGISTRY.index()
    extra: set[str] = set()
    for secret in secrets:
        if secret is not None:
            more_grams, more_small = split(secret.get_secret_value())
            extra |= more_grams
            small = small | more_small
    return _Index([grams, extra], small)


def _runs(folded: str, index: _Index) -> list[Span]:
    """Maximal stretches of `folded` whose every FRAGMENT-long window is a gram of some value."""
    runs: list[Span] = []
    for position in range(len(folded) - FRAGMENT + 1):
        gram = folded[position : position + FRAGMENT]
        if any(gram in grams for grams in index.grams):
            if runs and runs[-1][1] == position + FRAGMENT - 1:
                runs[-1] = (runs[-1][0], position + FRAGMENT)
            else:
                runs.append((position, position + FRAGMENT))
    return runs


def _is_value(folded: str, run: Span, index: _Index) -> bool:
    """A run shorter than LONG counts only when a whole form of a value lies in it: our own prose
    shares words with values ("rotate" with "rotated-…"), and those stay."""
    start, end = run
    return end - start >= LONG or any(
        folded[i:j] in index.small for i in range(start, end) for j in range(i + FRAGMENT, end + 1)
    )


def _hits(found: list[View], index: _Index, *, remote: bool) -> list[Span]:
    """Spans of the original text to mask: runs of values in any view, mapped back."""
    hits: list[Span] = []
    for text, spans in found:
        folded = fold(text)
        for run in _runs(folded, index):
            if remote or _is_value(folded, run, index):
                hits.append((spans[run[0]][0], spans[run[1] - 1][1]))
    return hits


def _stands_alone(text: str, form: str) -> bool:
    """True when `form` occurs with no letter or digit right before or after it."""
    start = text.find(form)
    while start >= 0:
        end = start + len(form)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not before.isalnum() and not after.isalnum():
            return True
        start = text.find(form, start + 1)
    return False


def _short_found(found: list[View], index: _Index, *, remote: bool) -> bool:
    short = index.short()
    for text, _ in found:
        folded = fold(text)
        for form in short:
            if (form in folded) if remote else _stands_alone(folded, form):
                return True
    return False


def _mask(text: str, spans: list[Span]) -> str:
    parts: list[str] = []
    position = 0
    for start, end in merge(spans):
        parts.append(text[position:start])
        parts.append(MASK)
        position = end
    parts.append(text[position:])
    return "".join(parts)


def _clean(text: str, index: _Index, *, remote: bool) -> str | None:
    """The text with every form masked, or None when it must be withheld.

    Remote text is the service's alone: any FRAGMENT-long run of a value goes, and a short value
    anywhere withholds it. Other text mixes our words with remote parts (already redacted): runs
    of LONG or more, or holding a whole value, go; a short value standing alone withholds it.
    """
    found = views(text)
    if _short_found(found, index, remote=remote):
        return None
    hits = _hits(found, index, remote=remote)
    if not hits:
        return text
    masked = _mask(text, hits)
    recheck = views(masked)
    if _hits(recheck, index, remote=remote) or _short_found(recheck, index, remote=remote):
        return None  # masking left a form behind: show nothing rather than guess
    return masked


def scrub(text: str, *secrets: SecretStr | None) -> str:
    """Masks every form of every held value, and of `secrets`, in text (WITHHELD when it must)."""
    if not text:
        return text
    index = _index(secrets)
    if index.empty:
        return text
    cleaned = _clean(text, index, remote=False)
    return WITHHELD if cleaned is None else cleaned


def redact_remote(message: str, *secrets: SecretStr | None) -> str:
    """A remote service's error message made safe to show: bounded, quoted text dropped, every
    form of every held value masked, shortened; WITHHELD_REMOTE when a short value occurs in it."""
    text = message[:MAX_REMOTE_CHARS]
    for pattern, replacement in _QUOTED:
        text = pattern.sub(replacement, text)
    index = _index(secrets)
    cleaned = _clean(text, index, remote=True)
    if cleaned is None:
        return WITHHELD_REMOTE
    shortened = shorten(cleaned)
    if _clean(shortened, index, remote=True) != shortened:
        return WITHHELD_REMOTE  # collapsing whitespace made a form appear
    return shortened


def remote_code(code: str, *secrets: SecretStr | None) -> str:
    """A service's error code when it looks like one (and is no value's form); otherwise ""."""
    if not _CODE.fullmatch(code):
        return ""
    return code if _clean(code, _index(secrets), remote=False) == code else ""


def shorten(text: str, limit: int = 300) -> str:
    """Keeps remote error messages readable in a log line and a card."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
