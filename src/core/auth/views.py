"""AuthViewSet: ready-made register, login, refresh, me and logout endpoints."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.requests import Request
from starlette.responses import Response

from core.auth.authentication import AUTH_BACKEND_CLAIM, TokenUser
from core.auth.errors import InvalidCredentialsError, InvalidTokenError
from core.auth.passwords import HARD_MAX_LENGTH
from core.auth.refresh import RefreshTokens
from core.auth.registry import BUILTIN_AUTH_BACKENDS
from core.errors import ConfigurationError, UniqueViolationError
from core.permissions import AllowAny, IsAuthenticated
from core.throttling import BaseThrottle, SimpleRateThrottle, parse_rate
from core.views import APIView, action
from core.views.schemas import output_schema_for

__all__ = (
    "AuthRateThrottle",
    "AuthViewSet",
    "LoginInput",
    "RefreshInput",
    "RegisterInput",
    "TokenPair",
)

# Deliberately loose (one @, a dot in the domain, no spaces): the only real check of an email
# address is a message to it.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
Email = Annotated[str, Field(max_length=254)]


class RegisterInput(BaseModel):
    """Body of `POST register/`."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    # The password policy (AUTH_PASSWORD_MAX_LENGTH) has the last word; this bound only keeps
    # absurd bodies from reaching it.
    password: Annotated[str, Field(max_length=HARD_MAX_LENGTH)]

    @field_validator("email")
    @classmethod
    def _looks_like_an_email(cls, value: str) -> str:
        if not _EMAIL.match(value.strip()):
            raise ValueError("Enter a valid email address.")
        return value


class LoginInput(BaseModel):
    """Body of `POST login/`: `password` and `email` (or `username`, for custom backends)."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    username: Annotated[str, Field(max_length=254)] | None = None
    password: Annotated[str, Field(max_length=HARD_MAX_LENGTH)]

    @model_validator(mode="after")
    def _has_an_identifier(self) -> LoginInput:
        if self.email is None and self.username is None:
            raise ValueError("Send an email (or a username) with the password.")
        return self


class RefreshInput(BaseModel):
    """Body of `POST refresh/` and `POST logout/`."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, Field(max_length=8192)]


