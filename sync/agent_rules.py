"""Pure rules for Copilot Studio agents: who uses a variable, who may be published, in what order.

Publishing ships an agent's current *draft*, so an agent a maker is still editing must not be
published by a rotation: that would release their unfinished work. And an agent that calls
another agent should find the other one already carrying the new value, so the called one is
published first. These decisions need no I/O and are tested without a network.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sync.models import AgentOutcome

UNPUBLISHED = "has unpublished changes; publish it to pick up the new value"
NEVER_PUBLISHED = "never published: nothing to refresh"


@dataclass(frozen=True)
class Agent:
    """A `bots` row: names and the moment it was last published (None: never)."""

    id: str
    name: str
    schema_name: str
    published_on: datetime | None


@dataclass(frozen=True)
class Draft:
    """What an agent's components say about it: its newest edit and the agents it names."""

    last_modified: datetime | None
    names: frozenset[str]  # lower-case schema names of other agents found in its components


def env_reference(schema_name: str) -> re.Pattern[str]:
    """`Env.<schema name>` as a whole Power Fx identifier (also quoted: `Env.'<schema name>'`).

    Not `Env.<schema name>Suffix`, not `MyEnv.<schema name>`; the schema name matches in any
    case (Dataverse schema names are unique regardless of case).
    """
    name = re.escape(schema_name)
    return re.compile(rf"(?<![\w.])Env\.(?:(?i:{name})(?!\w)|'(?i:{name})')")


def names_pattern(schema_names: Collection[str]) -> re.Pattern[str] | None:
    """Any of the schema names as a whole identifier, in any case; None for no names."""
    if not schema_names:
        return None
    alternatives = "|".join(re.escape(name) for name in sorted(schema_names, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def names_in(text: str, pattern: re.Pattern[str] | None) -> set[str]:
    """The schema names (lower case) that occur in text."""
    return {match.group(0).lower() for match in pattern.finditer(text)} if pattern else set()


def publish_verdict(agent: Agent, draft: Draft) -> tuple[AgentOutcome, str] | None:
    """None when the agent may be published; otherwise the outcome it gets instead, and why.

    Never published: nothing runs with an old value, and publishing would release a draft
    nobody chose to release. A component modified after the last publish: a maker's unfinished
    work, which only they may publish.
    """
    if agent.published_on is None:
        return AgentOutcome.LEFT_ALONE, NEVER_PUBLISHED
    if draft.last_modified is not None and draft.last_modified > agent.published_on:
        return AgentOutcome.NEEDS_ACTION, UNPUBLISHED
    return None


def publish_order(agents: Sequence[Agent], drafts: dict[str, Draft]) -> list[Agent]:
    """Agents in publishing order: an agent another one names goes first; otherwise by name.

    A cycle (two agents naming each other) cannot be ordered; it is broken by name, so the
    result is always every agent exactly once.
    """
    by_schema = {agent.schema_name.lower(): agent for agent in agents if agent.schema_name}
    unique = {agent.id: agent for agent in agents}
    uses: dict[str, set[str]] = {agent_id: set() for agent_id in unique}  # agent -> agents it names
    for agent_id in unique:
        draft = drafts.get(agent_id)
        for name in draft.names if draft else ():
            used = by_schema.get(name)
            if used is not None and used.id != agent_id:
                uses[agent_id].add(used.id)
    ordered: list[Agent] = []
    waiting = {agent_id: set(names) for agent_id, names in uses.items()}
    ready = [(unique[a].name.lower(), a) for a, names in waiting.items() if not names]
    heapq.heapify(ready)
    while waiting:
        if not ready:  # a cycle: release the first by name
            first = min(waiting, key=lambda a: (unique[a].name.lower(), a))
            waiting[first] = set()
            heapq.heappush(ready, (unique[first].name.lower(), first))
        _, agent_id = heapq.heappop(ready)
        if agent_id not in waiting:
            continue
        del waiting[agent_id]
        ordered.append(unique[agent_id])
        for other, names in waiting.items():
            if agent_id in names:
                names.discard(agent_id)
                if not names:
                    heapq.heappush(ready, (unique[other].name.lower(), other))
    return ordered
