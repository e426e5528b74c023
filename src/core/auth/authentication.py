"""Request authentication: the chain of auth backends that turns a request into its user.

The chain is the built-in `token` backend (Bearer JWT), the built-in `model` backend (email and
password against the user model), then every backend registered with `register_auth_backend`,
in registration order. It serves two callers:

- every request (`RequestAuthenticator.authenticate`, which ViewSets call): a request without
  an `Authorization` header is anonymous at once, costing nothing; otherwise each backend is
  asked with no credentials until one returns a user.
- a login (`RequestAuthenticator.authenticate_credentials`, or `core.auth.authenticate`): each
  backend is asked with the credentials until one returns an active user.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.auth.backends import ModelAuthBackend, TokenAuthBackend
from core.auth.refresh import RefreshTokens
from core.auth.registry import registered_auth_backends
from core.context import current_container
from core.errors import NotAuthenticatedError
from core.ports.auth import AuthBackend
from core.ports.tokens import TokenBackend

__all__ = ("Authenticated", "RequestAuthenticator", "TokenUser", "authenticate")

#: The claim naming the custom backend a user logged in through, so later requests load that
#: user with the same backend's `get_user`.
AUTH_BACKEND_CLAIM = "auth_backend"


class TokenUser:
    """A user known only from a verified access token: services sharing SECRET_KEY trust each other.

    `id` is the token's `sub` (an int when it looks like one); every claim is in `claims`;
    `permissions` and `groups` claims feed HasPermission and IsInGroup.

    Example:
        >>> user = TokenUser({"sub": "42", "email": "ann@example.com", "groups": ["editors"]})
        >>> user.id, user.email, user.groups
        (42, 'ann@example.com', ['editors'])
    """

    is_authenticated = True
    is_active = True

    def __init__(self, claims: Mapping[str, Any]) -> None:
        self.claims = dict(claims)
        sub = str(claims.get("sub", ""))
        self.id: int | str = int(sub) if sub.isdigit() else sub
        self.email: str | None = claims.get("email")
        self.is_staff = bool(claims.get("is_staff", False))
        self.is_superuser = bool(claims.get("is_superuser", False))
        self.permissions = list(claims.get("permissions", ()) or ())
        self.groups = list(claims.get("groups", ()) or ())

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["claims"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"<TokenUser id={self.id!r}>"


@dataclass(frozen=True)
class Authenticated:
    """A successful login: the user, and the backend that vouched for it."""

    user: Any
    backend: AuthBackend


class RequestAuthenticator:
    """The app's auth-backend chain (the container's `auth.authenticator`).

    Args:
        token_backend: verifies the Bearer access tokens.
        user_model: returns the configured user model, or None; called per use, so an
            override of the container's `auth.user_model` takes effect at once.
        sessions: refuses revoked access tokens (logout, password change); None trusts every
            well-signed token until it expires.
        custom_backends: returns the registered auth backends, in chain order; called per use,
            so a backend registered after the app was built still joins the chain.

    Example:
        >>> authenticator = app.container.auth.authenticator()  # doctest: +SKIP
        >>> await authenticator.authenticate(request, db)  # doctest: +SKIP
    """

    def __init__(
        self,
        token_backend: TokenBackend,
        user_model: Callable[[], type[Any] | None] = lambda: None,
        sessions: RefreshTokens | None = None,
        custom_backends: Callable[[], tuple[AuthBackend, ...]] = registered_auth_backends,
    ) -> None:
        self.token_backend = token_backend
        self._user_model = user_model
        self._custom_backends = custom_backends
        self.model_backend = ModelAuthBackend(user_model)
        self.bearer_backend = TokenAuthBackend(
            token_backend,
            self.user_for_token,
            sessions.check_access if sessions is not None else None,
        )

    @property
    def user_model(self) -> type[Any] | None:
        """The user model tokens resolve to, or None for stateless token users."""
        return self._user_model()

    def backends(self) -> tuple[AuthBackend, ...]:
        """The chain, in the order it is asked."""
        return (self.bearer_backend, self.model_backend, *self._custom_backends())

    def backend(self, name: str) -> AuthBackend | None:
        """The backend of the chain called `name`, or None."""
        for backend in self.backends():
            if backend.name == name:
                return backend
        return None

    async def authenticate(self, request: Any, db: Any) -> Any | None:
        """The user of `request`, or None when it carries no `Authorization` header.

        Raises:
            NotAuthenticatedError: the header is there but no backend accepts it (an invalid,
                expired or wrong-type token; an unknown scheme; a deleted or inactive user).
        """
        if not request.headers.get("authorization"):
            return None
        for backend in self.backends():
            user = await backend.authenticate(request, db)
            if user is not None:
                return user
        raise NotAuthenticatedError("Authorization header must be 'Bearer <token>'.")

    async def authenticate_credentials(
        self, request: Any, db: Any, **credentials: Any
    ) -> Authenticated | None:
        """Ask each backend in turn with `credentials`; the first active user wins.

        Returns:
            The user and its backend, or None when no backend accepts the credentials.
        """
        if not credentials:
            return None
        for backend in self.backends():
            user = await backend.authenticate(request, db, **credentials)
            if user is not None and getattr(user, "is_active", True):
                return Authenticated(user, backend)
        return None

    async def user_for_token(self, payload: Mapping[str, Any], db: Any) -> Any | None:
        """The user a verified token's payload stands for.

        The custom backend named by the `auth_backend` claim, when this process registered
        it (its `get_user`, with the id as an int when it is all digits); else the user model
        (None if the row is gone); else, with no user model, a stateless `TokenUser`.
        """
        sub = payload.get("sub")
        if sub is None:
            return None
        named = payload.get(AUTH_BACKEND_CLAIM)
        if isinstance(named, str):
            backend = self._custom_backend(named)
            if backend is not None:
                # `sub` is always a string in a JWT; custom backends get the id back as an int
                # when it looks like one (the spec's `get_user(self, user_id: int, db)`). The
                # model backend takes the string: its lookup converts to the key's own type.
                text = str(sub)
                return await backend.get_user(int(text) if text.isdigit() else text, db)
        if self.user_model is not None:
            return await self.model_backend.get_user(sub, db)
        return TokenUser(payload)

    def _custom_backend(self, name: str) -> AuthBackend | None:
        for backend in self._custom_backends():
            if backend.name == name:
                return backend
        return None


async def authenticate(request: Any, db: Any, **credentials: Any) -> Any | None:
    """Check credentials against the auth-backend chain of the running app, Django style.

    Args:
        request: the current request (backends may read it, e.g. its client address).
        db: the unit of work.
        **credentials: e.g. `email=` and `password=` for the model backend, or what your
            own backend reads (`username=`, `otp=`).

    Returns:
        The first active user a backend returns, or None.

    Example:
        >>> user = await authenticate(request, db, email=email, password=password)  # doctest: +SKIP
    """
    authenticator = current_container().auth.authenticator()
    found = await authenticator.authenticate_credentials(request, db, **credentials)
    return found.user if found is not None else None
