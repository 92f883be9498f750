"""The Entra side of the emulator: app registrations (whose client secrets connections hold) and the
applications registered for Power Platform management (the connectivity API refuses any other).

``AppRegistration`` is the test's handle on one app: add, rotate and revoke client secrets as an
administrator would in Entra; a connection's status follows at once. Secret values live only in the
emulator's memory: no method prints or logs them.
"""

from __future__ import annotations

import secrets
import uuid

from ._connections import MANAGED_IDENTITY, AppRegistrationState
from ._state import FAKE_TENANT_ID, State


class AppRegistration:
    """A handle on one app registration: its client id, tenant and currently valid client secrets."""

    def __init__(self, state: State, client_id: str) -> None:
        self._state = state
        self.client_id = client_id
        with state.lock:
            self.tenant_id = self._app().tenant_id

    def __repr__(self) -> str:
        return f"AppRegistration(client_id={self.client_id!r})"

    def _app(self) -> AppRegistrationState:
        return self._state.app_registrations[self.client_id.lower()]

    def add_secret(self, value: str | None = None) -> str:
        """A new valid client secret (random when ``value`` is None); returns it. Older ones stay valid."""
        value = value if value is not None else f"spn~{secrets.token_urlsafe(30)}"
        with self._state.lock:
            self._app().valid_secrets.append(value)
        return value

    def revoke_secret(self, value: str) -> None:
        """Remove one client secret: connections holding it turn to Error."""
        with self._state.lock:
            valid = self._app().valid_secrets
            if value not in valid:
                raise KeyError("that client secret is not valid for this app registration")
            valid.remove(value)

    def rotate_secret(self, value: str | None = None, *, revoke_previous: bool = False) -> str:
        """Add a new secret; with ``revoke_previous`` every older one stops working at once."""
        with self._state.lock:
            if revoke_previous:
                self._app().valid_secrets.clear()
        return self.add_secret(value)

    def is_valid(self, value: str) -> bool:
        with self._state.lock:
            return value in self._app().valid_secrets

    @property
    def valid_secret_count(self) -> int:
        with self._state.lock:
            return len(self._app().valid_secrets)


class Tenant:
    """Mixin for ``Emulator``: the app registrations and management-application knob."""

    _state: State

    @property
    def identity_object_id(self) -> str:
        """The object id of Lockstep's managed identity: the client id the managed-identity endpoint
        issued a token to last (``11111111-1111-…`` until one is asked for); shares name it."""
        with self._state.lock:
            return self._state.identity_client_ids[-1]

    def add_app_registration(
        self,
        client_id: str | None = None,
        *,
        tenant_id: str = FAKE_TENANT_ID,
        display_name: str = "Lockstep test app",
        secret: str | None = None,
    ) -> AppRegistration:
        """Create an app registration (a new client id when omitted) with one valid secret when given."""
        client_id = (client_id or str(uuid.uuid4())).lower()
        uuid.UUID(client_id)  # ValueError for anything but a GUID
        with self._state.lock:
            if client_id in self._state.app_registrations:
                raise ValueError(f"app registration {client_id!r} already exists")
            self._state.app_registrations[client_id] = AppRegistrationState(
                client_id, tenant_id.lower(), display_name, [secret] if secret is not None else []
            )
        return AppRegistration(self._state, client_id)

    def app_registration(self, client_id: str) -> AppRegistration:
        with self._state.lock:
            if client_id.lower() not in self._state.app_registrations:
                raise KeyError(f"no app registration {client_id!r}")
        return AppRegistration(self._state, client_id.lower())

    def register_management_app(self, client_id: str | None = None, registered: bool = True) -> None:
        """Register (``registered=False``: unregister) an identity as a Power Platform management app.

        The connectivity API answers 403 to any other. Without ``client_id``: Lockstep's managed
        identity, whatever client id it asks tokens for; it starts registered.
        """
        wanted = (client_id or MANAGED_IDENTITY).lower()
        with self._state.lock:
            if registered:
                self._state.management_apps.add(wanted)
            else:
                self._state.management_apps.discard(wanted)

    def set_invalid_secret_answer(self, answer: str) -> None:
        """How a connectivity PUT with a secret Entra refuses is answered: ``"status"`` (200, saved, its
        status an Error; the default) or ``"refuse"`` (400 ``Unauthenticated``, nothing saved)."""
        if answer not in ("status", "refuse"):
            raise ValueError("answer must be 'status' or 'refuse'")
        with self._state.lock:
            self._state.invalid_secret_answer = answer
