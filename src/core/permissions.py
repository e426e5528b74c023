"""Permissions: DRF-style checks run before an action, and on the object it loads.

Classes and instances both work in `permission_classes`, and they compose with `&`, `|`, `~`:
`permission_classes = [IsAuthenticated & (IsOwner | IsAdmin)]`.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from core.models import lookups

__all__ = (
    "AllowAny",
    "HasPermission",
    "IsAdmin",
    "IsAuthenticated",
    "IsInGroup",
    "IsOwner",
    "IsStaff",
    "Permission",
    "resolve_permissions",
)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _user(request: Any) -> Any:
    return getattr(request.state, "user", None)


def _is_authenticated(user: Any) -> bool:
    return (
        user is not None
        and bool(getattr(user, "is_authenticated", True))
        and bool(getattr(user, "is_active", True))
    )


class _Composable(type):
    """Lets permission *classes* compose (`IsAuthenticated & IsOwner`), as in DRF."""

    # With `other` Any, mypy types `permission & other` as Any: the typed locals pin it down.
    def __and__(cls, other: Any) -> Permission:
        combined: Permission = _instance(cls) & other
        return combined

    # `type.__or__` makes unions of types (`int | str`); a permission class composes instead.
    def __or__(cls, other: Any) -> Permission:  # type: ignore[override]
        combined: Permission = _instance(cls) | other
        return combined

    def __rand__(cls, other: Any) -> Permission:
        return _instance(other) & cls

    def __ror__(cls, other: Any) -> Permission:  # type: ignore[override]
        return _instance(other) | cls

    def __invert__(cls) -> Permission:
        return ~_instance(cls)


class Permission(metaclass=_Composable):
    """Base class of permissions. Override either check; both allow by default.

    `message` is the detail of the 403 (or 401) response when this permission refuses.

    Example:
        >>> class IsVerified(Permission):
        ...     async def has_permission(self, request, view) -> bool:
        ...         user = getattr(request.state, "user", None)
        ...         return bool(user and getattr(user, "is_verified", False))
    """

    message: ClassVar[str] = "You do not have permission to perform this action."

    async def has_permission(self, request: Any, view: Any) -> bool:
        return True

    async def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        return True

    def filter_queryset(self, request: Any, view: Any, queryset: Any) -> Any:
        """The objects this permission lets the request see (list, retrieve and every
        `get_object`); all of them by default."""
        return queryset

    def __and__(self, other: Any) -> Permission:
        return _And(self, _instance(other))

    def __or__(self, other: Any) -> Permission:
        return _Or(self, _instance(other))

    def __rand__(self, other: Any) -> Permission:
        return _And(_instance(other), self)

    def __ror__(self, other: Any) -> Permission:
        return _Or(_instance(other), self)

    def __invert__(self) -> Permission:
        return _Not(self)

    def __repr__(self) -> str:
        return type(self).__name__


def _instance(permission: Any) -> Permission:
    instance: Permission = permission() if isinstance(permission, type) else permission
    return instance


def checks_objects(permission: Permission) -> bool:
    """Whether `permission` can refuse an object once the request itself was allowed.

    False for a permission that keeps `Permission.has_object_permission` (and for `&` and `|`
    of such): a view may then answer without loading the object as a model instance.
    """
    # A tuple, not `_And | _Or`: `|` of permission classes composes them.
    if isinstance(permission, (_And, _Or)):  # noqa: UP038
        return checks_objects(permission.left) or checks_objects(permission.right)
    return type(permission).has_object_permission is not Permission.has_object_permission


def can_refuse(permission: Permission) -> bool:
    """Whether `permission` can ever refuse a request (documented as 401/403): all but
    AllowAny, and `|` with an AllowAny side, and `&` of two AllowAny."""
    if isinstance(permission, _Or):
        return can_refuse(permission.left) and can_refuse(permission.right)
    if isinstance(permission, _And):
        return can_refuse(permission.left) or can_refuse(permission.right)
    return type(permission) is not AllowAny


def resolve_permissions(permissions: Any) -> tuple[Permission, ...]:
    """Instances for a list of permission classes and/or instances."""
    return tuple(_instance(p) for p in permissions or ())


class _And(Permission):
    def __init__(self, left: Permission, right: Permission) -> None:
        self.left, self.right = left, right

    async def has_permission(self, request: Any, view: Any) -> bool:
        return await self.left.has_permission(request, view) and await self.right.has_permission(
            request, view
        )

    async def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        return await self.left.has_object_permission(request, view, obj) and (
            await self.right.has_object_permission(request, view, obj)
        )

    def filter_queryset(self, request: Any, view: Any, queryset: Any) -> Any:
        queryset = self.left.filter_queryset(request, view, queryset)
        return self.right.filter_queryset(request, view, queryset)

    def __repr__(self) -> str:
        return f"({self.left!r} & {self.right!r})"


class _Or(Permission):
    def __init__(self, left: Permission, right: Permission) -> None:
        self.left, self.right = left, right

    async def has_permission(self, request: Any, view: Any) -> bool:
        return await self.left.has_permission(request, view) or await self.right.has_permission(
            request, view
        )

    async def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        # As in DRF: a side only grants object access if it also granted the request.
        return (
            await self.left.has_permission(request, view)
            and await self.left.has_object_permission(request, view, obj)
        ) or (
            await self.right.has_permission(request, view)
            and await self.right.has_object_permission(request, view, obj)
        )

    def __repr__(self) -> str:
        return f"({self.left!r} | {self.right!r})"


class _Not(Permission):
    def __init__(self, inner: Permission) -> None:
        self.inner = inner

    async def has_permission(self, request: Any, view: Any) -> bool:
        return not await self.inner.has_permission(request, view)

    async def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        return not await self.inner.has_object_permission(request, view, obj)

    def __repr__(self) -> str:
        return f"~{self.inner!r}"


class AllowAny(Permission):
    """Anyone, authenticated or not."""


class IsAuthenticated(Permission):
    """An authenticated, active user."""

    message = "Authentication credentials were not provided or are invalid."

    async def has_permission(self, request: Any, view: Any) -> bool:
        return _is_authenticated(_user(request))


class IsAdmin(IsAuthenticated):
    """A user with `is_superuser=True`."""

    message = "Administrator access required."

    async def has_permission(self, request: Any, view: Any) -> bool:
        user = _user(request)
        return _is_authenticated(user) and bool(getattr(user, "is_superuser", False))


class IsStaff(IsAuthenticated):
    """A user with `is_staff=True` (superusers too)."""

    message = "Staff access required."

    async def has_permission(self, request: Any, view: Any) -> bool:
        user = _user(request)
        return _is_authenticated(user) and bool(
            getattr(user, "is_staff", False) or getattr(user, "is_superuser", False)
        )


class IsOwner(IsAuthenticated):
    """The object belongs to the user: its owner field equals `user.id`.

    The owner field is server-owned: a ViewSet's derived input schema leaves it out, and
    `create` sets it to the user's id, so nobody creates an object in someone else's name.

    Args:
        owner_field: the object's attribute holding the owner's id; by default the view's
            `owner_field`, else the first of `author_id`, `owner_id`, `user_id` the object has.
        scope: also limit what the request sees to the user's own objects (an owner filter
            on the queryset of list, retrieve and every `get_object`): others' objects are
            404 rather than 403, and a list shows only the user's.

    Example:
        >>> class NoteViewSet(ModelViewSet):  # doctest: +SKIP
        ...     model = Note
        ...     permission_classes = [IsOwner(scope=True)]
    """

    message = "You do not own this object."
    candidates: ClassVar[tuple[str, ...]] = ("author_id", "owner_id", "user_id")

    def __init__(self, owner_field: str | None = None, *, scope: bool = False) -> None:
        self.owner_field = owner_field
        self.scope = scope

    def field_for(self, view: Any, names: Any) -> str | None:
        """The owner field, among the attribute `names` of the view's objects."""
        field = self.owner_field or getattr(view, "owner_field", None)
        if field:
            return str(field)
        return next((n for n in self.candidates if n in names), None)

    async def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        user = _user(request)
        if not _is_authenticated(user):
            return False
        field = self.field_for(view, [n for n in self.candidates if hasattr(obj, n)])
        if field is None:
            return False
        owner = getattr(obj, field, None)
        return owner is not None and str(owner) == str(getattr(user, "id", None))

    def filter_queryset(self, request: Any, view: Any, queryset: Any) -> Any:
        user = _user(request)
        if not self.scope or not _is_authenticated(user):
            return queryset
        field = self.field_for(view, lookups.column_types(queryset.model))
        if field is None:
            return queryset
        return queryset.filter(**{field: getattr(user, "id", None)})

    def __repr__(self) -> str:
        arguments = [repr(self.owner_field)] if self.owner_field else []
        arguments += ["scope=True"] if self.scope else []
        return f"IsOwner({', '.join(arguments)})" if arguments else "IsOwner"


