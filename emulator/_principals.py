"""Who a caller is: Lockstep's managed identity (whatever client id it asks tokens for), or another.

The managed-identity endpoint issues a token to the client id the app asks for (`AZURE_CLIENT_ID`),
so the emulator's notion of "Lockstep's identity" follows it: every client id that endpoint served
(FAKE_CLIENT_ID when none is asked for) is that identity. Shares made with "the managed identity"
and its management-application registration hold for each, made before or after the token, so a
test never needs to know which client id the scenario configured. In Dataverse the identity is an
application user: WhoAmI answers its `systemusers` row, whose `azureactivedirectoryobjectid` is
the caller's object id (the emulator's object ids double as client ids).
All functions expect the caller to hold ``State.lock``.
"""

from __future__ import annotations

import uuid

from ._connections import MANAGED_IDENTITY
from ._state import EnvironmentState, State, SystemUser

APPLICATION_USER_NAME = "# Lockstep"


def adopt_identity(state: State, client_id: str) -> None:
    """The managed-identity endpoint issued a token to ``client_id``: it is Lockstep's identity."""
    wanted = client_id.lower()
    state.identity_client_ids = [c for c in state.identity_client_ids if c != wanted] + [wanted]


def is_identity(state: State, caller: str | None) -> bool:
    return caller is not None and caller.lower() in state.identity_client_ids


def aliases(state: State, caller: str | None) -> frozenset[str]:
    """Every principal id a caller answers to: its own, and MANAGED_IDENTITY when it is Lockstep's."""
    if caller is None:
        return frozenset()
    caller = caller.lower()
    return frozenset({caller, MANAGED_IDENTITY} if is_identity(state, caller) else {caller})


def identity_as_seen_by(state: State, caller: str | None) -> str:
    """The client id shown for the managed identity: the caller's when it is that identity, else
    the one the endpoint served last."""
    return (
        caller.lower() if caller is not None and is_identity(state, caller) else state.identity_client_ids[-1]
    )


def resolve(state: State, principal_id: str) -> str:
    """A stored principal id as shown to a test: MANAGED_IDENTITY becomes the latest client id."""
    return state.identity_client_ids[-1] if principal_id == MANAGED_IDENTITY else principal_id


def application_user(state: State, env: EnvironmentState, caller: str | None) -> str:
    """The systemuserid WhoAmI answers: Lockstep's application user (``env.user_id``) carries the
    object id of whichever identity client id asks; any other caller gets an application user of
    its own (created on first sight)."""
    if caller is None or is_identity(state, caller):
        object_id = identity_as_seen_by(state, caller)
        user = env.systemusers.get(env.user_id)
        if user is None:
            user = SystemUser(env.user_id, APPLICATION_USER_NAME, object_id)
            env.systemusers[env.user_id] = user
        user.azure_object_id = object_id
        return env.user_id
    caller = caller.lower()
    for user in env.systemusers.values():
        if user.azure_object_id.lower() == caller:
            return user.id
    user = SystemUser(str(uuid.uuid4()), f"# application {caller}", caller)
    env.systemusers[user.id] = user
    return user.id
