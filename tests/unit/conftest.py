from __future__ import annotations

import json
from typing import Any

import pytest

DEV_ID = "6a1b2c3d-0000-4000-8000-000000000001"
TEST_ID = "9c2d3e4f-0000-4000-8000-000000000002"
PROD_ID = "0e3f4a5b-0000-4000-8000-000000000003"


def mapping_document() -> dict[str, Any]:
    return {
        "environments": [
            {"name": "dev", "id": DEV_ID, "url": "https://contoso-dev.crm.dynamics.com", "stage": 1},
            {"name": "test", "id": TEST_ID, "url": "https://contoso-test.crm.dynamics.com", "stage": 2},
            {"name": "prod", "id": PROD_ID, "url": "https://contoso.crm.dynamics.com", "stage": 3},
        ],
        "secrets": [
            {"secret": "sql-conn-password", "env_var": "contoso_SqlConnectionPassword"},
            {
                "secret": "graph-client-secret",
                "env_var": "contoso_GraphSecret",
                "environments": ["dev", "test"],
            },
        ],
    }


@pytest.fixture
def mapping_doc() -> dict[str, Any]:
    return mapping_document()


@pytest.fixture
def environ(mapping_doc: dict[str, Any]) -> dict[str, str]:
    return {
        "KEY_VAULT_URI": "https://contoso-lockstep.vault.azure.net/",
        "LOCKSTEP_MAPPING": json.dumps(mapping_doc),
        "TEAMS_WEBHOOK_URL": "https://prod-01.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=TOPSECRETSIG",
        "RECONCILE_SCHEDULE": "0 0 2 * * *",
    }
