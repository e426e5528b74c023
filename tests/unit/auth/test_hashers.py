"""Password hashers: the passlib adapter, the registry and the container's `password_hasher`."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator

import bcrypt
import pytest
from passlib.hash import argon2, pbkdf2_sha256  # type: ignore[import-untyped]

from core.adapters.passlib.hashers import PasslibPasswordHasher
from core.auth import PasswordHasher, register_password_hasher
from core.auth.hashing import run_hasher
from core.auth.registry import password_hasher_names
from core.containers import build_container
from core.errors import ConfigurationError
from core.settings import Settings
from core.testing import isolated_declarations

BUILTIN = ("pbkdf2_sha256", "argon2", "bcrypt", "scrypt")
PASSWORD = "correct horse battery staple"


def hasher_for(name: str) -> PasswordHasher:
    """The hasher an app configured with AUTH_PASSWORD_HASHER=name uses."""
    hasher: PasswordHasher = build_container(
        Settings(auth_password_hasher=name)
    ).auth.password_hasher()
    return hasher


@pytest.fixture(autouse=True)
def _registries() -> Iterator[None]:
    with isolated_declarations():
        yield


class CustomHasher(PasswordHasher):
    """The spec's custom hasher: salted HMAC-SHA512, compared in constant time."""

    name = "custom_sha512"

    def hash(self, password: str) -> str:
        salt = "fixed-salt-for-tests"
        digest = hmac.new(salt.encode(), password.encode(), hashlib.sha512).hexdigest()
        return f"custom_sha512${salt}${digest}"

    def verify(self, password: str, hashed: str) -> bool:
        return hmac.compare_digest(self.hash(password), hashed)


@pytest.fixture(scope="module")
def stored() -> dict[str, str]:
    """One hash of PASSWORD per built-in scheme, made once: each costs up to ~0.4 s by design."""
    return {name: hasher_for(name).hash(PASSWORD) for name in BUILTIN}


@pytest.mark.parametrize("name", BUILTIN)
def test_each_builtin_scheme_round_trips(name: str, stored: dict[str, str]) -> None:
    hasher = hasher_for(name)

    assert hasher.name == name
    assert hasher.verify(PASSWORD, stored[name])
    assert not hasher.verify(PASSWORD + "r", stored[name])
    assert not hasher.needs_rehash(stored[name])


def test_hashes_are_salted(stored: dict[str, str]) -> None:
    assert hasher_for("pbkdf2_sha256").hash(PASSWORD) != stored["pbkdf2_sha256"]


def test_pbkdf2_uses_at_least_600_000_rounds(stored: dict[str, str]) -> None:
    ident, rounds = stored["pbkdf2_sha256"].split("$")[1:3]

    assert ident == "pbkdf2-sha256"
    assert int(rounds) >= 600_000


def test_argon2_is_argon2id_with_owasp_parameters(stored: dict[str, str]) -> None:
    variant, _version, params = stored["argon2"].split("$")[1:4]
    settings = dict(pair.split("=") for pair in params.split(","))

    assert variant == "argon2id"
    assert int(settings["m"]) >= 19 * 1024  # KiB
    assert int(settings["t"]) >= 2


def test_scrypt_uses_at_least_2_pow_17(stored: dict[str, str]) -> None:
    params = dict(pair.split("=") for pair in stored["scrypt"].split("$")[2].split(","))

    assert int(params["ln"]) >= 17
    assert int(params["r"]) >= 8


def test_bcrypt_is_sha256_prehashed_bcrypt(stored: dict[str, str]) -> None:
    assert stored["bcrypt"].startswith("$bcrypt-sha256$v=2,t=2b,r=12$")


def test_bcrypt_uses_every_byte_of_a_password_longer_than_72_bytes() -> None:
    hasher = hasher_for("bcrypt")
    password = "a" * 100
    differs_after_byte_72 = "a" * 72 + "b" * 28

    hashed = hasher.hash(password)

    assert hasher.verify(password, hashed)
    assert not hasher.verify(differs_after_byte_72, hashed)


@pytest.mark.parametrize(
    "hashed",
    [
        "",
        "not-a-hash",
        "$pbkdf2-sha256$600000$abc$def",
        "$argon2id$v=19$m=65536,t=3,p=4$zzz",
        "$bcrypt-sha256$v=2,t=2b,r=12$short",
        "$2b$12$tooshort",
        "$scrypt$ln=17,r=8,p=1$$",
        "$unknown$1$2$3",
    ],
)
def test_malformed_hash_never_verifies_and_needs_rehash(hashed: str) -> None:
    hasher = hasher_for("pbkdf2_sha256")

    assert hasher.verify("pw", hashed) is False
    assert hasher.needs_rehash(hashed) is True


def test_verify_returns_false_for_an_oversized_password(stored: dict[str, str]) -> None:
    assert hasher_for("argon2").verify("x" * 10_000, stored["argon2"]) is False


