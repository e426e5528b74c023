"""AbstractUser: creation, email normalization, passwords, authenticate and hash upgrades."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from dependency_injector import providers

from core import CoreApp
from core.adapters.passlib.hashers import PasslibPasswordHasher
from core.auth import AbstractUser, PasswordPolicyError
from core.auth.models import UNUSABLE_PASSWORD
from core.errors import UniqueViolationError, ValidationFailedError
from core.models import Model
from core.testing import test_settings
from tests.unit.auth.models import User
from tests.unit.auth.support import PASSWORD, FastHasher


async def test_create_user_hashes_the_password_and_normalizes_the_email(
    auth_app: CoreApp, hasher: FastHasher
) -> None:
    async with auth_app.session() as db:
        user = await User.create_user(
            email="  Ann.Lee@Example.COM ", password=PASSWORD, db=db, name="Ann"
        )

    assert user.id is not None
    assert user.email == "ann.lee@example.com"
    assert user.name == "Ann"
    assert user.password.startswith("fast$") and PASSWORD not in user.password
    assert (user.is_active, user.is_staff, user.is_superuser) == (True, False, False)
    assert user.last_login is None
    assert isinstance(user.created_at, datetime.datetime)
    assert user.is_authenticated is True
    assert await user.check_password(PASSWORD)
    assert not await user.check_password(PASSWORD + "!")


async def test_get_by_email_is_case_insensitive(auth_app: CoreApp, hasher: FastHasher) -> None:
    async with auth_app.session() as db:
        created = await User.create_user(email="ann@example.com", password=PASSWORD, db=db)
        assert await User.get_by_email("ANN@Example.com ", db) is created
        assert await User.get_by_email("bob@example.com", db) is None
        assert await User.get_by_email("", db) is None
        assert await User.get_by_email(None, db) is None  # type: ignore[arg-type]


async def test_every_way_of_setting_the_email_normalizes_it(
    auth_app: CoreApp, hasher: FastHasher
) -> None:
    async with auth_app.session() as db:
        user = await User.objects.using(db).create(email="Bob@Example.com", db=db)
        assert user.email == "bob@example.com"
        # No password given: one that no password verifies.
        assert user.password == UNUSABLE_PASSWORD and not user.has_usable_password()
        user.email = "BOB@EXAMPLE.ORG"
        assert user.email == "bob@example.org"


async def test_emails_differing_only_in_case_are_one_account(
    auth_app: CoreApp, hasher: FastHasher
) -> None:
    async with auth_app.session() as db:
        await User.create_user(email="ann@example.com", password=PASSWORD, db=db)
        with pytest.raises(UniqueViolationError) as caught:
            await User.create_user(email="ANN@example.com", password=PASSWORD, db=db)
    assert caught.value.field == "email"


async def test_create_user_needs_an_email_and_a_policy_abiding_password(
    auth_app: CoreApp, hasher: FastHasher
) -> None:
    async with auth_app.session() as db:
        with pytest.raises(ValidationFailedError):
            await User.create_user(email="  ", password=PASSWORD, db=db)
        with pytest.raises(PasswordPolicyError) as caught:
            await User.create_user(email="ann@example.com", password="short", db=db)
        assert caught.value.status_code == 400
        assert caught.value.reasons == [
            "This password is too short: it must contain at least 8 characters."
        ]
        assert await User.objects.using(db).count() == 0


async def test_create_user_without_password_stores_an_unusable_one(
    auth_app: CoreApp, hasher: FastHasher
) -> None:
    async with auth_app.session() as db:
        user = await User.create_user(email="ldap@example.com", db=db)
        assert not user.has_usable_password()
        assert await User.authenticate("ldap@example.com", UNUSABLE_PASSWORD, db) is None
        assert await User.authenticate("ldap@example.com", "", db) is None


async def test_create_superuser_sets_both_flags(auth_app: CoreApp, hasher: FastHasher) -> None:
    async with auth_app.session() as db:
        root = await User.create_superuser(email="root@example.com", password=PASSWORD, db=db)
        assert root.is_staff and root.is_superuser
        with pytest.raises(ValidationFailedError, match="is_superuser=True"):
            await User.create_superuser(
                email="x@example.com", password=PASSWORD, db=db, is_superuser=False
            )


async def test_authenticate_returns_the_user_and_stamps_last_login(
    auth_app: CoreApp, hasher: FastHasher
) -> None:
    async with auth_app.session() as db:
        await User.create_user(email="ann@example.com", password=PASSWORD, db=db)
    async with auth_app.session() as db:
        user = await User.authenticate("Ann@Example.com", PASSWORD, db)
        assert user is not None and user.last_login is not None
    async with auth_app.session() as db:
        stored = await User.objects.using(db).get(email="ann@example.com")
        assert stored.last_login == user.last_login


async def test_authenticate_does_the_same_work_for_unknown_wrong_and_inactive(
    auth_app: CoreApp, hasher: FastHasher
) -> None:
    async with auth_app.session() as db:
        await User.create_user(email="ann@example.com", password=PASSWORD, db=db)
        await User.create_user(email="off@example.com", password=PASSWORD, db=db, is_active=False)

    outcomes: dict[str, Any] = {}
    for name, email, password in [
        ("unknown", "nobody@example.com", PASSWORD),
        ("wrong", "ann@example.com", "wrong password"),
        ("inactive", "off@example.com", PASSWORD),
        ("right", "ann@example.com", PASSWORD),
    ]:
        before = hasher.verified
        async with auth_app.session() as db:
            user = await User.authenticate(email, password, db)
        # One password verification each: an unknown email verifies a dummy hash.
        outcomes[name] = (user is not None, hasher.verified - before)

    assert outcomes == {
        "unknown": (False, 1),
        "wrong": (False, 1),
        "inactive": (False, 1),
        "right": (True, 1),
    }


async def test_authenticate_refuses_non_strings_and_huge_passwords_without_hashing(
    auth_app: CoreApp, hasher: FastHasher
) -> None:
    async with auth_app.session() as db:
        await User.create_user(email="ann@example.com", password=PASSWORD, db=db)
        before = hasher.verified
        assert await User.authenticate("ann@example.com", "x" * 5000, db) is None
        assert await User.authenticate(None, PASSWORD, db) is None  # type: ignore[arg-type]
        assert await User.authenticate("ann@example.com", None, db) is None  # type: ignore[arg-type]
        assert hasher.verified == before


async def test_set_password_checks_the_policy_unless_told_not_to(
    auth_app: CoreApp, hasher: FastHasher
) -> None:
    async with auth_app.session() as db:
        user = await User.create_user(email="ann@example.com", password=PASSWORD, db=db)
        with pytest.raises(PasswordPolicyError):
            await user.set_password("1234")
        await user.set_password("1234", validate=False)
        await user.save(db)
        assert await user.check_password("1234")
        await user.set_password(None)
        assert not await user.check_password("1234")


async def test_a_hasher_change_still_verifies_old_hashes_and_upgrades_them_on_login(
    hasher: FastHasher,
) -> None:
    # Real schemes: users registered under pbkdf2_sha256 log in after a switch to argon2, and
    # their hash is upgraded on that login, transparently.
    app = CoreApp(settings=test_settings())
    async with app.lifespan():
        await app.create_all()
        with app.container.auth.password_hasher.override(PasslibPasswordHasher("pbkdf2_sha256")):
            async with app.session() as db:
                user = await User.create_user(email="old@example.com", password=PASSWORD, db=db)
        old_hash = user.password
        assert old_hash.startswith("$pbkdf2-sha256$")

        with app.container.auth.password_hasher.override(PasslibPasswordHasher("argon2")):
            async with app.session() as db:
                assert await User.authenticate("old@example.com", "wrong password", db) is None
                assert (await User.objects.using(db).get(id=user.id)).password == old_hash
            async with app.session() as db:
                upgraded = await User.authenticate("old@example.com", PASSWORD, db)
            assert upgraded is not None
            assert upgraded.password.startswith("$argon2id$")
            async with app.session() as db:
                stored = await User.objects.using(db).get(id=user.id)
                assert stored.password == upgraded.password
                # And the new hash verifies on the next login without another upgrade.
                again = await User.authenticate("old@example.com", PASSWORD, db)
                assert again is not None and again.password == upgraded.password


def test_abstract_user_has_no_table_and_subclasses_get_link_tables() -> None:
    assert not hasattr(AbstractUser, "__table__")
    tables = Model.metadata.tables
    assert {"auth_groups", "auth_permissions", "auth_group_permissions"} <= set(tables)
    groups, permissions = User.GroupLink.__table__, User.PermissionLink.__table__  # type: ignore[attr-defined]
    assert (groups.name, permissions.name) == (
        "auth_test_users_groups",
        "auth_test_users_permissions",
    )
    assert {fk.target_fullname for fk in groups.foreign_keys} == {
        "auth_test_users.id",
        "auth_groups.id",
    }
    assert {fk.target_fullname for fk in permissions.foreign_keys} == {
        "auth_test_users.id",
        "auth_permissions.id",
    }
    # The password hash is write-only: derived output schemas leave it out.
    from core.views.schemas import output_schema_for

    assert "password" not in output_schema_for(User).model_fields
    assert "email" in output_schema_for(User).model_fields


def test_the_user_model_can_be_overridden_per_container(hasher: FastHasher) -> None:
    app = CoreApp(settings=test_settings())
    assert app.container.auth.user_model() is User
    with app.container.auth.user_model.override(providers.Object(None)):
        assert app.container.auth.authenticator().user_model is None
    assert app.container.auth.authenticator().user_model is User
