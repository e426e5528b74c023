"""Groups and permission codes: `Group`, `Permission` and the group-permission link.

Importing this module adds `auth_groups`, `auth_permissions` and `auth_group_permissions` to
`Model.metadata`; `import core` alone does not import it.
"""

from __future__ import annotations

from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped

from core.models import Field, Model

__all__ = ("Group", "GroupPermission", "Permission")


class Group(Model):
    """A named set of users sharing permissions (`IsInGroup("editors")`).

    Example:
        >>> editors = await add_to_group(user, "editors", db)  # doctest: +SKIP
        >>> await grant_permission(editors, "posts.publish", db)  # doctest: +SKIP
    """

    __tablename__ = "auth_groups"

    id: Mapped[int] = Field.pk()
    name: Mapped[str] = Field.string(max_length=150, unique=True)


class Permission(Model):
    """A permission code, `"app_label.codename"` (e.g. `"posts.delete"`), checked by
    `HasPermission`. Not to be confused with `core.permissions.Permission`, the base class of
    permission *checks*.

    Example:
        >>> await grant_permission(user, "posts.delete", db)  # doctest: +SKIP
        >>> await user.has_perm("posts.delete")  # doctest: +SKIP
        True
    """

    __tablename__ = "auth_permissions"

    id: Mapped[int] = Field.pk()
    code: Mapped[str] = Field.string(max_length=150, unique=True)
    name: Mapped[str] = Field.string(max_length=255, default="")


class GroupPermission(Model):
    """Link: a permission held by every member of a group."""

    __tablename__ = "auth_group_permissions"
    __table_args__ = (UniqueConstraint("group_id", "permission_id"),)

    id: Mapped[int] = Field.pk()
    group_id: Mapped[int] = Field.foreign_key("auth_groups.id", on_delete="CASCADE")
    permission_id: Mapped[int] = Field.foreign_key("auth_permissions.id", on_delete="CASCADE")
