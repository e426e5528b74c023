"""Password-hasher port: what the framework asks of pbkdf2, argon2, bcrypt, scrypt or your own."""

from __future__ import annotations

from abc import abstractmethod
from typing import Protocol, runtime_checkable


@runtime_checkable
class PasswordHasher(Protocol):
    """Hashes and verifies passwords. Subclass it to add your own (see `register_password_hasher`).

    Guarantees every implementation gives:

    - `hash` returns a self-describing string (scheme, parameters, salt, digest) and salts each
      call, so hashing one password twice gives two different strings.
    - `verify` compares in constant time and returns False, never raises, for a wrong password
      or a malformed or unknown hash.
    - `needs_rehash` is True when a stored hash, already verified, was made with another scheme
      or weaker parameters than the current ones, so a successful login can store a new hash.

    The calls are CPU-bound by design (tens to hundreds of milliseconds): the framework runs them
    in worker threads (`core.auth.hashing.run_hasher`), never on the event loop.

    `name` is the value `AUTH_PASSWORD_HASHER` selects the hasher by.

    Example:
        >>> class Plain(PasswordHasher):  # for illustration only: never store plain text
        ...     name = "plain"
        ...     def hash(self, password: str) -> str:
        ...         return "plain$" + password
        ...     def verify(self, password: str, hashed: str) -> bool:
        ...         return hashed == "plain$" + password
        >>> Plain().verify("s3cret", Plain().hash("s3cret"))
        True
    """

    # A plain `str` rather than ClassVar: a class attribute (`name = "custom"`) and an instance
    # attribute (one PasslibPasswordHasher per scheme) both fit it under mypy.
    name: str

    @abstractmethod
    def hash(self, password: str) -> str:
        """Hash `password` with a fresh salt.

        Returns:
            The encoded hash, to store as is.
        """

    @abstractmethod
    def verify(self, password: str, hashed: str) -> bool:
        """Whether `password` matches `hashed`; False (never an exception) when `hashed` is
        malformed or made by a scheme this hasher does not know."""

    def needs_rehash(self, hashed: str) -> bool:
        """Whether `hashed` should be replaced by `hash(password)` after a successful `verify`.

        The default says never, for hashers with a single fixed configuration.
        """
        return False
