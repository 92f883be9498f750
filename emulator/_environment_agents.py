"""The ``Environment`` handle's Copilot Studio part: agents, their topics, publishing knobs, for tests.

``add_bot`` / ``add_bot_component`` create what a maker would (a published agent whose topics read
``Env.<schema name>``); ``edit_bot_component`` leaves unpublished changes behind; the publish knobs
script delays and throttling; ``publish_attempts`` records every ``PvaPublish`` for assertions.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from ._agents import THROTTLE_KINDS, Bot, BotComponent, Throttle, whole_seconds
from ._state import EnvironmentState, State


def topic_yaml(name: str, uses: list[str]) -> str:
    """A Copilot Studio topic (AdaptiveDialog) whose actions read each variable as ``Env.<schema name>``."""
    actions = "".join(
        f"    - kind: SetVariable\n      id: setVariable_{index}\n      variable: Topic.Value{index}\n"
        f"      value: =Env.{schema}\n"
        for index, schema in enumerate(uses, 1)
    )
    actions = actions or "    []\n"
    return (
        "kind: AdaptiveDialog\nbeginDialog:\n  kind: OnRecognizedIntent\n  id: main\n  intent:\n"
        f"    displayName: {name}\n  actions:\n{actions}"
    )


class AgentsMixin:
    _state: State
    _env: EnvironmentState

    def add_bot(self, name: str, schema_name: str | None = None, *, published: bool = True) -> str:
        """An agent, published an hour ago (``published=False``: never published); returns its botid."""
        bot = Bot(
            id=str(uuid.uuid4()),
            name=name,
            schema_name=schema_name or "cr_" + "".join(ch for ch in name.title() if ch.isalnum()),
            published_on=whole_seconds(datetime.now(UTC) - timedelta(hours=1)) if published else None,
        )
        with self._state.lock:
            self._env.agents.bots[bot.id] = bot
        return bot.id

    def add_bot_component(
        self,
        bot_id: str,
        name: str,
        *,
        uses: list[str] | None = None,
        data: str | None = None,
        dependency: bool = True,
        schema_name: str | None = None,
    ) -> str:
        """A topic of ``bot_id``, modified before the agent's last publish (no unpublished changes).

        ``data`` defaults to a topic reading ``Env.<schema>`` for each of ``uses``; ``dependency``
        records the Dataverse dependency rows for ``uses`` (``dependencies``, RetrieveDependentComponents).
        """
        uses = uses or []
        with self._state.lock:
            bot = self._env.agents.bots[bot_id]
            reference = bot.published_on or whole_seconds(datetime.now(UTC))
            component = BotComponent(
                id=str(uuid.uuid4()),
                bot_id=bot_id,
                name=name,
                schema_name=schema_name
                or f"{bot.schema_name}.topic.{''.join(c for c in name if c.isalnum())}",
                data=data if data is not None else topic_yaml(name, uses),
                modified_on=reference - timedelta(minutes=10),
                depends_on={schema.lower() for schema in uses} if dependency else set(),
            )
            self._env.agents.components[component.id] = component
            return component.id

    def edit_bot_component(self, component_id: str, data: str | None = None) -> None:
        """A maker's unpublished edit: ``modifiedon`` moves after the agent's ``publishedon``."""
        with self._state.lock:
            component = self._env.agents.components[component_id]
            bot = self._env.agents.bots[component.bot_id]
            moment = whole_seconds(datetime.now(UTC))
            if bot.published_on is not None and moment <= bot.published_on:
                moment = bot.published_on + timedelta(seconds=1)
            component.modified_on = moment
            if data is not None:
                component.data = data

    def bot(self, bot_id: str) -> dict[str, Any]:
        """A snapshot for assertions: name, schema name, ``published_on`` and unpublished changes."""
        with self._state.lock:
            agents = self._env.agents
            agents.settle()
            bot = agents.bots[bot_id]
            components = [c for c in agents.components.values() if c.bot_id == bot_id]
            return {
                "id": bot.id,
                "name": bot.name,
                "schema_name": bot.schema_name,
                "published_on": bot.published_on,
                "unpublished_changes": bot.published_on is not None
                and any(c.modified_on > bot.published_on for c in components),
            }

    def throttle_publishes(self, kind: str = "429", times: int = 1, retry_after: float = 1.0) -> None:
        """The next ``times`` PvaPublish calls answer ``kind``: "429" (Retry-After), "400" (wrapping a 429)
        or "401" (bare, although the token is valid)."""
        if kind not in THROTTLE_KINDS:
            raise ValueError(f"unknown throttle kind {kind!r}; one of {', '.join(THROTTLE_KINDS)}")
        if times < 1 or retry_after < 0:
            raise ValueError("times must be at least 1 and retry_after not negative")
        with self._state.lock:
            self._env.agents.throttles.append(Throttle(kind, times, retry_after))

    def set_publish_delay(self, seconds: float) -> None:
        """A publish is accepted at once but ``publishedon`` moves only ``seconds`` later (poll for it)."""
        if seconds < 0:
            raise ValueError("the delay cannot be negative")
        with self._state.lock:
            self._env.agents.publish_delay = seconds

    def publish_attempts(self) -> list[tuple[str, int]]:
        """Every PvaPublish received, in order: (botid, HTTP status answered)."""
        with self._state.lock:
            return list(self._env.agents.attempts)

    def publishes(self) -> list[str]:
        """The botids of accepted publishes, in order."""
        return [bot for bot, status in self.publish_attempts() if status == 204]
