"""The TokenBackend contract: what every token backend, built-in or yours, must do.

Subclass `TokenBackendContract` and provide a `backend` fixture (and, to check that a token
signed with another key is refused, `other_backend`). The unit tests run it on the JWT backend
with HS256 and RS256.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.ports.tokens import TokenBackend


class TokenBackendContract:
    """Behaviour every TokenBackend shares; see the port's docstring."""

    @pytest.fixture
    def backend(self) -> TokenBackend:
        raise NotImplementedError("a backend's test class provides the `backend` fixture")

    @pytest.fixture
    def other_backend(self) -> TokenBackend | None:
        """A backend of the same kind with another key; None skips that test."""
        return None

    def test_satisfies_the_port(self, backend: TokenBackend) -> None:
        assert isinstance(backend, TokenBackend)
        assert isinstance(backend.name, str) and backend.name

    def test_a_token_carries_its_claims_type_and_expiry(self, backend: TokenBackend) -> None:
        token = backend.create_token({"sub": "42", "email": "ann@example.com"})

        payload = backend.verify_token(token, "access")

        assert payload is not None
        assert payload["sub"] == "42" and payload["email"] == "ann@example.com"
        assert payload["type"] == "access"
        assert "exp" in payload
        assert backend.decode_token(token) == payload

    def test_a_token_of_another_type_does_not_verify(self, backend: TokenBackend) -> None:
        refresh = backend.create_token({"sub": "42"}, token_type="refresh")

        assert backend.verify_token(refresh, "access") is None
        verified = backend.verify_token(refresh, "refresh")
        assert verified is not None and verified["type"] == "refresh"
        decoded = backend.decode_token(refresh)
        assert decoded is not None and decoded["type"] == "refresh"

    def test_an_expired_token_is_none(self, backend: TokenBackend) -> None:
        token = backend.create_token({"sub": "42"}, expires_delta=timedelta(minutes=-5))

        assert backend.decode_token(token) is None
        assert backend.verify_token(token, "access") is None

    def test_a_tampered_token_is_none(self, backend: TokenBackend) -> None:
        token = backend.create_token({"sub": "42"})
        other = backend.create_token({"sub": "43"})
        head, _, signature = token.rpartition(".")
        middle = len(signature) // 2
        flipped = "A" if signature[middle : middle + 1] != "A" else "B"
        tampered = [
            # One character of the signature changed (in the middle: every bit counts there).
            f"{head}.{signature[:middle]}{flipped}{signature[middle + 1 :]}",
            # Another token's signature on this token's claims.
            f"{head}.{other.rpartition('.')[2]}",
            token[: len(token) // 2],
        ]

        for bad in tampered:
            assert backend.decode_token(bad) is None, bad
            assert backend.verify_token(bad, "access") is None, bad

    @pytest.mark.parametrize(
        "garbage", ["", "abc", "a.b.c", "...", "Bearer x", "\x00\xff", "é.é.é", "a" * 5000]
    )
    def test_garbage_is_none_never_an_error(self, backend: TokenBackend, garbage: str) -> None:
        assert backend.decode_token(garbage) is None
        assert backend.verify_token(garbage, "access") is None

    def test_a_token_from_another_key_is_none(
        self, backend: TokenBackend, other_backend: TokenBackend | None
    ) -> None:
        if other_backend is None:
            pytest.skip("no `other_backend` fixture")
        foreign = other_backend.create_token({"sub": "42"})

        assert backend.decode_token(foreign) is None
        assert backend.verify_token(foreign, "access") is None
