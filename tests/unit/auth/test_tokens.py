"""Token backends: the PyJWT adapter, the registry and the container's `token_backend`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from core.adapters.jwt.tokens import JwtTokenBackend
from core.auth import TokenBackend, register_token_backend
from core.containers import build_container
from core.errors import ConfigurationError
from core.settings import Settings
from core.testing import isolated_declarations

SECRET = "test-secret-key-that-is-long-enough-for-hs256-and-more"


def tokens_for(**settings: Any) -> TokenBackend:
    """The token backend an app built from these settings uses."""
    settings.setdefault("secret_key", SECRET)
    backend: TokenBackend = build_container(Settings(**settings)).auth.token_backend()
    return backend


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def claims_of(token: str) -> dict[str, Any]:
    """A token's claims without any check, to forge variants of it."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


@pytest.fixture(autouse=True)
def _registries() -> Iterator[None]:
    with isolated_declarations():
        yield


@pytest.fixture(scope="module")
def rsa_pem() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.fixture
def rsa_files(tmp_path: Path, rsa_pem: tuple[bytes, bytes]) -> tuple[str, str]:
    private, public = tmp_path / "private.pem", tmp_path / "public.pem"
    private.write_bytes(rsa_pem[0])
    public.write_bytes(rsa_pem[1])
    return str(private), str(public)


class CustomJWT(TokenBackend):
    """The spec's custom token backend: PyJWT HS512 with its own claim layout."""

    name = "custom_jwt"

    def create_token(
        self,
        payload: dict[str, Any],
        token_type: str = "access",
        expires_delta: timedelta | None = None,
    ) -> str:
        claims = {**payload, "kind": token_type, "exp": 4_102_444_800}  # year 2100
        return jwt.encode(claims, SECRET * 2, algorithm="HS512")

    def decode_token(self, token: str) -> dict[str, Any] | None:
        try:
            payload: dict[str, Any] = jwt.decode(token, SECRET * 2, algorithms=["HS512"])
        except jwt.PyJWTError:
            return None
        return payload

    def verify_token(self, token: str, token_type: str = "access") -> dict[str, Any] | None:
        payload = self.decode_token(token)
        return payload if payload is not None and payload.get("kind") == token_type else None


def test_access_token_round_trip() -> None:
    tokens = tokens_for()

    token = tokens.create_token({"sub": 42, "email": "ana@example.com"})
    payload = tokens.verify_token(token, token_type="access")

    assert payload is not None
    assert payload["sub"] == "42"
    assert payload["email"] == "ana@example.com"
    assert payload["type"] == "access"
    assert payload["exp"] - payload["iat"] == 30 * 60
    assert len(payload["jti"]) == 32 and int(payload["jti"], 16) >= 0


def test_refresh_token_differs_from_access_token() -> None:
    tokens = tokens_for(auth_refresh_token_expire_days=7)

    access = tokens.create_token({"sub": "7"}, token_type="access")
    refresh = tokens.create_token({"sub": "7"}, token_type="refresh")
    payload = tokens.verify_token(refresh, token_type="refresh")

    assert access != refresh
    assert payload is not None
    assert payload["exp"] - payload["iat"] == 7 * 24 * 3600
    assert tokens.verify_token(refresh, token_type="access") is None
    assert tokens.verify_token(access, token_type="refresh") is None


def test_every_token_gets_its_own_jti() -> None:
    tokens = tokens_for()

    first = tokens.decode_token(tokens.create_token({"sub": "1"}))
    second = tokens.decode_token(tokens.create_token({"sub": "1"}))

    assert first is not None and second is not None
    assert first["jti"] != second["jti"]


def test_expired_token_is_rejected() -> None:
    tokens = tokens_for()

    token = tokens.create_token({"sub": "1"}, expires_delta=timedelta(seconds=-5))

    assert tokens.decode_token(token) is None
    assert tokens.verify_token(token) is None


def test_leeway_accepts_a_token_expired_within_it() -> None:
    tokens = tokens_for(auth_leeway_seconds=60)

    token = tokens.create_token({"sub": "1"}, expires_delta=timedelta(seconds=-5))

    assert tokens.verify_token(token) is not None


