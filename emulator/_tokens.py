"""Bearer tokens as the emulator's managed-identity endpoint issues them (JWT-shaped, unsigned)."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass

TOKEN_LIFETIME_SECONDS = 3600


def normalize_audience(resource: str) -> str:
    """``https://x/.default`` and ``https://x/`` both mean the audience ``https://x``."""
    audience = resource.strip()
    if audience.endswith("/.default"):
        audience = audience[: -len("/.default")]
    return audience.rstrip("/").lower()


@dataclass(slots=True)
class Token:
    audience: str
    expires_at: float
    client_id: str


def unsigned_jwt(token: Token, tenant_id: str) -> str:
    def part(document: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    header = part({"typ": "JWT", "alg": "none"})
    claims = part(
        {
            "aud": token.audience,
            "exp": int(token.expires_at),
            "appid": token.client_id,
            "oid": token.client_id,
            "tid": tenant_id,
            "jti": secrets.token_urlsafe(16),
        }
    )
    return f"{header}.{claims}.{secrets.token_urlsafe(32)}"
