"""Teams Workflows webhook: post one Adaptive Card message.

Microsoft Graph does not let an application post channel messages, so notifications go through a
Workflows webhook. Its URL is a credential (the `sig` query parameter): it stays in a SecretStr,
and no error raised here mentions it.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from sync.adapters.http import RetryPolicy, send_with_retry
from sync.errors import LockstepError


class NotificationError(LockstepError):
    """The card was not accepted. Reported, never allowed to fail a sync."""


def message_for(card: dict[str, Any]) -> dict[str, Any]:
    """The message a Workflows webhook expects: one Adaptive Card attachment."""
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


class TeamsNotifier:
    def __init__(
        self, http: httpx.AsyncClient, webhook_url: SecretStr, policy: RetryPolicy | None = None
    ) -> None:
        self._http = http
        self._webhook_url = webhook_url
        self._policy = policy or RetryPolicy(attempts=3)

    async def post_card(self, card: dict[str, Any]) -> None:
        message = message_for(card)
        try:
            response = await send_with_retry(
                self._http,
                "POST",
                self._webhook_url.get_secret_value(),
                policy=self._policy,
                service="Teams webhook",
                json=message,
            )
        except LockstepError as error:
            raise NotificationError(str(error)) from None
        if not response.is_success:
            raise NotificationError(f"Teams webhook answered HTTP {response.status_code}")
