"""The user model base, `AbstractUser`: email login, password hash, flags, permissions.

Each concrete `AbstractUser` subclass adds two link tables named after its own table,
`<table>_groups` and `<table>_permissions`, with real foreign keys to it and to the tables of
`core.auth.groups`; they are reachable as `User.GroupLink` and `User.PermissionLink`.
`import core` alone loads none of this, so a service without users has no auth tables.
"""

from __future__ import annotations

import datetime
import weakref
from typing import Any, ClassVar, Self, cast

from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped, validates

from core.auth.groups import Group, GroupPermission, Permission
from core.auth.hashing import run_hasher
from core.auth.passwords import HARD_MAX_LENGTH
from core.context import current_container
from core.errors import ConfigurationError, ValidationFailedError
from core.models import Field, Model
from core.ports.hashing import PasswordHasher

__all__ = ("UNUSABLE_PASSWORD", "AbstractUser")

#: A stored password starting with this never verifies (`set_unusable_password`).
UNUSABLE_PASSWORD = "!"
_PERMISSIONS_CACHE = "_core_auth_permissions"


class AbstractUser(Model):
    """Base class of the project's user model: email login, password hash, flags, permissions.

    Columns: `id`, `email` (unique, stored normalized: stripped and lower-cased), `password`
    (the hash; never the password), `is_active`, `is_staff`, `is_superuser`, `last_login`,
    `created_at`, `updated_at`. Subclass it with a `__tablename__` and add your own columns;
    override `id` for another key type.

    Emails are compared case-insensitively by storing them lower-cased: every assignment to
    `email` (including `objects.create(email=...)`) normalizes it, and `get_by_email`
    normalizes its argument, so lookups stay exact matches on the unique index.

    Example:
        >>> class User(AbstractUser):  # doctest: +SKIP
        ...     __tablename__ = "users"
        ...     name: Mapped[str] = Field.string(max_length=100, default="")
        >>> user = await User.create_user(  # doctest: +SKIP
        ...     email="Ann@Example.com", password="s3cret-pass", db=db
        ... )
        >>> user.email  # doctest: +SKIP
        'ann@example.com'
        >>> await User.authenticate("ann@example.com", "s3cret-pass", db)  # doctest: +SKIP
        <User pk=1>
    """

    __abstract__ = True

    # Negative sort orders put these columns before a subclass's own in the table; the
    # timestamps keep the default order and so come last.
    id: Mapped[int] = Field.pk(sort_order=-7)
    email: Mapped[str] = Field.string(max_length=254, unique=True, sort_order=-6)
    # Flagged write-only so derived output schemas leave the hash out of responses.
    password: Mapped[str] = Field.string(
        max_length=255, default=UNUSABLE_PASSWORD, info={"write_only": True}, sort_order=-5
    )
    is_active: Mapped[bool] = Field.boolean(default=True, sort_order=-4)
    is_staff: Mapped[bool] = Field.boolean(default=False, sort_order=-3)
    is_superuser: Mapped[bool] = Field.boolean(default=False, sort_order=-2)
    last_login: Mapped[datetime.datetime | None] = Field.datetime(nullable=True, sort_order=-1)
    created_at: Mapped[datetime.datetime] = Field.datetime(auto_now_add=True)
    updated_at: Mapped[datetime.datetime] = Field.datetime(auto_now=True)

    #: Link model of the user's groups (`<table>_groups`: user_id, group_id).
    GroupLink: ClassVar[type[Model]]
    #: Link model of the user's own permissions (`<table>_permissions`: user_id, permission_id).
    PermissionLink: ClassVar[type[Model]]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        # Only a class with a table of its own gets link tables; a subclass sharing its
        # parent's table (single-table inheritance) shares its links too.
        if "__table__" in cls.__dict__:
            cls.GroupLink = _link_model(cls, "groups", "group", Group)
            cls.PermissionLink = _link_model(cls, "permissions", "permission", Permission)

    @validates("email")
    def _normalize_email(self, key: str, value: Any) -> Any:
        return self.normalize_email(value) if isinstance(value, str) else value

    @property
    def is_authenticated(self) -> bool:
        """Always True for a user object (anonymous requests have no user at all)."""
        return True

    @staticmethod
    def normalize_email(email: str) -> str:
        """The stored form of an email: surrounding spaces removed, lower-cased.

        The whole address is lower-cased, not only the domain: two accounts differing only in
        the case of the local part are nearly always one person, and a case-sensitive match
        would lock users out for typing `Ann@` instead of `ann@`.
        """
        return email.strip().lower()

    # -- class-level API ----------------------------------------------------------------------
    @classmethod
    async def get_by_email(cls, email: str, db: Any = None) -> Self | None:
        """The user with this email (case-insensitively), or None.

        Example:
            >>> if await User.get_by_email(data.email, db): ...  # doctest: +SKIP
        """
        if not isinstance(email, str) or not email.strip():
            return None
        found = await cls.objects.using(db).get_or_none(email=cls.normalize_email(email))
        return cast("Self | None", found)

    @classmethod
    async def create_user(
        cls, email: str, password: str | None = None, db: Any = None, **extra: Any
    ) -> Self:
        """Create and save a user with a hashed password.

        Args:
            email: normalized before it is stored.
            password: checked against the password policy, then hashed with the configured
                hasher (off the event loop). None stores an unusable password (a user who
                logs in through another backend, e.g. LDAP).
            db: the unit of work; the ambient one when None.
            **extra: other column values (`is_staff=True`, `name="Ann"`...).

        Raises:
            PasswordPolicyError: the password breaks the policy (400, with every reason).
            UniqueViolationError: the email is taken (400, field `email`).
            ValidationFailedError: no email.

        Example:
            >>> await User.create_user(  # doctest: +SKIP
            ...     email=data.email, password=data.password, db=db
            ... )
        """
        if not isinstance(email, str) or not cls.normalize_email(email):
            raise ValidationFailedError("A user needs an email address.")
        user = cls(email=email, **extra)
        await user.set_password(password)
        await user.save(db)
        return user

    @classmethod
    async def create_superuser(
        cls, email: str, password: str | None = None, db: Any = None, **extra: Any
    ) -> Self:
        """`create_user` with `is_staff=True` and `is_superuser=True`.

        Raises:
            ValidationFailedError: `extra` sets either flag to False.
        """
        for flag in ("is_staff", "is_superuser"):
            if extra.setdefault(flag, True) is not True:
                raise ValidationFailedError(f"A superuser must have {flag}=True.")
        return await cls.create_user(email, password, db, **extra)

    @classmethod
    async def authenticate(cls, email: str, password: str, db: Any = None) -> Self | None:
        """The active user with this email and password, or None.

        Constant work whatever the outcome: an unknown email is checked against a dummy hash,
        and an inactive user's password is verified before being refused, so response times
        do not reveal which emails exist. On success `last_login` is updated and, when the
        stored hash uses another scheme or weaker parameters than the current hasher
        (`needs_rehash`), the password is re-hashed with the current one and saved.

        Example:
            >>> user = await User.authenticate(data.email, data.password, db)  # doctest: +SKIP
        """
        hasher = _hasher()
        dummy = await _dummy_hash(hasher)
        if (
            not isinstance(email, str)
            or not isinstance(password, str)
            # Past passlib's limit nothing can match; refuse before doing any work.
            or len(password) > HARD_MAX_LENGTH
        ):
            return None
        user = await cls.get_by_email(email, db)
        if user is None or not user.has_usable_password():
            await run_hasher(hasher.verify, password, dummy)
            return None
        if not await run_hasher(hasher.verify, password, user.password):
            return None
        if not user.is_active:
            return None
        if hasher.needs_rehash(user.password):
            user.password = await run_hasher(hasher.hash, password)
        user.last_login = datetime.datetime.now(datetime.UTC)
        await user.save(db)
        return user

    # -- passwords ----------------------------------------------------------------------------
    async def set_password(self, password: str | None, *, validate: bool = True) -> None:
        """Hash `password` into `password` (not saved: call `save(db)`).

        Args:
            password: the new password; None makes the password unusable.
            validate: check it against the password policy first (the default).

        Raises:
            PasswordPolicyError: it breaks the policy.
        """
        if password is None:
            self.set_unusable_password()
            return
        container = current_container()
        if validate:
            container.auth.password_policy().validate(password, self)
        hasher: PasswordHasher = container.auth.password_hasher()
        self.password = await run_hasher(hasher.hash, password)

    async def check_password(self, password: str) -> bool:
        """Whether `password` matches the stored hash (verified off the event loop)."""
        if not isinstance(password, str) or not self.has_usable_password():
            return False
        return await run_hasher(_hasher().verify, password, self.password)

    def set_unusable_password(self) -> None:
        """Store a value no password verifies, for users who log in another way."""
        self.password = UNUSABLE_PASSWORD

    def has_usable_password(self) -> bool:
        return bool(self.password) and not self.password.startswith(UNUSABLE_PASSWORD)

    # -- groups and permissions ---------------------------------------------------------------
    async def has_perm(self, code: str, db: Any = None) -> bool:
        """Whether the user holds permission `code`: superusers hold every permission, others
        hold those granted to them or to one of their groups. Inactive users hold none.

        Args:
            code: `"app_label.codename"`.
            db: the unit of work; the ambient one (the request's) when None.

        Example:
            >>> await user.has_perm("posts.delete")  # doctest: +SKIP
        """
        if not self.is_active:
            return False
        if self.is_superuser:
            return True
        return code in await self.get_all_permissions(db)

    async def has_perms(self, codes: list[str] | tuple[str, ...], db: Any = None) -> bool:
        """Whether the user holds every permission in `codes`."""
        for code in codes:
            if not await self.has_perm(code, db):
                return False
        return True

    async def get_all_permissions(self, db: Any = None) -> frozenset[str]:
        """The codes of every permission the user holds directly or through a group.

        Loaded once per user object (at most four small queries) and kept on it: a request
        checking several permissions queries once. `grant_permission` and friends clear it.
        """
        cached: frozenset[str] | None = self.__dict__.get(_PERMISSIONS_CACHE)
        if cached is not None:
            return cached
        cls = type(self)
        group_ids = [
            row["group_id"]
            for row in await cls.GroupLink.objects.using(db)
            .filter(user_id=self.pk)
            .values("group_id")
        ]
        permission_ids = {
            row["permission_id"]
            for row in await cls.PermissionLink.objects.using(db)
            .filter(user_id=self.pk)
            .values("permission_id")
        }
        if group_ids:
            permission_ids.update(
                row["permission_id"]
                for row in await GroupPermission.objects.using(db)
                .filter(group_id__in=group_ids)
                .values("permission_id")
            )
        codes: frozenset[str] = frozenset()
        if permission_ids:
            codes = frozenset(
                row["code"]
                for row in await Permission.objects.using(db)
                .filter(id__in=sorted(permission_ids))
                .values("code")
            )
        self.__dict__[_PERMISSIONS_CACHE] = codes
        return codes

    async def in_group(self, name: str, db: Any = None) -> bool:
        """Whether the (active) user belongs to the group called `name`; one query.

        Example:
            >>> await user.in_group("editors")  # doctest: +SKIP
        """
        if not self.is_active:
            return False
        links = type(self).GroupLink.objects.using(db)
        return await links.filter(user_id=self.pk, group__name=name).exists()

    async def get_group_names(self, db: Any = None) -> frozenset[str]:
        """The names of the user's groups."""
        group_ids = [
            row["group_id"]
            for row in await type(self)
            .GroupLink.objects.using(db)
            .filter(user_id=self.pk)
            .values("group_id")
        ]
        if not group_ids:
            return frozenset()
        rows = await Group.objects.using(db).filter(id__in=group_ids).values("name")
        return frozenset(row["name"] for row in rows)

    def clear_permission_cache(self) -> None:
        """Forget the permission codes `get_all_permissions` kept on this object."""
        self.__dict__.pop(_PERMISSIONS_CACHE, None)


