"""The Copilot Studio model behind Dataverse's ``bots`` and ``botcomponents``: agents, topics, publishing.

Pure data and decisions: a publish (``PvaPublish``) ships the current draft, so ``publishedon``
moves forward (to whole seconds, as Dataverse stores it, and never onto or before the previous
value), optionally only after a delay a client must poll through; scripted throttling answers the
next publishes as the service does under bursts (429 with Retry-After, a 400 wrapping a 429, a bare
401 with a valid token); every attempt is recorded for assertions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

THROTTLE_KINDS = ("429", "400", "401")
TOPIC = 9  # botcomponent.componenttype "Topic (V2)"
# A botcomponent is no fixed platform component type: Dataverse numbers such solution components per
# organization (10000 and up, see solutioncomponentdefinitions). The emulator's organizations use:
BOTCOMPONENT_COMPONENT_TYPE = 10156


def whole_seconds(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def odata_time(moment: datetime | None) -> str | None:
    return None if moment is None else whole_seconds(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Bot:
    id: str
    name: str
    schema_name: str
    published_on: datetime | None
    statecode: int = 0
    statuscode: int = 1
    publish_due: float | None = None  # monotonic time a pending publish lands
    publish_to: datetime | None = None


@dataclass(slots=True)
class BotComponent:
    id: str
    bot_id: str
    name: str
    schema_name: str
    data: str
    modified_on: datetime
    component_type: int = TOPIC
    depends_on: set[str] = field(default_factory=set)  # lower-case schema names with a dependency row


@dataclass(slots=True)
class Throttle:
    kind: str
    remaining: int
    retry_after: float


@dataclass(slots=True)
class AgentsState:
    bots: dict[str, Bot] = field(default_factory=dict)
    components: dict[str, BotComponent] = field(default_factory=dict)
    throttles: list[Throttle] = field(default_factory=list)
    publish_delay: float = 0.0
    attempts: list[tuple[str, int]] = field(default_factory=list)  # (bot id, HTTP status) per PvaPublish

    def settle(self) -> None:
        """Land every pending publish whose delay has passed (called before each read)."""
        now = time.monotonic()
        for bot in self.bots.values():
            if bot.publish_due is not None and bot.publish_due <= now:
                bot.published_on, bot.publish_due, bot.publish_to = bot.publish_to, None, None

    def publish(self, bot: Bot) -> None:
        """Ship the draft: ``publishedon`` moves past its old value and every component's ``modifiedon``."""
        floor = max(
            [whole_seconds(datetime.now(UTC))]
            + [whole_seconds(c.modified_on) for c in self.components.values() if c.bot_id == bot.id]
        )
        if bot.published_on is not None and floor <= bot.published_on:
            floor = bot.published_on + timedelta(seconds=1)
        if self.publish_delay > 0:
            bot.publish_due, bot.publish_to = time.monotonic() + self.publish_delay, floor
        else:
            bot.published_on = floor

    def take_throttle(self) -> Throttle | None:
        if not self.throttles:
            return None
        throttle = self.throttles[0]
        throttle.remaining -= 1
        if throttle.remaining <= 0:
            self.throttles.pop(0)
        return throttle


def bot_row(bot: Bot) -> dict[str, Any]:
    return {
        "botid": bot.id,
        "name": bot.name,
        "schemaname": bot.schema_name,
        "publishedon": odata_time(bot.published_on),
        "statecode": bot.statecode,
        "statuscode": bot.statuscode,
    }


def component_row(component: BotComponent) -> dict[str, Any]:
    return {
        "botcomponentid": component.id,
        "_parentbotid_value": component.bot_id,
        "name": component.name,
        "schemaname": component.schema_name,
        "componenttype": component.component_type,
        "data": component.data,
        "modifiedon": odata_time(component.modified_on),
    }


BOT_COLUMNS = tuple(bot_row(Bot("", "", "", None)))
COMPONENT_COLUMNS = tuple(component_row(BotComponent("", "", "", "", "", datetime.now(UTC))))