def owner_fields(permissions: Any, view: Any, names: Any) -> frozenset[str]:
    """The owner fields the `IsOwner` checks among `permissions` (composed ones included)
    look at, for a view whose objects have the attributes `names`."""
    found: set[str] = set()
    stack = list(resolve_permissions(permissions))
    while stack:
        permission = stack.pop()
        if isinstance(permission, (_And, _Or)):  # noqa: UP038
            stack += [permission.left, permission.right]
        elif isinstance(permission, _Not):
            stack.append(permission.inner)
        elif isinstance(permission, IsOwner):
            field = permission.field_for(view, names)
            if field is not None:
                found.add(field)
    return frozenset(found)


class HasPermission(IsAuthenticated):
    """The user holds a permission code such as `"posts.delete"` (superusers hold them all).

    Asks the user's `has_perm(code)` (sync or async) when it has one, else looks in its
    `permissions` (e.g. a token claim).
    """

    def __init__(self, *codes: str) -> None:
        if not codes:
            raise TypeError(
                "HasPermission needs at least one permission code, e.g. 'posts.delete'."
            )
        self.codes = codes
        self.message = f"Missing permission: {', '.join(codes)}."  # type: ignore[misc]

    async def has_permission(self, request: Any, view: Any) -> bool:
        user = _user(request)
        if not _is_authenticated(user):
            return False
        if getattr(user, "is_superuser", False):
            return True
        checker = getattr(user, "has_perm", None)
        if checker is not None:
            return all([await _maybe_await(checker(code)) for code in self.codes])
        held = set(getattr(user, "permissions", None) or ())
        return set(self.codes) <= held

    def __repr__(self) -> str:
        return f"HasPermission({', '.join(map(repr, self.codes))})"


class IsInGroup(IsAuthenticated):
    """The user belongs to one of the named groups.

    Asks the user's `in_group(name)` (sync or async) when it has one, else looks at its `groups`
    (names, or objects with a `name`).
    """

    def __init__(self, *names: str) -> None:
        if not names:
            raise TypeError("IsInGroup needs at least one group name.")
        self.names = names
        self.message = f"Requires membership of: {', '.join(names)}."  # type: ignore[misc]

    async def has_permission(self, request: Any, view: Any) -> bool:
        user = _user(request)
        if not _is_authenticated(user):
            return False
        checker = getattr(user, "in_group", None)
        if checker is not None:
            return any([await _maybe_await(checker(name)) for name in self.names])
        groups = {getattr(g, "name", g) for g in getattr(user, "groups", None) or ()}
        return bool(groups & set(self.names))

    def __repr__(self) -> str:
        return f"IsInGroup({', '.join(map(repr, self.names))})"