def test_token_without_exp_is_rejected() -> None:
    token = jwt.encode({"sub": "1", "type": "access"}, SECRET, algorithm="HS256")

    assert tokens_for().decode_token(token) is None


def test_token_signed_with_another_secret_is_rejected() -> None:
    other = tokens_for(secret_key="another-secret-key-that-is-also-long-enough-for-hs256")

    token = other.create_token({"sub": "1"})

    assert tokens_for().decode_token(token) is None


def test_tampered_payload_is_rejected() -> None:
    tokens = tokens_for()
    header, _payload, signature = tokens.create_token({"sub": "1"}).split(".")
    forged_claims = {**claims_of(tokens.create_token({"sub": "1"})), "sub": "2"}

    forged = f"{header}.{segment(forged_claims)}.{signature}"

    assert tokens.decode_token(forged) is None


def test_alg_none_token_forged_by_hand_is_rejected() -> None:
    tokens = tokens_for()
    claims = claims_of(tokens.create_token({"sub": "1"}))

    for alg in ("none", "None", "NONE"):
        forged = f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(claims)}."
        assert tokens.decode_token(forged) is None
        assert tokens.verify_token(forged) is None


def test_hs256_token_signed_with_the_rs256_public_key_is_rejected(
    rsa_files: tuple[str, str], rsa_pem: tuple[bytes, bytes]
) -> None:
    private_file, public_file = rsa_files
    tokens = tokens_for(
        auth_algorithm="RS256",
        auth_private_key_file=private_file,
        auth_public_key_file=public_file,
    )
    claims = claims_of(tokens.create_token({"sub": "1"}))
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{segment(claims)}"
    # The classic confusion attack: the public key, known to everyone, used as an HMAC secret.
    signature = hmac.new(rsa_pem[1], signing_input.encode(), hashlib.sha256).digest()

    forged = f"{signing_input}.{b64url(signature)}"

    assert tokens.decode_token(forged) is None


def test_rs256_round_trip_from_key_files(rsa_files: tuple[str, str]) -> None:
    private_file, public_file = rsa_files
    tokens = tokens_for(
        auth_algorithm="RS256",
        auth_private_key_file=private_file,
        auth_public_key_file=public_file,
    )

    token = tokens.create_token({"sub": "1"})

    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert tokens.verify_token(token) is not None


def test_rs256_public_key_is_derived_from_the_private_key(rsa_files: tuple[str, str]) -> None:
    tokens = tokens_for(auth_algorithm="RS256", auth_private_key_file=rsa_files[0])

    assert tokens.verify_token(tokens.create_token({"sub": "1"})) is not None


def test_verify_only_service_accepts_tokens_but_cannot_create_them(
    rsa_files: tuple[str, str],
) -> None:
    private_file, public_file = rsa_files
    issuer = tokens_for(auth_algorithm="RS256", auth_private_key_file=private_file)
    verifier = tokens_for(auth_algorithm="RS256", auth_public_key_file=public_file)

    assert verifier.verify_token(issuer.create_token({"sub": "1"})) is not None
    with pytest.raises(ConfigurationError, match="AUTH_PRIVATE_KEY_FILE"):
        verifier.create_token({"sub": "1"})


def test_es256_round_trip() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tokens = JwtTokenBackend(SECRET, algorithm="ES256", private_key=pem)

    assert tokens.verify_token(tokens.create_token({"sub": "1"})) is not None


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_longer_hmac_algorithms_round_trip(algorithm: str) -> None:
    tokens = tokens_for(auth_algorithm=algorithm, secret_key=SECRET * 2)

    token = tokens.create_token({"sub": "1"})

    assert jwt.get_unverified_header(token)["alg"] == algorithm
    assert tokens.verify_token(token) is not None
    assert tokens_for(secret_key=SECRET * 2).decode_token(token) is None  # HS256 pinned


def test_payload_cannot_override_reserved_claims() -> None:
    tokens = tokens_for()

    token = tokens.create_token({"sub": "1", "type": "refresh", "exp": 4_102_444_800})
    payload = tokens.decode_token(token)

    assert payload is not None
    assert payload["type"] == "access"
    assert payload["exp"] - payload["iat"] == 30 * 60
    assert tokens.verify_token(token, token_type="refresh") is None


