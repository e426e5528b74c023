"""The PasswordHasher contract: what every hasher, built-in or yours, must do.

Subclass `PasswordHasherContract` and provide a `hasher` fixture. The unit tests run it on every
passlib scheme (pbkdf2_sha256, argon2, bcrypt, scrypt); docs/testing.md runs it on a custom one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import pytest

from core.ports.hashing import PasswordHasher

PASSWORD = "correct horse battery staple"


class PasswordHasherContract:
    """Behaviour every PasswordHasher shares; see the port's docstring.

    Real schemes cost tens to hundreds of milliseconds per call by design, so the suite hashes
    as little as it can.
    """

    #: Hashes a hasher of yours must refuse to verify (garbage, truncated, other schemes).
    malformed_hashes: ClassVar[tuple[str, ...]] = (
        "",
        "not-a-hash",
        "$",
        "$$$$",
        "$unknown$1$2$3",
        "$pbkdf2-sha256$600000$abc$def",
        "$2b$12$tooshort",
        "\x00\xff",
    )

    @pytest.fixture
    def hasher(self) -> PasswordHasher:
        raise NotImplementedError("a hasher's test class provides the `hasher` fixture")

    def test_satisfies_the_port(self, hasher: PasswordHasher) -> None:
        assert isinstance(hasher, PasswordHasher)
        assert isinstance(hasher.name, str) and hasher.name

    def test_a_hash_verifies_its_password_and_no_other(self, hasher: PasswordHasher) -> None:
        hashed = hasher.hash(PASSWORD)

        assert isinstance(hashed, str)
        assert PASSWORD not in hashed, "the hash must not carry the password"
        assert hasher.verify(PASSWORD, hashed) is True
        assert hasher.verify(PASSWORD + " ", hashed) is False

    def test_hashing_twice_gives_two_salted_hashes(self, hasher: PasswordHasher) -> None:
        first, second = hasher.hash(PASSWORD), hasher.hash(PASSWORD)

        assert first != second, "each hash needs a fresh salt"
        assert hasher.verify(PASSWORD, second) is True

    def test_non_ascii_passwords_round_trip(self, hasher: PasswordHasher) -> None:
        password = "pão de queijo ✓ 密码"

        hashed = hasher.hash(password)

        assert hasher.verify(password, hashed) is True
        assert hasher.verify("pao de queijo ✓ 密码", hashed) is False

    def test_a_malformed_or_foreign_hash_is_false_never_an_error(
        self, hasher: PasswordHasher
    ) -> None:
        for hashed in self.malformed_hashes:
            assert hasher.verify(PASSWORD, hashed) is False, hashed

    def test_a_fresh_hash_needs_no_rehash(self, hasher: PasswordHasher) -> None:
        assert hasher.needs_rehash(hasher.hash(PASSWORD)) is False

    def test_threads_can_share_one_hasher(self, hasher: PasswordHasher) -> None:
        # The framework calls one hasher instance from a pool of threads.
        passwords = [f"{PASSWORD}-{n}" for n in range(2)]

        with ThreadPoolExecutor(max_workers=2) as pool:
            hashes = list(pool.map(hasher.hash, passwords))
            checks = list(pool.map(hasher.verify, passwords, [hashes[0], hashes[0]]))

        assert checks == [True, False]
        assert hasher.verify(passwords[1], hashes[1]) is True
