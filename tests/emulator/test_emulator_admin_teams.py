"""Power Platform admin API and the Teams Workflows webhook."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from emulator import Emulator

ENVIRONMENTS = (
    "https://api.bap.lockstep.test/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments"
)
ADMIN_API = {"api-version": "2020-10-01"}
ENV_ID = "6a1b2c3d-0000-4000-8000-000000000001"


def admin_auth(emu: Emulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {emu.issue_token('https://service.powerapps.com/.default')}"}


def card(**overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [{"type": "TextBlock", "text": "sql-conn-password synced to dev"}],
                },
            }
        ],
    }
    message.update(overrides)
    return message


# --- admin API ---


async def test_admin_reports_environment_states_and_instance_url(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    env = emu.environment("dev", org="contoso-dev", environment_id=ENV_ID)
    assert emu.admin_url == "https://api.bap.lockstep.test"
    response = await client.get(f"{ENVIRONMENTS}/{ENV_ID}", params=ADMIN_API, headers=admin_auth(emu))
    assert response.status_code == 200
    assert response.json() == {
        "id": f"/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments/{ENV_ID}",
        "name": ENV_ID,
        "type": "Microsoft.BusinessAppPlatform/scopes/environments",
        "location": "europe",
        "properties": {
            "displayName": "dev",
            "states": {"management": {"id": "Ready"}, "runtime": {"id": "Enabled"}},
            "linkedEnvironmentMetadata": {
                "instanceUrl": "https://contoso-dev.crm.lockstep.test/",
                "domainName": "contoso-dev",
            },
        },
    }
    env.set_state(management="NotReady", runtime="AdminMode")
    env.set_instance_url("https://elsewhere.crm.lockstep.test/")
    changed = (await client.get(f"{ENVIRONMENTS}/{ENV_ID}", params=ADMIN_API, headers=admin_auth(emu))).json()
    assert changed["properties"]["states"] == {
        "management": {"id": "NotReady"},
        "runtime": {"id": "AdminMode"},
    }
    assert (
        changed["properties"]["linkedEnvironmentMetadata"]["instanceUrl"]
        == "https://elsewhere.crm.lockstep.test/"
    )


async def test_admin_errors(emu: Emulator, client: httpx.AsyncClient) -> None:
    emu.environment("dev", org="contoso-dev", environment_id=ENV_ID)
    unknown = await client.get(
        f"{ENVIRONMENTS}/00000000-0000-4000-8000-00000000dead", params=ADMIN_API, headers=admin_auth(emu)
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "EnvironmentNotFound"

    no_version = await client.get(f"{ENVIRONMENTS}/{ENV_ID}", headers=admin_auth(emu))
    assert no_version.status_code == 400

    kv_token = emu.issue_token("https://vault.lockstep.test")
    wrong = await client.get(
        f"{ENVIRONMENTS}/{ENV_ID}", params=ADMIN_API, headers={"Authorization": f"Bearer {kv_token}"}
    )
    assert wrong.status_code == 401
    assert "expected 'https://service.powerapps.com'" in wrong.json()["error"]["message"]
    assert (await client.get(f"{ENVIRONMENTS}/{ENV_ID}", params=ADMIN_API)).status_code == 401


# --- Teams ---


def test_webhook_url_has_the_workflows_shape(emu: Emulator) -> None:
    url = emu.teams_webhook_url()
    assert url == emu.teams_webhook_url()
    parts = urlsplit(url)
    assert parts.scheme == "https"
    assert parts.hostname == "webhook.lockstep.test"
    assert parts.path.startswith("/workflows/")
    assert parts.path.endswith("/triggers/manual/paths/invoke")
    query = parse_qs(parts.query)
    assert query["api-version"] == ["2016-06-01"]
    assert query["sp"] == ["/triggers/manual/run"]
    assert query["sv"] == ["1.0"]
    assert len(query["sig"][0]) >= 32
    assert "sp=%2Ftriggers%2Fmanual%2Frun" in url


async def test_teams_accepts_an_adaptive_card_and_records_it(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    message = card()
    response = await client.post(emu.teams_webhook_url(), json=message)
    assert response.status_code == 202
    assert response.content == b""
    assert emu.teams_posts == [message]
    emu.teams_posts[0]["type"] = "mutated"  # a copy: the record is not affected
    assert emu.teams_posts == [message]


@pytest.mark.parametrize(
    ("sig", "workflow_suffix"),
    [(None, ""), ("wrong-sig", ""), ("RIGHT", "x")],
)
async def test_teams_requires_the_right_sig(
    emu: Emulator, client: httpx.AsyncClient, sig: str | None, workflow_suffix: str
) -> None:
    parts = urlsplit(emu.teams_webhook_url())
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if sig is None:
        del query["sig"]
    elif sig != "RIGHT":
        query["sig"] = sig
    url = f"https://{parts.hostname}{parts.path.replace('/triggers', workflow_suffix + '/triggers', 1)}"
    response = await client.post(url, params=query, json=card())
    assert response.status_code == 401
    assert emu.teams_posts == []


def _broken(path: str, value: Any) -> dict[str, Any]:
    message = card()
    target: Any = message
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return message


@pytest.mark.parametrize(
    ("message", "named"),
    [
        (_broken("type", "card"), "'type'"),
        (_broken("attachments", []), "'attachments'"),
        (_broken("attachments.0.contentType", "application/json"), "contentType"),
        (_broken("attachments.0.contentUrl", KeyError), "contentUrl"),
        (_broken("attachments.0.contentUrl", "https://x"), "contentUrl"),
        (_broken("attachments.0.content.type", "HeroCard"), "content.type"),
        (_broken("attachments.0.content.version", 1.4), "content.version"),
        (_broken("attachments.0.content.body", "text"), "content.body"),
        (_broken("attachments.0.content.body", [{"text": "no type"}]), "content.body[0]"),
    ],
)
async def test_teams_rejects_malformed_messages_naming_the_problem(
    emu: Emulator, client: httpx.AsyncClient, message: dict[str, Any], named: str
) -> None:
    response = await client.post(emu.teams_webhook_url(), json=copy.deepcopy(message))
    assert response.status_code == 400
    assert named in response.json()["error"]["message"]
    assert emu.teams_posts == []


async def test_teams_requires_json_content_type(emu: Emulator, client: httpx.AsyncClient) -> None:
    response = await client.post(
        emu.teams_webhook_url(), content=b'{"type": "message"}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 400
    assert "Content-Type" in response.json()["error"]["message"]