@pytest.mark.parametrize(
    ("old", "new"),
    [("pbkdf2_sha256", "argon2"), ("bcrypt", "argon2"), ("argon2", "pbkdf2_sha256")],
)
def test_switching_scheme_keeps_old_hashes_verifiable_and_marks_them_for_rehash(
    old: str, new: str, stored: dict[str, str]
) -> None:
    hasher = hasher_for(new)

    assert hasher.verify(PASSWORD, stored[old])
    assert not hasher.verify("wrong", stored[old])
    assert hasher.needs_rehash(stored[old])
    assert not hasher.needs_rehash(stored[new])


def test_weaker_parameters_of_the_same_scheme_need_rehash() -> None:
    pbkdf2_hasher = hasher_for("pbkdf2_sha256")
    weak_pbkdf2 = pbkdf2_sha256.using(rounds=100_000).hash("pw")
    argon2_hasher = hasher_for("argon2")
    weak_argon2 = argon2.using(memory_cost=8192, rounds=2).hash("pw")

    assert pbkdf2_hasher.verify("pw", weak_pbkdf2)
    assert pbkdf2_hasher.needs_rehash(weak_pbkdf2)
    assert argon2_hasher.verify("pw", weak_argon2)
    assert argon2_hasher.needs_rehash(weak_argon2)


def test_plain_bcrypt_hashes_from_other_apps_verify_and_are_upgraded() -> None:
    legacy = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    hasher = hasher_for("bcrypt")

    assert hasher.verify("s3cret", legacy)
    assert hasher.needs_rehash(legacy)


def test_plain_bcrypt_hash_refuses_passwords_it_would_truncate() -> None:
    legacy = bcrypt.hashpw(b"a" * 72, bcrypt.gensalt(rounds=4)).decode()
    hasher = hasher_for("bcrypt")

    assert hasher.verify("a" * 72, legacy)
    assert not hasher.verify("a" * 72 + "anything", legacy)


def test_custom_hasher_is_selected_by_name() -> None:
    custom = register_password_hasher(CustomHasher())

    hasher = hasher_for("custom_sha512")

    assert hasher is custom
    assert hasher.verify("pw", hasher.hash("pw"))
    assert not hasher.needs_rehash(hasher.hash("pw"))  # the port's default
    assert "custom_sha512" in password_hasher_names()


def test_unknown_hasher_name_lists_the_known_ones() -> None:
    register_password_hasher(CustomHasher())
    container = build_container(Settings(auth_password_hasher="md5"))

    with pytest.raises(ConfigurationError) as info:
        container.auth.password_hasher()

    message = str(info.value)
    assert "md5" in message
    assert all(name in message for name in (*BUILTIN, "custom_sha512"))


def test_registration_refuses_builtin_names_classes_and_non_hashers() -> None:
    class Shadow(CustomHasher):
        name = "argon2"

    with pytest.raises(ConfigurationError, match="built-in"):
        register_password_hasher(Shadow())
    with pytest.raises(ConfigurationError, match="instance"):
        register_password_hasher(CustomHasher)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="instance"):
        register_password_hasher(object())  # type: ignore[arg-type]


def test_a_subclass_missing_a_method_fails_when_instantiated() -> None:
    class Incomplete(PasswordHasher):
        name = "incomplete"

        def hash(self, password: str) -> str:
            return password

    with pytest.raises(TypeError, match="verify"):
        Incomplete()  # type: ignore[abstract]


def test_registrations_made_in_a_test_do_not_leak() -> None:
    assert "custom_sha512" not in password_hasher_names()


def test_each_container_builds_its_own_hasher() -> None:
    first = build_container(Settings(auth_password_hasher="argon2"))
    second = build_container(Settings(auth_password_hasher="pbkdf2_sha256"))

    assert first.auth.password_hasher() is first.auth.password_hasher()
    assert first.auth.password_hasher() is not second.auth.password_hasher()
    assert second.auth.password_hasher().name == "pbkdf2_sha256"


def test_the_hasher_provider_can_be_overridden() -> None:
    container = build_container(Settings())
    fake = CustomHasher()

    with container.auth.password_hasher.override(fake):
        assert container.auth.password_hasher() is fake
    assert isinstance(container.auth.password_hasher(), PasslibPasswordHasher)


async def test_run_hasher_runs_off_the_event_loop_thread() -> None:
    hasher = CustomHasher()
    threads: list[str] = []

    def verify(password: str, hashed: str) -> bool:
        threads.append(threading.current_thread().name)
        return hasher.verify(password, hashed)

    ok = await run_hasher(verify, "pw", hasher.hash("pw"))

    assert ok is True
    assert threads and threads[0] != threading.current_thread().name
    assert threads[0].startswith("core-hasher")


async def test_run_hasher_propagates_errors() -> None:
    def boom() -> None:
        raise RuntimeError("from the hashing thread")

    with pytest.raises(RuntimeError, match="hashing thread"):
        await run_hasher(boom)