def _hasher() -> PasswordHasher:
    hasher: PasswordHasher = current_container().auth.password_hasher()
    return hasher


_dummy_hashes: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


async def _dummy_hash(hasher: PasswordHasher) -> str:
    # One hash per hasher of a password nobody has, verified when the email is unknown so that
    # path costs what a wrong password costs. Made on the first login attempt of any kind, so
    # even the first unknown email is not faster than a known one.
    try:
        return _dummy_hashes[hasher]
    except KeyError:
        pass
    except TypeError:  # an unhashable or not weak-referenceable hasher: no caching
        return await run_hasher(hasher.hash, "core-framework-dummy-password")
    dummy = await run_hasher(hasher.hash, "core-framework-dummy-password")
    _dummy_hashes[hasher] = dummy
    return dummy


def _link_model(
    user: type[AbstractUser], suffix: str, target_name: str, target: type[Model]
) -> type[Model]:
    table: Any = user.__table__
    keys = list(table.primary_key.columns)
    if len(keys) != 1:
        raise ConfigurationError(
            f"{user.__name__} needs a single-column primary key to link groups and permissions."
        )
    key = keys[0]
    try:
        key_type: Any = key.type.python_type
    except NotImplementedError:
        key_type = int
    target_field = f"{target_name}_id"
    class_name = f"{user.__name__}{suffix.capitalize()[:-1]}Link"
    namespace = {
        "__module__": user.__module__,
        "__qualname__": class_name,
        "__doc__": f"Link: {user.__name__} <-> {target.__name__}.",
        "__tablename__": f"{table.name}_{suffix}",
        "__table_args__": (UniqueConstraint("user_id", target_field),),
        "__annotations__": {
            "id": Mapped[int],
            "user_id": Mapped[key_type],
            target_field: Mapped[int],
        },
        "id": Field.pk(),
        "user_id": Field.foreign_key(f"{table.name}.{key.name}", on_delete="CASCADE"),
        target_field: Field.foreign_key(f"{target.__tablename__}.id", on_delete="CASCADE"),
    }
    return cast(type[Model], type(class_name, (Model,), namespace))
