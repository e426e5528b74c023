"""The built-in auth backends: `token` (Bearer JWT) and `model` (email and password)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from core.auth.errors import InvalidTokenError
from core.errors import FieldError, NotAuthenticatedError
from core.ports.tokens import TokenBackend

__all__ = ("ModelAuthBackend", "TokenAuthBackend")

UserLoader = Callable[[Mapping[str, Any], Any], Awaitable[Any | None]]
#: Refuses a verified access token that was revoked (raises InvalidTokenError): the payload and
#: the token (see `RefreshTokens.check_access`).
RevocationCheck = Callable[[Mapping[str, Any], str], Awaitable[None]]


class TokenAuthBackend:
    """Authenticates `Authorization: Bearer <access token>` (or a `token=` credential).

    A request whose header uses another scheme is not this backend's (None: the chain asks the
    next backend). A Bearer header with a bad token is refused outright with 401 rather than
    treated as anonymous, as DRF does: malformed, expired, tampered, `alg: none` and refresh
    tokens all fail `TokenBackend.verify_token(token, "access")`. So are tokens whose user is
    gone or inactive, and revoked ones (a logout, a password change).

    Args:
        token_backend: verifies the tokens.
        load_user: turns a verified payload into the user (see
            `RequestAuthenticator.user_for_token`).
        check_revoked: refuses revoked tokens (the token store's view); None checks nothing.

    Example:
        >>> backend = app.container.auth.authenticator().backend("token")  # doctest: +SKIP
        >>> await backend.authenticate(request, db, token=access_token)  # doctest: +SKIP
        <User pk=1>
    """

    name: ClassVar[str] = "token"

    def __init__(
        self,
        token_backend: TokenBackend,
        load_user: UserLoader,
        check_revoked: RevocationCheck | None = None,
    ) -> None:
        self.token_backend = token_backend
        self._load_user = load_user
        self._check_revoked = check_revoked

    async def authenticate(self, request: Any, db: Any, **credentials: Any) -> Any | None:
        if credentials:
            # A login-style call: only a `token` credential is ours, and a bad one is "no".
            token = credentials.get("token")
            if not isinstance(token, str):
                return None
            payload = self.token_backend.verify_token(token, token_type="access")
            if payload is None:
                return None
            if self._check_revoked is not None:
                try:
                    await self._check_revoked(payload, token)
                except InvalidTokenError:
                    return None
            return await self._load_user(payload, db)
        header = request.headers.get("authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        if not token:
            raise NotAuthenticatedError("Authorization header must be 'Bearer <token>'.")
        payload = self.token_backend.verify_token(token, token_type="access")
        if payload is None:
            raise InvalidTokenError()
        if self._check_revoked is not None:
            await self._check_revoked(payload, token)
        user = await self._load_user(payload, db)
        if user is None or not getattr(user, "is_active", True):
            raise InvalidTokenError("The token's user does not exist or is inactive.")
        return user

    async def get_user(self, user_id: Any, db: Any) -> Any | None:
        return await self._load_user({"sub": user_id}, db)


class ModelAuthBackend:
    """Authenticates `email=` (or `username=`) and `password=` credentials with the user
    model's `authenticate` classmethod (`AbstractUser.authenticate`), and loads users by
    primary key.

    Args:
        user_model: returns the configured user model, or None (then this backend accepts
            nobody).

    Example:
        >>> backend = ModelAuthBackend(lambda: User)  # doctest: +SKIP
        >>> await backend.authenticate(request, db, email="a@x.io", password="pw")  # doctest: +SKIP
        <User pk=1>
    """

    name: ClassVar[str] = "model"

    def __init__(self, user_model: Callable[[], type[Any] | None]) -> None:
        self._user_model = user_model

    async def authenticate(self, request: Any, db: Any, **credentials: Any) -> Any | None:
        email = credentials.get("email", credentials.get("username"))
        password = credentials.get("password")
        model = self._user_model()
        if (
            model is None
            or not isinstance(email, str)
            or not isinstance(password, str)
            or not callable(getattr(model, "authenticate", None))
        ):
            return None
        return await model.authenticate(email, password, db)

    async def get_user(self, user_id: Any, db: Any) -> Any | None:
        model = self._user_model()
        if model is None:
            return None
        try:
            return await model.objects.using(db).get_or_none(pk=user_id)
        except FieldError:
            # A `sub` that is not a valid key for this model (a token from another service):
            # no such user here.
            return None
