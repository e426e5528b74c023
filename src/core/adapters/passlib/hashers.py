"""PasslibPasswordHasher: pbkdf2_sha256, argon2 (argon2id), bcrypt and scrypt through passlib.

passlib comes from the maintained `libpass` fork. One CryptContext per hasher: the selected scheme
hashes, the other schemes only verify and are marked for rehash, so changing
AUTH_PASSWORD_HASHER never locks existing users out: their hashes upgrade at their next login.
"""

from __future__ import annotations

from typing import Any, Final

# libpass ships no type information (and types-passlib describes the old passlib 1.7).
from passlib.context import CryptContext  # type: ignore[import-untyped,unused-ignore]
from passlib.exc import MissingBackendError  # type: ignore[import-untyped,unused-ignore]

from core.errors import ConfigurationError

#: AUTH_PASSWORD_HASHER value -> passlib scheme that makes new hashes.
#: "bcrypt" is bcrypt_sha256: bcrypt only reads the first 72 bytes of a password (bcrypt >= 5
#: raises past them), so passlib first reduces the password to base64(HMAC-SHA256(salt, pw)),
#: 44 bytes, and every byte of a long password counts.
SCHEMES: Final[dict[str, str]] = {
    "pbkdf2_sha256": "pbkdf2_sha256",
    "argon2": "argon2",
    "bcrypt": "bcrypt_sha256",
    "scrypt": "scrypt",
}

# Plain `$2b$` bcrypt hashes, as made by passlib's `CryptContext(schemes=["bcrypt"])` in many
# FastAPI apps, stay verifiable so such user tables can be imported; they are always rehashed.
_LEGACY_SCHEMES: Final = ("bcrypt",)

# Work factors: OWASP Password Storage Cheat Sheet (2023+) minimums or above. Each is also the
# minimum wanted in a stored hash, so a hash made with less reports needs_rehash.
_SETTINGS: Final[dict[str, Any]] = {
    "pbkdf2_sha256__default_rounds": 600_000,
    "pbkdf2_sha256__min_rounds": 600_000,
    # RFC 9106's second recommended profile (argon2-cffi's default), pinned here so a library
    # upgrade that changes its defaults does not silently mark every stored hash for rehash.
    "argon2__type": "ID",
    "argon2__default_rounds": 3,  # time_cost
    "argon2__min_rounds": 3,
    "argon2__memory_cost": 65_536,  # KiB = 64 MiB
    "argon2__parallelism": 4,
    "argon2__digest_size": 32,
    "bcrypt_sha256__default_rounds": 12,
    "bcrypt_sha256__min_rounds": 12,
    "scrypt__default_rounds": 17,  # N = 2**17 (128 MiB with r=8)
    "scrypt__min_rounds": 17,
    "scrypt__block_size": 8,
    "scrypt__parallelism": 1,
    # A plain bcrypt hash only covers a password's first 72 bytes; refuse (verify -> False)
    # rather than truncate silently and accept every password sharing those bytes.
    "bcrypt__truncate_error": True,
}


def work_factors(name: str) -> dict[str, Any]:
    """The passlib scheme and work factors new hashes of AUTH_PASSWORD_HASHER=`name` use.

    `core container graph` shows them. `rounds` is the scheme's cost (iterations for pbkdf2,
    time cost for argon2, log2 cost for bcrypt and scrypt).

    Raises:
        KeyError: `name` is not a built-in hasher.
    """
    scheme = SCHEMES[name]
    prefix = f"{scheme}__"
    factors: dict[str, Any] = {"scheme": scheme}
    for key, value in _SETTINGS.items():
        option = key.removeprefix(prefix)
        if key.startswith(prefix) and option != "min_rounds":
            factors["rounds" if option == "default_rounds" else option] = value
    return factors


class PasslibPasswordHasher:
    """Password hasher for the built-in AUTH_PASSWORD_HASHER values, on passlib.

    Args:
        scheme: one of `pbkdf2_sha256`, `argon2`, `bcrypt`, `scrypt`; new hashes use it, and
            hashes of the other three (and plain `$2b$` bcrypt) still verify.

    Raises:
        ConfigurationError: unknown scheme, or its backend library (argon2-cffi, bcrypt) is
            missing.

    Example:
        >>> hasher = PasslibPasswordHasher("argon2")
        >>> hasher.verify("s3cret", hasher.hash("s3cret"))
        True
    """

    def __init__(self, scheme: str = "pbkdf2_sha256") -> None:
        if scheme not in SCHEMES:
            known = ", ".join(SCHEMES)
            raise ConfigurationError(f"Unknown password hasher {scheme!r}; built-in: {known}.")
        default = SCHEMES[scheme]
        others = [s for s in SCHEMES.values() if s != default]
        self.name = scheme
        self._context = CryptContext(
            schemes=[default, *others, *_LEGACY_SCHEMES],
            default=default,
            # "auto" deprecates every scheme but the default: they verify, needs_update is True.
            deprecated="auto",
            **_SETTINGS,
        )
        # Load the backend now (argon2-cffi, bcrypt; pbkdf2 and scrypt use hashlib and have
        # none), so a missing library fails at start-up and not at the first login.
        load_backend = getattr(self._context.handler(default), "get_backend", None)
        try:
            if load_backend is not None:
                load_backend()
        except MissingBackendError as exc:
            raise ConfigurationError(
                f"The {scheme!r} password hasher needs a backend library that is not "
                f"installed: {exc}"
            ) from exc

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def hash(self, password: str) -> str:
        """Hash `password` with the selected scheme and a fresh salt.

        Raises:
            ValueError: the password is longer than passlib's 4096-byte limit (a guard against
                denial of service); validate password length before hashing.
        """
        hashed: str = self._context.hash(password)
        return hashed

    def verify(self, password: str, hashed: str) -> bool:
        """Whether `password` matches `hashed`, in constant time; False for any malformed or
        unknown hash, and for passwords over passlib's size limit."""
        try:
            matches: bool = self._context.verify(password, hashed)
        except (ValueError, TypeError):
            # passlib raises ValueError (UnknownHashError, malformed hash, PasswordSizeError,
            # PasswordTruncateError) and TypeError (None or bytes of the wrong kind); for the
            # caller each of these simply means "does not match".
            return False
        return matches

    def needs_rehash(self, hashed: str) -> bool:
        """Whether `hashed` uses another scheme or weaker parameters than this hasher's.

        A hash that cannot be parsed also needs replacing, so it reports True.
        """
        try:
            outdated: bool = self._context.needs_update(hashed)
        except (ValueError, TypeError):
            return True
        return outdated
