"""Every secret value Lockstep holds right now, for `sync.redact.scrub` to cover without callers.

The adapters `register` each SecretStr where a value enters memory: a Key Vault read, a Dataverse
value row (the previous value, possibly a credential still valid). References are weak, so a
value is covered for exactly as long as something in the process holds it: across a run's
tasks, with no scope to open or forget, and forgotten when the run drops it. Concurrent runs in
one worker cover each other's values too, which only masks more.

What scrub needs is kept indexed, lazily (a run without a failure never pays for it): the
folded FRAGMENT-long runs ("grams") of each value's forms, with a count per gram so a value that
dies takes its grams with it, and the whole forms shorter than LONG (to tell a value from a word
it shares a few letters with, and to find values too short to mask).
"""

from __future__ import annotations

import threading
import weakref
from functools import partial

from pydantic import SecretStr

from sync.redact_views import fold

FRAGMENT = 6
LONG = 12

Ref = weakref.ref[SecretStr]


def forms(value: str) -> set[str]:
    """The folded forms a service may echo: as is, trimmed, inner spaces collapsed, upper- and
    lower-cased (where the case change alters the length, 'ß' → 'SS', 'İ' → 'i̇', folding the echo
    cannot find the value)."""
    spaced = (value, value.strip(), " ".join(value.split()))
    cased = (*(form.upper() for form in spaced), *(form.lower() for form in spaced))
    found = {fold(form) for form in (*spaced, *cased)}
    return {form for form in found if form.strip()}


def split(value: str) -> tuple[set[str], set[str]]:
    """(the FRAGMENT-grams of its forms, its forms shorter than LONG) of one value."""
    grams: set[str] = set()
    small: set[str] = set()
    for form in forms(value):
        if len(form) < LONG:
            small.add(form)
        grams.update(form[i : i + FRAGMENT] for i in range(len(form) - FRAGMENT + 1))
    return grams, small


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refs: dict[int, Ref] = {}
        self._pending: list[tuple[int, Ref]] = []
        self._dead: list[tuple[int, Ref]] = []  # appended by GC callbacks only
        self._indexed: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self.grams: dict[str, int] = {}
        self._small: dict[str, int] = {}

    def register(self, value: SecretStr) -> None:
        if not value.get_secret_value():
            return
        key = id(value)
        with self._lock:
            self._purge()
            known = self._refs.get(key)
            if known is not None and known() is value:
                return
            self._unindex(key)
            ref = weakref.ref(value, partial(self._died, key))
            self._refs[key] = ref
            self._pending.append((key, ref))

    def _died(self, key: int, ref: Ref) -> None:
        """GC callback: it may run inside any code, even under the lock, so it only appends."""
        self._dead.append((key, ref))

    def _purge(self) -> None:
        while self._dead:
            key, ref = self._dead.pop()
            if self._refs.get(key) is ref:
                del self._refs[key]
                self._unindex(key)

    def _unindex(self, key: int) -> None:
        grams, small = self._indexed.pop(key, ((), ()))
        for counts, items in ((self.grams, grams), (self._small, small)):
            for item in items:
                counts[item] -= 1
                if not counts[item]:
                    del counts[item]

    def values(self) -> set[str]:
        """The distinct values registered and alive."""
        with self._lock:
            self._purge()
            refs = list(self._refs.values())
        return {value.get_secret_value() for value in (ref() for ref in refs) if value is not None}

    def index(self) -> tuple[dict[str, int], set[str]]:
        """(gram -> count, forms shorter than LONG), with every pending registration indexed."""
        with self._lock:
            self._purge()
            for key, ref in self._pending:
                value = ref()
                if value is None or self._refs.get(key) is not ref:
                    continue
                grams, small = split(value.get_secret_value())
                self._indexed[key] = (tuple(grams), tuple(small))
                for counts, items in ((self.grams, grams), (self._small, small)):
                    for item in items:
                        counts[item] = counts.get(item, 0) + 1
            self._pending.clear()
            return self.grams, set(self._small)


REGISTRY = Registry()
