"""JwtTokenBackend: typed access and refresh tokens on PyJWT (HS*, RS*, PS*, ES*, EdDSA)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jwt
from jwt.algorithms import requires_cryptography

from core.errors import ConfigurationError

_HMAC_ALGORITHMS: Final = frozenset({"HS256", "HS384", "HS512"})
#: Every algorithm this backend accepts; "none" is deliberately absent.
ALGORITHMS: Final = _HMAC_ALGORITHMS | frozenset(requires_cryptography)

# Set by the backend on every token and never taken from the caller's payload, so extra claims
# cannot forge a token's type, lifetime, id, issuer or audience.
_RESERVED_CLAIMS: Final = frozenset({"type", "exp", "iat", "jti", "iss", "aud"})


class JwtTokenBackend:
    """Token backend on PyJWT, the one `AUTH_TOKEN_BACKEND=jwt` selects.

    Tokens carry `sub` (as a string), `type`, `exp`, `iat`, `jti` (a random uuid4 hex) and, when
    configured, `iss` and `aud`. Decoding accepts only `algorithm`, so an `alg: none` token, or
    an HS256 token signed with an RS256 public key, is rejected; it requires `exp`, and `iss` and
    `aud` when configured.

    Args:
        secret_key: the HMAC secret for HS256/HS384/HS512 (ignored by the asymmetric ones).
        algorithm: the signing algorithm, pinned for decoding.
        access_token_expire_minutes: default lifetime of `access` tokens (and of other types).
        refresh_token_expire_days: default lifetime of `refresh` tokens.
        private_key: PEM private key that signs RS*/PS*/ES*/EdDSA tokens. Leave it out for a
            verify-only service, which then cannot create tokens.
        public_key: PEM public key that verifies them; derived from `private_key` when omitted.
        issuer: written to `iss` and required on decode.
        audience: written to `aud` and required on decode.
        leeway: seconds of clock skew tolerated on `exp` and `iat` (for tokens made by other
            machines).

    Raises:
        ConfigurationError: unsupported algorithm, a missing or unusable key.

    Example:
        >>> tokens = JwtTokenBackend("a-long-random-secret-of-at-least-32-bytes!")
        >>> token = tokens.create_token({"sub": 42})
        >>> tokens.verify_token(token, token_type="access")["sub"]
        '42'
        >>> tokens.verify_token(token, token_type="refresh") is None
        True
    """

    name = "jwt"

    def __init__(
        self,
        secret_key: str | bytes,
        algorithm: str = "HS256",
        access_token_expire_minutes: int = 30,
        refresh_token_expire_days: int = 7,
        private_key: str | bytes | None = None,
        public_key: str | bytes | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        leeway: float = 0,
    ) -> None:
        if algorithm not in ALGORITHMS:
            known = ", ".join(sorted(ALGORITHMS))
            raise ConfigurationError(
                f"Unsupported JWT algorithm {algorithm!r}; use one of: {known}."
            )
        self.algorithm = algorithm
        self.access_token_lifetime = timedelta(minutes=access_token_expire_minutes)
        self.refresh_token_lifetime = timedelta(days=refresh_token_expire_days)
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self._signing_key, self._verifying_key = _prepare_keys(
            algorithm, secret_key, private_key, public_key
        )
        self._options: jwt.types.Options = {"require": ["exp"]}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(algorithm={self.algorithm!r})"

    def create_token(
        self,
        payload: dict[str, Any],
        token_type: str = "access",
        expires_delta: timedelta | None = None,
    ) -> str:
        """Sign `payload` as a `token_type` token.

        Args:
            payload: claims to carry, usually `sub` (the user id; stored as a string). Reserved
                claims (`type`, `exp`, `iat`, `jti`, `iss`, `aud`) are set by the backend.
            token_type: the `type` claim; `refresh` defaults to the refresh lifetime, every other
                type to the access lifetime.
            expires_delta: lifetime overriding that default.

        Raises:
            ConfigurationError: an asymmetric backend configured without a private key.
            ValueError: `sub` is present but None.
        """
        if self._signing_key is None:
            raise ConfigurationError(
                f"This {self.algorithm} token backend only has a public key, so it can verify "
                "tokens but not create them; set AUTH_PRIVATE_KEY_FILE."
            )
        claims = {k: v for k, v in payload.items() if k not in _RESERVED_CLAIMS}
        if "sub" in claims:
            if claims["sub"] is None:
                # str(None) would sign a token for a user called "None".
                raise ValueError("The token subject (`sub`) must not be None.")
            # RFC 7519 makes `sub` a string, and PyJWT rejects any other type on decode.
            claims["sub"] = str(claims["sub"])
        if expires_delta is None:
            expires_delta = (
                self.refresh_token_lifetime
                if token_type == "refresh"
                else self.access_token_lifetime
            )
        now = datetime.now(UTC)
        claims.update(type=token_type, iat=now, exp=now + expires_delta, jti=uuid.uuid4().hex)
        if self.issuer is not None:
            claims["iss"] = self.issuer
        if self.audience is not None:
            claims["aud"] = self.audience
        return jwt.encode(claims, self._signing_key, algorithm=self.algorithm)

    def decode_token(self, token: str) -> dict[str, Any] | None:
        """The payload of a well-signed, unexpired token (with the configured `iss`/`aud`), or
        None for anything else."""
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self._verifying_key,
                # Pinned, never read from the token's header (RFC 8725 §2.1).
                algorithms=[self.algorithm],
                options=self._options,
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            # PyJWTError covers bad signatures, expiry and claims; ValueError and TypeError cover
            # inputs that never were a token (None, bytes that are not UTF-8). All mean "invalid".
            return None
        return payload

    def verify_token(self, token: str, token_type: str = "access") -> dict[str, Any] | None:
        """The payload of a valid token whose `type` claim is `token_type`, or None."""
        payload = self.decode_token(token)
        if payload is None or payload.get("type") != token_type:
            return None
        return payload


def _prepare_keys(
    algorithm: str,
    secret_key: str | bytes,
    private_key: str | bytes | None,
    public_key: str | bytes | None,
) -> tuple[Any, Any]:
    """(signing key, verifying key), parsed once here rather than on every call."""
    try:
        alg = jwt.get_algorithm_by_name(algorithm)
    except NotImplementedError as exc:
        # Only the asymmetric algorithms can be missing: they need `cryptography`.
        raise ConfigurationError(
            f"JWT algorithm {algorithm} needs the `cryptography` package: "
            "pip install 'pyjwt[crypto]'."
        ) from exc
    if algorithm in _HMAC_ALGORITHMS:
        if not secret_key:
            raise ConfigurationError(f"JWT algorithm {algorithm} needs a SECRET_KEY.")
        # PyJWT refuses a PEM key as an HMAC secret here, the root of HS/RS confusion.
        secret = _parse_key(alg, algorithm, secret_key)
        return secret, secret
    if private_key is None and public_key is None:
        raise ConfigurationError(
            f"JWT algorithm {algorithm} needs a key pair: set AUTH_PRIVATE_KEY_FILE (to sign) "
            "and/or AUTH_PUBLIC_KEY_FILE (to verify)."
        )
    signing = _parse_key(alg, algorithm, private_key) if private_key is not None else None
    # cryptography's private keys have public_key(); its public keys do not.
    if signing is not None and not hasattr(signing, "public_key"):
        raise ConfigurationError(
            "AUTH_PRIVATE_KEY_FILE holds a public key; it must hold the private key."
        )
    verifying: Any = _parse_key(alg, algorithm, public_key) if public_key is not None else signing
    if hasattr(verifying, "public_key"):
        # Verify with the public half even when given (or derived from) a private key.
        verifying = verifying.public_key()
    return signing, verifying


def _parse_key(alg: Any, algorithm: str, key: str | bytes) -> Any:
    try:
        return alg.prepare_key(key)
    except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"Unusable key for JWT algorithm {algorithm}: {exc}") from exc
