"""The heads-up card for SecretNearExpiry / SecretExpired: what will break, per environment.

Nothing was written; someone must rotate. The card names the variables the secret feeds and,
from one inventory read, the flows, agents and connections that use them. Every name is someone
else's text, escaped (sync.adaptive.literal).
"""

from __future__ import annotations

from typing import Any

from sync.adaptive import adaptive_card as _card
from sync.adaptive import literal
from sync.adaptive import text_block as _text


def _breaks(
    heading: str, found: dict[str, list[str]] | None, *, separator: str = ", ", others_titles: bool = False
) -> list[dict[str, Any]]:
    """A section naming what breaks: a fact per target (20 at most) with its names (10 at most),
    every name someone else's text, escaped; nothing when no target has any."""
    facts = [
        {
            "title": literal(target) if others_titles else target,
            "value": separator.join(literal(name) for name in names[:10]) + (" …" if len(names) > 10 else ""),
        }
        for target, names in list((found or {}).items())[:20]
        if names
    ]
    if not facts:
        return []
    return [_text(heading, weight="Bolder", spacing="Medium"), {"type": "FactSet", "facts": facts}]


def build_expiry_card(
    *,
    secret: str,
    event_type: str,
    expires: str,
    targets: list[str],
    correlation_id: str,
    flows: dict[str, list[str]] | None = None,
    agents: dict[str, list[str]] | None = None,
    connections: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """A heads-up for SecretNearExpiry / SecretExpired: nothing was written, someone must rotate.

    `flows` and `agents` map "environment/env_var" to the names of the cloud flows and the
    Copilot Studio agents that use it; `connections` maps "environment/connection (status)" to
    lines naming the connection references bound to it and the flows using them: what breaks.
    """
    expired = event_type.endswith("SecretExpired")
    title = f"⏰ Key Vault secret {secret} {'has expired' if expired else 'expires soon'}"
    body: list[dict[str, Any]] = [
        {
            "type": "Container",
            "style": "attention" if expired else "warning",
            "items": [_text(title, size="Medium", weight="Bolder")],
        },
        {
            "type": "FactSet",
            "facts": [
                {"title": "Expires", "value": expires},
                {"title": "Feeds", "value": ", ".join(targets[:20]) + (" …" if len(targets) > 20 else "")},
                {"title": "Correlation id", "value": correlation_id},
            ],
        },
    ]
    body += _breaks("Flows that will break", flows)
    body += _breaks("Agents that will break", agents)
    body += _breaks("Connections that will break", connections, separator="; ", others_titles=True)
    body.append(
        _text(
            "Rotate the secret in Key Vault; Lockstep copies the new version to these environments "
            "and turns their flows off and on.",
            isSubtle=True,
            size="Small",
        )
    )
    return _card(body)
