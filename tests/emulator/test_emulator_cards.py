"""The standalone emulator shows the Teams cards it records: a line as each arrives, and `cards`.

Run as an operator runs it for Core Tools: `python -m emulator --write-settings`, a CLI sync that
posts a card, then `python -m emulator cards` from another process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from emulator._teams import card_lines, card_summary

from .conftest import run, standalone_emulator


def test_cards_are_printed_on_request_and_summarised_as_they_arrive(tmp_path: Path) -> None:
    settings = tmp_path / "local.settings.json"
    with standalone_emulator(settings) as emulator:
        none_yet = run("emulator", "cards", "--settings", str(settings))
        assert none_yet.returncode == 0 and "0 Teams card(s) recorded" in none_yet.stderr

        synced = run("sync", "sync", "sql-conn-password", "--json", "--settings", str(settings))
        assert synced.returncode == 0, synced.stderr
        correlation_id = json.loads(synced.stdout)["correlation_id"]

        shown = run("emulator", "cards", "--settings", str(settings))
        assert shown.returncode == 0, shown.stderr
        assert "--- card 1" in shown.stdout and "Lockstep: sql-conn-password" in shown.stdout
        assert f"Correlation id: {correlation_id}" in shown.stdout
        [message] = json.loads(run("emulator", "cards", "--json", "--settings", str(settings)).stdout)
        assert message["type"] == "message"

        forged = json.loads(settings.read_text())
        forged["Values"]["IDENTITY_HEADER"] = "not-the-header"
        (tmp_path / "forged.json").write_text(json.dumps(forged))
        refused = run("emulator", "cards", "--settings", str(tmp_path / "forged.json"))
        assert refused.returncode == 2 and "HTTP 401" in refused.stderr
        time.sleep(0.6)  # the emulator polls its recorded cards every 0.2 s
    [line] = [line for line in emulator.stdout.splitlines() if line.startswith("# Teams card:")]
    assert "Lockstep: sql-conn-password" in line and f"correlation id {correlation_id}" in line


def test_card_text_and_summary_read_every_text_and_fact() -> None:
    message = {
        "type": "message",
        "attachments": [
            {
                "content": {
                    "type": "AdaptiveCard",
                    "body": [
                        {"type": "Container", "items": [{"type": "TextBlock", "text": "Headline"}]},
                        {
                            "type": "FactSet",
                            "facts": [
                                {"title": "Outcome", "value": "1 updated"},
                                {"title": "Correlation id", "value": "abc"},
                            ],
                        },
                        {"type": "TextBlock", "text": "Stage 1: x"},
                    ],
                }
            }
        ],
    }
    assert card_lines(message) == ["Headline", "Outcome: 1 updated", "Correlation id: abc", "Stage 1: x"]
    assert card_summary(message) == "Headline · outcome 1 updated · correlation id abc"
    assert card_summary({"type": "message", "attachments": []}) == "(a card with no text)"
