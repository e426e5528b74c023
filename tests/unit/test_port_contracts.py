"""The shipped contract suites on the built-in adapters: every passlib scheme, the JWT backend
(HS256 and RS256) and the in-memory rate limiter. (The Repository, EventBroker, TaskQueue and
TokenStore suites run in their adapters' own test modules.)"""

from __future__ import annotations

import functools

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.adapters.jwt.tokens import JwtTokenBackend
from core.adapters.passlib.hashers import PasslibPasswordHasher
from core.ports.hashing import PasswordHasher
from core.ports.tokens import TokenBackend
from core.testing import (
    InMemoryRateLimiter,
    PasswordHasherContract,
    RateLimiterContract,
    TokenBackendContract,
)

SECRET = "contract-tests-secret-key-long-enough-for-hs256-0123456789"


@pytest.mark.parametrize("scheme", ["pbkdf2_sha256", "argon2", "bcrypt", "scrypt"])
class TestPasslibPasswordHasher(PasswordHasherContract):
    @pytest.fixture
    def hasher(self, scheme: str) -> PasswordHasher:
        return PasslibPasswordHasher(scheme)


class TestJwtHs256(TokenBackendContract):
    @pytest.fixture
    def backend(self) -> TokenBackend:
        return JwtTokenBackend(SECRET)

    @pytest.fixture
    def other_backend(self) -> TokenBackend:
        return JwtTokenBackend(SECRET[::-1])


@functools.cache
def _rsa_pem() -> tuple[bytes, bytes]:
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


class TestJwtRs256(TokenBackendContract):
    @pytest.fixture
    def backend(self) -> TokenBackend:
        private, public = _rsa_pem()
        return JwtTokenBackend("", algorithm="RS256", private_key=private, public_key=public)

    @pytest.fixture
    def other_backend(self) -> TokenBackend:
        # Same algorithm, another key pair: its tokens must not verify here.
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return JwtTokenBackend("", algorithm="RS256", private_key=private)


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestInMemoryRateLimiter(RateLimiterContract):
    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    def limiter(self, clock: ManualClock) -> InMemoryRateLimiter:
        self._clock = clock
        return InMemoryRateLimiter(clock=clock)

    async def advance(self, seconds: float) -> None:
        self._clock.now += seconds


def test_the_suites_load_on_first_use_only() -> None:
    import subprocess
    import sys

    code = (
        "import sys, core.testing\n"
        "from core import Model\n"
        "before = {m for m in sys.modules if m.startswith('core.testing.contracts')}\n"
        "from core.testing import PasswordHasherContract\n"
        "after = {m for m in sys.modules if m.startswith('core.testing.contracts')}\n"
        "print(sorted(before), sorted(after), 'test_authors' in Model.metadata.tables)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert out == "[] ['core.testing.contracts', 'core.testing.contracts.hashing'] False"
