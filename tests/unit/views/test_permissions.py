"""Permissions: 401 vs 403, precedence, composition, object checks."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from core.permissions import (
    AllowAny,
    HasPermission,
    IsAdmin,
    IsAuthenticated,
    IsInGroup,
    IsOwner,
    IsStaff,
    Permission,
)


def _request(user: Any) -> Any:
    return SimpleNamespace(state=SimpleNamespace(user=user))


async def test_anonymous_gets_401_with_www_authenticate(
    client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    response = await client.post(
        "/api/v1/articles/", json={"title": "x", "slug": "x", "author_id": 1}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_authenticated_but_refused_gets_403(
    client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    article = seeded["articles"]["draft"]  # Bob's
    response = await client.put(
        f"/api/v1/articles/{article.id}/",
        json={"title": "t", "slug": "draft", "author_id": 1},
        headers={"x-user": "ann"},
    )
    assert (
        response.status_code == 403 and response.json()["detail"] == "You do not own this object."
    )
    inactive = await client.post(
        f"/api/v1/articles/{article.id}/publish/", headers={"x-user": "inactive"}
    )
    assert inactive.status_code == 403


async def test_precedence_action_over_by_action_over_default(
    client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    # featured: @action(AllowAny) although the ViewSet requires authentication
    assert (await client.get("/api/v1/articles/featured/")).status_code == 200
    # list: permission_classes_by_action AllowAny
    assert (await client.get("/api/v1/articles/")).status_code == 200
    # raw: no action permissions and not in by_action -> the ViewSet's IsAuthenticated
    article = seeded["articles"]["hello"]
    assert (await client.get(f"/api/v1/articles/{article.id}/raw/")).status_code == 401


async def test_or_composition_and_has_permission(
    client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    article = seeded["articles"]["draft"]  # Bob's
    url = f"/api/v1/articles/{article.id}/"
    assert (
        await client.patch(url, json={"views": 1}, headers={"x-user": "ann"})
    ).status_code == 403
    assert (
        await client.patch(url, json={"views": 1}, headers={"x-user": "bob"})
    ).status_code == 200
    assert (
        await client.patch(url, json={"views": 2}, headers={"x-user": "mod"})
    ).status_code == 200
    assert (await client.delete(url, headers={"x-user": "bob"})).status_code == 403
    assert (await client.delete(url, headers={"x-user": "root"})).status_code == 204


async def test_in_group(client: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    assert (
        await client.post(
            "/api/v1/articles/bulk-hide/", json={"ids": []}, headers={"x-user": "ann"}
        )
    ).status_code == 403
    assert (
        await client.post(
            "/api/v1/articles/bulk-hide/", json={"ids": []}, headers={"x-user": "editor"}
        )
    ).status_code == 200


@pytest.mark.parametrize(
    ("permission", "user", "expected"),
    [
        (AllowAny, None, True),
        (IsAuthenticated, None, False),
        (IsAuthenticated, SimpleNamespace(id=1), True),
        (IsAdmin, SimpleNamespace(id=1, is_superuser=False), False),
        (IsAdmin, SimpleNamespace(id=1, is_superuser=True), True),
        (IsStaff, SimpleNamespace(id=1, is_staff=True), True),
        (IsStaff, SimpleNamespace(id=1), False),
        (IsAuthenticated & IsStaff, SimpleNamespace(id=1, is_staff=True), True),
        (IsAdmin | IsStaff, SimpleNamespace(id=1, is_staff=True), True),
        (~IsAuthenticated, None, True),
        (~IsAuthenticated, SimpleNamespace(id=1), False),
        (IsAuthenticated & ~IsStaff, SimpleNamespace(id=1, is_staff=True), False),
        (
            HasPermission("a.b") | IsInGroup("g"),
            SimpleNamespace(id=1, groups=[SimpleNamespace(name="g")]),
            True,
        ),
        (HasPermission("a.b", "a.c"), SimpleNamespace(id=1, permissions=["a.b"]), False),
        (HasPermission("a.b"), SimpleNamespace(id=1, has_perm=lambda code: code == "a.b"), True),
    ],
)
async def test_composition(permission: Any, user: Any, expected: bool) -> None:
    instance = permission() if isinstance(permission, type) else permission
    assert await instance.has_permission(_request(user), None) is expected


async def test_owner_field_and_custom_permission() -> None:
    user = SimpleNamespace(id=7)
    assert await IsOwner().has_object_permission(_request(user), None, SimpleNamespace(user_id=7))
    assert not await IsOwner("editor_id").has_object_permission(
        _request(user), None, SimpleNamespace(editor_id=8)
    )

    class IsVerified(Permission):
        async def has_permission(self, request: Any, view: Any) -> bool:
            user = getattr(request.state, "user", None)
            return bool(user and getattr(user, "is_verified", False))

        async def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
            return await self.has_permission(request, view)

    combined = IsVerified & IsOwner
    assert await combined.has_object_permission(
        _request(SimpleNamespace(id=7, is_verified=True)), None, SimpleNamespace(user_id=7)
    )
    assert not await combined.has_object_permission(
        _request(SimpleNamespace(id=7)), None, SimpleNamespace(user_id=7)
    )