class TokenPair(BaseModel):
    """What login and refresh answer."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"


class UserOutput(BaseModel):
    """What register and me answer when the view names no user model: the user's columns
    but the password hash (these at least)."""

    model_config = ConfigDict(extra="allow")

    id: int | str
    email: str | None = None
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}
_ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
# Login, refresh and logout are open to anyone (AllowAny) and still answer 401: credentials or
# a token that do not hold.
_REFUSED = {
    "401": {
        "description": "Invalid credentials (`invalid_credentials`) or token (`invalid_token`)",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
        "content": _ERROR_BODY,
    }
}
# What a throttled action can also answer (FastAPI merges these into the operation's responses).
_THROTTLED = {
    "429": {
        "description": "Too many attempts (`throttled`)",
        "headers": _RETRY_AFTER,
        "content": _ERROR_BODY,
    },
    "503": {
        "description": "The password-hashing queue is full (`service_busy`)",
        "headers": _RETRY_AFTER,
        "content": _ERROR_BODY,
    },
}


def _throttled(*, hashes: bool = True, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    # `extra`: more responses of the action.
    # What a throttled action can also answer (FastAPI merges these into its responses).
    responses = dict(_THROTTLED) if hashes else {"429": _THROTTLED["429"]}
    return {"responses": {**responses, **(extra or {})}}


class AuthRateThrottle(SimpleRateThrottle):
    """AuthViewSet's login, register and refresh, per client address and action:
    THROTTLE_RATES["auth"]."""

    scope = "auth"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if view.action not in getattr(view, "throttled_actions", ()):
            return None
        return f"{self.scope}:{view.action}:ip:{self.get_ident(request, view)}"


class AuthViewSet(APIView):
    """Ready-made authentication endpoints for the configured user model.

    Register it like any view: `router.register("/auth", AuthViewSet)`.

    - `POST register/` `{"email", "password"}` → 201 with the user. 409 when the email is taken
      (`field: "email"`), 400 when the password breaks the policy (every reason listed).
    - `POST login/` `{"email", "password"}` → `{"access_token", "refresh_token",
      "token_type"}`. The credentials go through the auth-backend chain (the user model,
      then registered backends). One 401 body for an unknown email, a wrong password and an
      inactive user.
    - `POST refresh/` `{"refresh_token"}` → a new pair; the old refresh token is spent.
      Presenting a spent one again revokes every token of its login (its family): 401;
      except within AUTH_REFRESH_GRACE_SECONDS, where a concurrent refresh gets the same pair.
    - `GET me/` → the current user (401 when anonymous).
    - `POST logout/` `{"refresh_token"}` → 204; the login's refresh and access tokens stop
      working (the access token of the `Authorization` header too, whatever its login).

    Login, register and refresh are throttled (429 with `Retry-After`) per client address,
    THROTTLE_RATES["auth"], and per account (the email, or the refresh token's user),
    THROTTLE_RATES["auth_account"]; `throttled_actions` lists them. A full password-hashing
    queue answers 503 with `Retry-After` (AUTH_HASHING_QUEUE_SIZE).

    Customize by subclassing: `user_model` (else the `configure_auth` one),
    `register_schema`, `login_schema`, `user_output_schema` (else every column of the model but
    the password hash) and `token_claims(user)`.

    Example:
        >>> router = AutoRouter(prefix="/api/v1")  # doctest: +SKIP
        >>> router.register("/auth", AuthViewSet)  # doctest: +SKIP
    """

    tags: ClassVar[list[str] | None] = ["Auth"]
    permission_classes = (AllowAny,)
    user_model: ClassVar[type[Any] | None] = None
    register_schema: ClassVar[type[BaseModel]] = RegisterInput
    login_schema: ClassVar[type[BaseModel]] = LoginInput
    user_output_schema: ClassVar[type[BaseModel] | None] = None
    throttled_actions: ClassVar[frozenset[str]] = frozenset({"login", "register", "refresh"})

    # -- endpoints ----------------------------------------------------------------------------
    @action(
        methods=["POST"],
        detail=False,
        status_code=201,
        openapi_extra=_throttled(
            extra={
                "400": {
                    "description": "The password breaks the policy (`code: invalid_password`; "
                    "`detail` maps `password` to every reason), or a malformed body"
                },
                "409": {
                    "description": "The email is taken (`code: unique`, `field: email`)",
                    "content": _ERROR_BODY,
                },
            }
        ),
    )
    async def register(self, request: Request, db: Any, **kwargs: Any) -> Any:
        """Create an account."""
        data = self.register_schema.model_validate(await request.json())
        values = data.model_dump()
        email, password = values.pop("email"), values.pop("password")
        await self.throttle_account(email)
        model = self.get_user_model()
        if await model.get_by_email(email, db) is not None:
            raise UniqueViolationError("A user with this email already exists.", field="email")
        user = await model.create_user(email=email, password=password, db=db, **values)
        return self.serialize_user(user)

    @action(
        methods=["POST"],
        detail=False,
        openapi_extra=_throttled(extra=_REFUSED),
        response_model=TokenPair,
    )
    async def login(self, request: Request, db: Any, **kwargs: Any) -> Any:
        """Exchange credentials for an access and a refresh token."""
        data = self.login_schema.model_validate(await request.json())
        account = getattr(data, "email", None) or getattr(data, "username", None)
        if isinstance(account, str):
            await self.throttle_account(account)
        found = await self.container.auth.authenticator().authenticate_credentials(
            request, db, **data.model_dump(exclude_none=True)
        )
        if found is None:
            raise InvalidCredentialsError()
        tokens: RefreshTokens = self.container.auth.refresh_tokens()
        version = await tokens.token_store.session_version(str(found.user.id))
        return self.issue_tokens(found.user, found.backend.name, version=version)

    @action(
        methods=["POST"],
        detail=False,
        openapi_extra=_throttled(hashes=False, extra=_REFUSED),
        response_model=TokenPair,
    )
    async def refresh(self, request: Request, db: Any, **kwargs: Any) -> Any:
        """Spend a refresh token for a new pair."""
        data = RefreshInput.model_validate(await request.json())
        claims = self.container.auth.token_backend().verify_token(data.refresh_token, "refresh")
        if claims is not None and claims.get("sub") is not None:
            await self.throttle_account(f"user:{claims['sub']}")
        tokens: RefreshTokens = self.container.auth.refresh_tokens()
        # Checked, then the next pair made, then spent: spending last lets a concurrent refresh
        # with the same token (within AUTH_REFRESH_GRACE_SECONDS) answer with this same pair.
        payload = await tokens.check_refresh(data.refresh_token)
        user = await self.container.auth.authenticator().user_for_token(payload, db)
        if user is None or not getattr(user, "is_active", True):
            await tokens.revoke_family(tokens.family_of(payload))
            raise InvalidTokenError("The token's user does not exist or is inactive.")
        backend = payload.get(AUTH_BACKEND_CLAIM)
        pair = self.issue_tokens(
            user, backend if isinstance(backend, str) else "", previous=payload
        )
        return await tokens.spend(payload, pair)

    @action(methods=["GET"], detail=False, permission_classes=[IsAuthenticated])
    async def me(self, request: Request, db: Any, **kwargs: Any) -> Any:
        """The authenticated user."""
        return self.serialize_user(request.state.user)

    @action(
        methods=["POST"],
        detail=False,
        status_code=204,
        response_class=Response,
        openapi_extra={"responses": _REFUSED},
    )
    async def logout(self, request: Request, db: Any, **kwargs: Any) -> Any:
        """Revoke the tokens of this login: its refresh tokens, and its access tokens (the one
        in the `Authorization` header included) until they expire."""
        data = RefreshInput.model_validate(await request.json())
        tokens: RefreshTokens = self.container.auth.refresh_tokens()
        await tokens.revoke(data.refresh_token)
        scheme, _, access = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and access.strip():
            await tokens.revoke_access(access.strip())
        return None

    # -- hooks --------------------------------------------------------------------------------
    def get_throttles(self) -> list[BaseThrottle]:
        """The view's throttles (THROTTLE_DEFAULT_CLASSES unless set) and `AuthRateThrottle`."""
        return [*super().get_throttles(), AuthRateThrottle()]

    async def throttle_account(self, account: str) -> None:
        """Count this attempt against `account` (an email or user id), per action:
        THROTTLE_RATES["auth_account"]; the key holds a digest, never the address itself.

        Raises:
            ThrottledError: the account's rate is spent (429 with `Retry-After`).
        """
        if self.action not in self.throttled_actions:
            return
        rate = self.container.throttling.rates().get("auth_account")
        if rate is None:
            return
        limit, window = parse_rate(rate)
        digest = hashlib.sha256(account.strip().lower().encode()).hexdigest()[:32]
        result = await self.container.throttling.rate_limiter().hit(
            f"auth_account:{self.action}:{digest}", limit=limit, window=window
        )
        if not result.allowed:
            self.throttled(result.retry_after)

    @classmethod
    def request_model_for(cls, handler: str) -> type[BaseModel] | None:
        """The bodies the actions read: `register_schema`, `login_schema`, and RefreshInput
        for refresh and logout; each a named component of the OpenAPI document."""
        bodies: dict[str, type[BaseModel]] = {
            "register": cls.register_schema,
            "login": cls.login_schema,
            "refresh": RefreshInput,
            "logout": RefreshInput,
        }
        return bodies.get(handler) or super().request_model_for(handler)

    @classmethod
    def response_model_for(cls, handler: str) -> Any:
        """register and me answer the user: `user_output_schema`, else the `user_model`'s
        columns, else UserOutput (the model configure_auth declares is known at run time)."""
        if handler not in ("register", "me"):
            return super().response_model_for(handler)
        if cls.user_output_schema is not None:
            return cls.user_output_schema
        if cls.user_model is not None and hasattr(cls.user_model, "__mapper__"):
            return output_schema_for(cls.user_model)
        return UserOutput

    def get_user_model(self) -> Any:
        """`user_model`, else the one `configure_auth(user_model=...)` declared.

        Raises:
            ConfigurationError: neither is set.
        """
        model = self.user_model or self.container.auth.user_model()
        if model is None:
            raise ConfigurationError(
                f"{type(self).__name__} needs a user model: configure_auth(user_model=User) "
                "or set `user_model` on the view."
            )
        return model

    def token_claims(self, user: Any) -> dict[str, Any]:
        """Claims of the access token besides `sub`: `email`, `is_staff`, `is_superuser`.

        They let a service without a user table (a `TokenUser`) apply IsStaff and IsAdmin.
        Override to add more (e.g. `permissions` or `groups` for HasPermission/IsInGroup
        there).
        """
        claims: dict[str, Any] = {}
        email = getattr(user, "email", None)
        if email is not None:
            claims["email"] = email
        for flag in ("is_staff", "is_superuser"):
            if getattr(user, flag, False):
                claims[flag] = True
        return claims

    def issue_tokens(
        self,
        user: Any,
        backend: str,
        family: str | None = None,
        *,
        previous: Mapping[str, Any] | None = None,
        version: int = 0,
    ) -> dict[str, str]:
        """A token pair for `user`, who logged in through `backend`.

        Args:
            user: the user the tokens are for.
            backend: the name of the auth backend that vouched for it.
            family: the family to continue; a new one when None.
            previous: the payload of the refresh token being rotated: the pair continues its
                family, session version and login time.
            version: the user's session version (a login).
        """
        # A user from a custom backend is loaded back by that backend's `get_user`.
        custom = backend not in ("", *BUILTIN_AUTH_BACKENDS)
        routing = {AUTH_BACKEND_CLAIM: backend} if custom else {}
        tokens: RefreshTokens = self.container.auth.refresh_tokens()
        claims = {**self.token_claims(user), **routing}
        if previous is not None:
            return tokens.next_pair(
                previous, user_id=user.id, claims=claims, refresh_claims=routing
            )
        return tokens.issue(
            user.id, claims=claims, refresh_claims=routing, family=family, version=version
        )

    def serialize_user(self, user: Any) -> Any:
        """The user as the response body."""
        if isinstance(user, TokenUser) or not hasattr(type(user), "__mapper__"):
            return {
                name: getattr(user, name, None)
                for name in ("id", "email", "is_active", "is_staff", "is_superuser")
            }
        model: Any = type(user)
        schema = self.user_output_schema or output_schema_for(model)
        return schema.model_validate(user, from_attributes=True).model_dump(mode="json")
