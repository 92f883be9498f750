"""Last-line scrubbing for text that crosses a trust boundary (error bodies from remote services).

Values are kept in SecretStr, which covers our own formatting. A remote service, though, may
echo what it was sent in an error message; before such text becomes a reason, a log line or a
card, every known secret value is replaced.
"""

from __future__ import annotations

from pydantic import SecretStr

MASK = "***"


def scrub(text: str, *secrets: SecretStr | None) -> str:
    """Replaces each non-empty secret value occurring in text with a mask."""
    for secret in secrets:
        if secret is None:
            continue
        value = secret.get_secret_value()
        if value:
            text = text.replace(value, MASK)
    return text


def shorten(text: str, limit: int = 300) -> str:
    """Keeps remote error messages readable in a log line and a card."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
