"""Property-based: no input makes the event parser or the mapping validator raise anything but
their documented errors (InvalidEventError, ConfigurationError), and accepted input is sane."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.entrypoints import handle_event_grid_event
from sync.errors import ConfigurationError, InvalidEventError
from sync.events import SecretEventType, parse_secret_event
from sync.mapping import SECRET_NAME, parse_mapping
from sync.mapping_connections import CONNECTION_ID

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
JSON = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
ANYTHING = JSON | st.binary(max_size=40) | st.tuples(st.integers())
EVENT_TYPES = st.sampled_from([member.value for member in SecretEventType]) | ANYTHING
DATA_KEYS = st.sampled_from(
    ["ObjectName", "objectName", "VaultName", "ObjectType", "Version", "Id", "NBF", "EXP"]
)
DATA = st.dictionaries(DATA_KEYS | st.text(max_size=8), JSON, max_size=8) | ANYTHING


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(event_id=ANYTHING, event_type=EVENT_TYPES, subject=ANYTHING, topic=ANYTHING, data=DATA)
def test_event_parser_raises_only_invalid_event_error(
    event_id: Any, event_type: Any, subject: Any, topic: Any, data: Any
) -> None:
    try:
        event = parse_secret_event(
            event_id=event_id, event_type=event_type, subject=subject, topic=topic, data=data
        )
    except InvalidEventError as error:
        assert error.field  # noqa: PT017 - either accepted or this documented error, per input
        return
    # Accepted: the secret name is safe to put into a Key Vault URL path.
    assert SECRET_NAME.fullmatch(event.secret_name)
    assert "/" not in event.vault_name and len(event.secret_name) <= 127


@settings(max_examples=100, deadline=None)
@given(event_id=ANYTHING, event_type=ANYTHING, subject=ANYTHING, topic=ANYTHING)
def test_entry_point_rejects_bad_envelopes_without_a_crash_class(
    event_id: Any, event_type: Any, subject: Any, topic: Any
) -> None:
    """The function's entry point, before any configuration is read."""
    valid_strings = all(isinstance(v, str) and v.strip() for v in (event_id, event_type)) and all(
        v is None or isinstance(v, str) for v in (subject, topic)
    )
    if valid_strings:
        return  # a well-typed envelope goes on to configuration and I/O: not this test's subject
    with pytest.raises(InvalidEventError):
        asyncio.run(
            handle_event_grid_event(
                event_id=event_id, event_type=event_type, subject=subject, topic=topic, data={}
            )
        )


@settings(max_examples=400)
@given(document=JSON)
def test_mapping_validator_raises_only_configuration_error(document: Any) -> None:
    try:
        parse_mapping(document, "LOCKSTEP_MAPPING")
    except ConfigurationError as error:
        assert all(p.startswith("LOCKSTEP_MAPPING") for p in error.problems)  # noqa: PT017
        assert error.problems  # noqa: PT017


ENVIRONMENT = st.fixed_dictionaries(
    {
        "name": st.text(max_size=10) | st.sampled_from(["dev", "test"]),
        "id": st.uuids().map(str) | st.text(max_size=10),
        "url": st.sampled_from(["https://a.crm.dynamics.com", "http://x", "https://b.crm.dynamics.com/p"]),
        "stage": st.integers(-2, 5) | JSON,
    }
)
CONNECTION = st.fixed_dictionaries(
    {
        "connector": st.text(max_size=12) | st.just("shared_sql"),
        "client_id": st.uuids().map(str) | st.text(max_size=10),
        "tenant_id": st.uuids().map(str) | JSON,
    },
    optional={"ids": st.lists(st.text(max_size=8) | st.just("conn-1"), max_size=3) | JSON},
)
ROW = st.fixed_dictionaries(
    {
        "secret": st.text(max_size=10) | st.just("sql-pw"),
    },
    optional={
        "env_var": st.text(max_size=12) | st.just("contoso_Pw"),
        "connection": CONNECTION | JSON,
        "environments": st.lists(st.text(max_size=5), max_size=3),
        "rollout": JSON,
        "refresh_flows": JSON,
        "refresh_agents": JSON,
    },
)


@settings(max_examples=300)
@given(environments=st.lists(ENVIRONMENT, max_size=3), secrets=st.lists(ROW, max_size=3))
def test_mapping_shaped_documents_raise_only_configuration_error(
    environments: list[dict[str, Any]], secrets: list[dict[str, Any]]
) -> None:
    try:
        mapping = parse_mapping({"environments": environments, "secrets": secrets}, "LOCKSTEP_MAPPING")
    except ConfigurationError as error:
        assert error.problems  # noqa: PT017
        return
    for row in mapping.secrets:
        assert SECRET_NAME.fullmatch(row.secret)
        assert (row.env_var is None) != (row.connection is None)
        for connection_id in row.connection.ids or [] if row.connection else []:
            assert CONNECTION_ID.fullmatch(connection_id)  # safe in a URL path
