"""Granting: put users in groups and give users or groups permission codes.

Each helper takes the unit of work as `db` (the ambient one when None) and clears the cached
permissions of the user object it changes.
"""

from __future__ import annotations

import re
from typing import Any, cast

from core.auth.groups import Group, GroupPermission, Permission
from core.auth.models import AbstractUser
from core.errors import ValidationFailedError
from core.models import Model

__all__ = ("add_to_group", "grant_permission", "remove_from_group", "revoke_permission")

_PERMISSION_CODE = re.compile(r"^[^.\s]+\.\S+$")


async def add_to_group(user: AbstractUser, group: Group | str, db: Any = None) -> Group:
    """Put `user` in `group` (a Group or a name; a missing named group is created).

    Example:
        >>> await add_to_group(user, "editors", db)  # doctest: +SKIP
    """
    found = await _group(group, db)
    await type(user).GroupLink.objects.using(db).get_or_create(user_id=user.pk, group_id=found.id)
    user.clear_permission_cache()
    return found


async def remove_from_group(user: AbstractUser, group: Group | str, db: Any = None) -> bool:
    """Take `user` out of `group`; returns whether they were in it.

    Example:
        >>> await remove_from_group(user, "editors", db)  # doctest: +SKIP
        True
    """
    found = group if isinstance(group, Group) else await _named_group(group, db)
    if found is None:
        return False
    removed = (
        await type(user)
        .GroupLink.objects.using(db)
        .filter(user_id=user.pk, group_id=found.id)
        .delete()
    )
    user.clear_permission_cache()
    return removed > 0


async def grant_permission(
    target: AbstractUser | Group, code: str, db: Any = None, *, name: str | None = None
) -> Permission:
    """Give `target` (a user, or a group and so its members) the permission `code`.

    The Permission row is created when it does not exist yet; granting twice is harmless.

    Args:
        target: a user or a Group.
        code: `"app_label.codename"`, e.g. `"posts.delete"`.
        db: the unit of work; the ambient one when None.
        name: a human description, stored when the permission is created.

    Raises:
        ValidationFailedError: `code` is not `"app_label.codename"`.

    Example:
        >>> await grant_permission(user, "posts.delete", db)  # doctest: +SKIP
    """
    permission, _ = await Permission.objects.using(db).get_or_create(
        code=_checked_code(code), defaults={"name": name or ""}
    )
    link, owner = _permission_link(target)
    await link.objects.using(db).get_or_create(**{owner: target.pk}, permission_id=permission.id)
    if isinstance(target, AbstractUser):
        target.clear_permission_cache()
    return cast(Permission, permission)


async def revoke_permission(target: AbstractUser | Group, code: str, db: Any = None) -> bool:
    """Take permission `code` back from `target`; returns whether it held it directly.

    Permissions a user holds through a group stay: remove the user from the group, or revoke
    the permission from the group.

    Example:
        >>> await revoke_permission(user, "posts.delete", db)  # doctest: +SKIP
        True
    """
    permission = await Permission.objects.using(db).get_or_none(code=_checked_code(code))
    if permission is None:
        return False
    link, owner = _permission_link(target)
    removed = (
        await link.objects.using(db)
        .filter(**{owner: target.pk}, permission_id=permission.id)
        .delete()
    )
    if isinstance(target, AbstractUser):
        target.clear_permission_cache()
    return removed > 0


def _permission_link(target: Any) -> tuple[type[Model], str]:
    if isinstance(target, Group):
        return GroupPermission, "group_id"
    if isinstance(target, AbstractUser):
        return type(target).PermissionLink, "user_id"
    raise TypeError(f"Permissions are granted to a user or a Group, not {target!r}.")


def _checked_code(code: object) -> str:
    if not isinstance(code, str) or len(code) > 150 or not _PERMISSION_CODE.match(code):
        raise ValidationFailedError(
            f"A permission code looks like 'app_label.codename' (e.g. 'posts.delete'), got "
            f"{code!r}."
        )
    return code


async def _named_group(name: str, db: Any) -> Group | None:
    return cast("Group | None", await Group.objects.using(db).get_or_none(name=name))


async def _group(group: Group | str, db: Any) -> Group:
    if isinstance(group, Group):
        return group
    if not isinstance(group, str) or not group.strip():
        raise ValidationFailedError(f"A group name must be a non-empty string, got {group!r}.")
    found, _ = await Group.objects.using(db).get_or_create(name=group)
    return cast(Group, found)
