"""Teams Workflows webhook ("Post to a channel when a webhook request is received")."""

from __future__ import annotations

import copy
import hmac
import re
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ._http import (
    JSON,
    empty_response,
    error_response,
    fault_response,
    media_type,
    parse_json_object,
    take_fault,
)
from ._state import TEAMS_HOST, State

SERVICE = "teams"
WORKFLOW_PATH = re.compile(r"^/workflows/([^/]+)/triggers/manual/paths/invoke$")
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = re.compile(r"^\d+\.\d+$")
FIXED_QUERY = {"api-version": "2016-06-01", "sp": "/triggers/manual/run", "sv": "1.0"}


def webhook_url(state: State) -> str:
    return (
        f"https://{TEAMS_HOST}{webhook_path(state)}?api-version=2016-06-01"
        f"&sp={quote('/triggers/manual/run', safe='')}&sv=1.0&sig={quote(state.teams_sig, safe='')}"
    )


def webhook_path(state: State) -> str:
    return f"/workflows/{state.teams_workflow_id}/triggers/manual/paths/invoke"


def card_problem(body: dict[str, Any]) -> str | None:
    """What is wrong with the message, or None when it has the shape Teams Workflows accepts."""
    if body.get("type") != "message":
        return "The property 'type' must be \"message\"."
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "The property 'attachments' must be a non-empty array."
    for index, attachment in enumerate(attachments):
        where = f"attachments[{index}]"
        if not isinstance(attachment, dict):
            return f"{where} must be an object."
        if attachment.get("contentType") != CARD_TYPE:
            return f'{where}.contentType must be "{CARD_TYPE}".'
        if "contentUrl" not in attachment or attachment["contentUrl"] is not None:
            return f"{where}.contentUrl must be present and null."
        content = attachment.get("content")
        if not isinstance(content, dict):
            return f"{where}.content must be an object (the Adaptive Card)."
        if content.get("type") != "AdaptiveCard":
            return f'{where}.content.type must be "AdaptiveCard".'
        version = content.get("version")
        if not isinstance(version, str) or not CARD_VERSION.match(version):
            return f'{where}.content.version must be a string such as "1.4".'
        card_body = content.get("body")
        if not isinstance(card_body, list):
            return f"{where}.content.body must be an array."
        for element_index, element in enumerate(card_body):
            if not isinstance(element, dict) or not isinstance(element.get("type"), str):
                return f"{where}.content.body[{element_index}] must be an object with a string 'type'."
    return None


async def handle(state: State, request: web.Request, host: str) -> web.Response:
    match = WORKFLOW_PATH.match(request.path)
    if match is None:
        return error_response(404, "NotFound", "No workflow trigger lives at this path.")
    sig = request.query.get("sig")
    authorized = (
        match.group(1) == state.teams_workflow_id
        and sig is not None
        and hmac.compare_digest(sig.encode(), state.teams_sig.encode())
    )
    if not authorized:
        return error_response(
            401,
            "DirectApiInvalidAuthorizationSignature",
            "The provided authentication token is not valid: the workflow id or the sig query parameter "
            "does not match.",
        )
    fault = take_fault(state, SERVICE, request)
    if fault is not None:
        return fault_response(fault, request)
    for key, expected in FIXED_QUERY.items():
        if request.query.get(key) != expected:
            return error_response(
                400, "InvalidQueryParameter", f"The query parameter '{key}' must be '{expected}'."
            )
    if request.method != "POST":
        return error_response(405, "MethodNotAllowed", f"The method {request.method} is not allowed here.")
    if media_type(request) != JSON:
        return error_response(400, "InvalidContentType", "The request Content-Type must be application/json.")
    body = parse_json_object(await request.read())
    if body is None:
        return error_response(400, "InvalidRequestContent", "The request body is not a JSON object.")
    problem = card_problem(body)
    if problem is not None:
        return error_response(400, "InvalidRequestContent", problem)
    with state.lock:
        state.teams_posts.append(copy.deepcopy(body))
    return empty_response(202)


def _texts_and_facts(message: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """Every TextBlock's text, in order, and every FactSet fact as `(title, value)`, in order."""
    lines: list[str] = []
    facts: list[tuple[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if node.get("type") == "TextBlock" and isinstance(node.get("text"), str):
                lines.append(node["text"])
            if node.get("type") == "FactSet":
                for fact in node.get("facts") or []:
                    facts.append((str(fact.get("title")), str(fact.get("value"))))
                    lines.append(f"{fact.get('title')}: {fact.get('value')}")
            for key in ("attachments", "content", "body", "items", "columns"):
                walk(node.get(key))

    walk(message)
    return lines, facts


def card_lines(message: dict[str, Any]) -> list[str]:
    """A recorded message as plain text, for people at a terminal (`python -m emulator cards`)."""
    return _texts_and_facts(message)[0]


def card_summary(message: dict[str, Any]) -> str:
    """One line per card: its headline (the first text), then its outcome and correlation id."""
    lines, facts = _texts_and_facts(message)
    shown = dict(facts)
    parts = [lines[0] if lines else "(a card with no text)"]
    parts += [f"{key.lower()} {shown[key]}" for key in ("Outcome", "Correlation id") if key in shown]
    return " · ".join(parts)