def test_token_type_is_checked_against_the_claim() -> None:
    tokens = tokens_for()

    token = tokens.create_token({"sub": "1"}, token_type="password_reset")

    assert tokens.verify_token(token, token_type="password_reset") is not None
    assert tokens.verify_token(token, token_type="access") is None


def test_subject_none_is_refused() -> None:
    with pytest.raises(ValueError, match="sub"):
        tokens_for().create_token({"sub": None})


def test_issuer_and_audience_are_written_and_required() -> None:
    tokens = tokens_for(auth_issuer="user-api", auth_audience="shop")
    plain = tokens_for()
    other_audience = tokens_for(auth_issuer="user-api", auth_audience="billing")
    other_issuer = tokens_for(auth_issuer="order-api", auth_audience="shop")

    token = tokens.create_token({"sub": "1"})
    payload = tokens.verify_token(token)

    assert payload is not None
    assert (payload["iss"], payload["aud"]) == ("user-api", "shop")
    assert tokens.verify_token(plain.create_token({"sub": "1"})) is None
    assert other_audience.verify_token(token) is None
    assert other_issuer.verify_token(token) is None


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "a.b", "....", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln", "é.é.é"],
)
def test_garbage_never_raises(token: str) -> None:
    tokens = tokens_for()

    assert tokens.decode_token(token) is None
    assert tokens.verify_token(token) is None


def test_payload_that_is_not_a_json_object_is_rejected() -> None:
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{b64url(b'[1, 2]')}"
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()

    assert tokens_for().decode_token(f"{signing_input}.{b64url(signature)}") is None


def test_custom_token_backend_is_selected_by_name() -> None:
    custom = register_token_backend(CustomJWT())

    tokens = tokens_for(auth_token_backend="custom_jwt")
    token = tokens.create_token({"sub": "1"}, token_type="refresh")

    assert tokens is custom
    assert tokens.verify_token(token, token_type="refresh") == {
        "sub": "1",
        "kind": "refresh",
        "exp": 4_102_444_800,
    }
    assert tokens.verify_token(token, token_type="access") is None


def test_unknown_token_backend_lists_the_known_ones() -> None:
    register_token_backend(CustomJWT())

    with pytest.raises(ConfigurationError, match=r"paseto.*jwt, custom_jwt"):
        tokens_for(auth_token_backend="paseto")


def test_builtin_token_backend_name_cannot_be_registered() -> None:
    class Shadow(CustomJWT):
        name = "jwt"

    with pytest.raises(ConfigurationError, match="built-in"):
        register_token_backend(Shadow())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"auth_algorithm": "RS256"}, "key pair"),
        (
            {"auth_algorithm": "RS256", "auth_private_key_file": "/nonexistent.pem"},
            "cannot be read",
        ),
        ({"secret_key": "", "environment": "development"}, "SECRET_KEY is not set"),
    ],
)
def test_unusable_configuration_fails_when_the_backend_is_built(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        tokens_for(**settings)


def test_public_key_file_given_as_private_key_is_refused(rsa_files: tuple[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="public key"):
        tokens_for(auth_algorithm="RS256", auth_private_key_file=rsa_files[1])


def test_pem_key_as_hmac_secret_is_refused(rsa_pem: tuple[bytes, bytes]) -> None:
    with pytest.raises(ConfigurationError, match="HS256"):
        JwtTokenBackend(rsa_pem[1], algorithm="HS256")


def test_alg_none_cannot_be_configured() -> None:
    with pytest.raises(ConfigurationError, match="Unsupported"):
        JwtTokenBackend(SECRET, algorithm="none")


def test_each_container_builds_its_own_token_backend() -> None:
    first = build_container(Settings(secret_key=SECRET))
    second = build_container(Settings(secret_key=SECRET * 2))

    assert first.auth.token_backend() is first.auth.token_backend()
    token = first.auth.token_backend().create_token({"sub": "1"})
    assert second.auth.token_backend().decode_token(token) is None
