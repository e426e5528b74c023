"""Groups and permissions stored in the database: the user API, the grant helpers, and
HasPermission / IsInGroup deciding real HTTP requests from those rows."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from core import CoreApp
from core.auth import (
    Group,
    Permission,
    add_to_group,
    grant_permission,
    remove_from_group,
    revoke_permission,
)
from core.errors import ValidationFailedError
from tests.unit.auth.models import Post, User
from tests.unit.auth.support import PASSWORD, bearer, login


async def _user(app: CoreApp, email: str, **extra: Any) -> User:
    async with app.session() as db:
        return await User.create_user(email=email, password=PASSWORD, db=db, **extra)


async def test_has_perm_directly_through_a_group_and_as_superuser(auth_app: CoreApp) -> None:
    ann = await _user(auth_app, "ann@example.com")
    bob = await _user(auth_app, "bob@example.com")
    root = await _user(auth_app, "root@example.com", is_superuser=True)
    async with auth_app.session() as db:
        await grant_permission(ann, "posts.delete", db)
        editors = await add_to_group(bob, "editors", db)
        await grant_permission(editors, "posts.publish", db, name="Can publish posts")

    async with auth_app.session() as db:
        ann, bob, root = [await User.objects.using(db).get(id=u.id) for u in (ann, bob, root)]
        assert await ann.has_perm("posts.delete", db)
        assert not await ann.has_perm("posts.publish", db)
        assert await bob.has_perm("posts.publish", db)
        assert not await bob.has_perm("posts.delete", db)
        assert await root.has_perm("anything.at_all", db)
        assert await bob.has_perms(["posts.publish"], db)
        assert not await bob.has_perms(["posts.publish", "posts.delete"], db)
        assert await ann.get_all_permissions(db) == {"posts.delete"}
        assert await bob.in_group("editors", db)
        assert not await ann.in_group("editors", db)
        assert await bob.get_group_names(db) == {"editors"}
        publish = await Permission.objects.using(db).get(code="posts.publish")
        assert publish.name == "Can publish posts"


async def test_inactive_users_hold_no_permission_and_no_group(auth_app: CoreApp) -> None:
    off = await _user(auth_app, "off@example.com", is_superuser=True)
    async with auth_app.session() as db:
        await add_to_group(off, "editors", db)
        off.is_active = False
        await off.save(db)
        assert not await off.has_perm("posts.delete", db)
        assert not await off.in_group("editors", db)


async def test_granting_twice_is_harmless_and_revoking_takes_it_back(auth_app: CoreApp) -> None:
    ann = await _user(auth_app, "ann@example.com")
    async with auth_app.session() as db:
        await grant_permission(ann, "posts.delete", db)
        await grant_permission(ann, "posts.delete", db)
        assert await ann.has_perm("posts.delete", db)
        assert await Permission.objects.using(db).count() == 1
        assert await User.PermissionLink.objects.using(db).count() == 1

        assert await revoke_permission(ann, "posts.delete", db)
        # The cached permissions were dropped by the helper.
        assert not await ann.has_perm("posts.delete", db)
        assert not await revoke_permission(ann, "posts.delete", db)
        assert not await revoke_permission(ann, "never.granted", db)

        group = await add_to_group(ann, "editors", db)
        await add_to_group(ann, group, db)
        await grant_permission(group, "posts.publish", db)
        assert await ann.has_perm("posts.publish", db)
        assert await remove_from_group(ann, "editors", db)
        assert not await ann.has_perm("posts.publish", db)
        assert not await ann.in_group("editors", db)
        assert not await remove_from_group(ann, "no-such-group", db)
        assert await Group.objects.using(db).count() == 1


async def test_deleting_a_user_or_group_deletes_its_links(auth_app: CoreApp) -> None:
    ann = await _user(auth_app, "ann@example.com")
    async with auth_app.session() as db:
        group = await add_to_group(ann, "editors", db)
        await grant_permission(ann, "posts.delete", db)
        await grant_permission(group, "posts.publish", db)
        await group.delete(db)
        assert await User.GroupLink.objects.using(db).count() == 0
        await ann.delete(db)
        assert await User.PermissionLink.objects.using(db).count() == 0
        assert await Permission.objects.using(db).count() == 2


@pytest.mark.parametrize("code", ["delete", "posts.", ".delete", "posts delete", "", 42])
async def test_permission_codes_must_be_app_label_dot_codename(
    auth_app: CoreApp, code: Any
) -> None:
    ann = await _user(auth_app, "ann@example.com")
    async with auth_app.session() as db:
        with pytest.raises(ValidationFailedError, match="app_label.codename"):
            await grant_permission(ann, code, db)


async def test_grant_needs_a_user_or_a_group(auth_app: CoreApp) -> None:
    async with auth_app.session() as db:
        with pytest.raises(TypeError):
            await grant_permission(object(), "posts.delete", db)  # type: ignore[arg-type]


async def test_has_perm_queries_once_per_user_object(auth_app: CoreApp) -> None:
    ann = await _user(auth_app, "ann@example.com")
    async with auth_app.session() as db:
        await grant_permission(ann, "posts.delete", db)
    async with auth_app.session() as db:
        user = await User.objects.using(db).get(id=ann.id)
        assert await user.has_perm("posts.delete", db)
        # Change the rows behind its back: the object keeps what it loaded (one load per
        # request), while a fresh object sees the change.
        await User.PermissionLink.objects.using(db).delete()
        assert await user.has_perm("posts.delete", db)
    async with auth_app.session() as db:
        fresh = await User.objects.using(db).get(id=ann.id)
        assert not await fresh.has_perm("posts.delete", db)


# -- through HTTP ---------------------------------------------------------------------------------
async def test_has_permission_decides_from_database_rows(
    http: httpx.AsyncClient, auth_app: CoreApp
) -> None:
    ann = await _user(auth_app, "ann@example.com")
    mod = await _user(auth_app, "mod@example.com")
    async with auth_app.session() as db:
        posts = [
            await Post.objects.using(db).create(title=t, author_id=ann.id, db=db)
            for t in ("one", "two")
        ]
        await grant_permission(mod, "posts.delete", db)
    ann_token = (await login(http, ann.email))["access_token"]
    mod_token = (await login(http, mod.email))["access_token"]

    refused = await http.delete(f"/api/v1/posts/{posts[0].id}/", headers=bearer(ann_token))
    anonymous = await http.delete(f"/api/v1/posts/{posts[0].id}/")
    allowed = await http.delete(f"/api/v1/posts/{posts[0].id}/", headers=bearer(mod_token))

    assert refused.status_code == 403
    assert refused.json()["detail"] == "Missing permission: posts.delete."
    assert anonymous.status_code == 401
    assert allowed.status_code == 204

    # Through a group, granted after the token was issued: rows are read per request.
    async with auth_app.session() as db:
        moderators = await add_to_group(ann, "moderators", db)
        await grant_permission(moderators, "posts.delete", db)
    again = await http.delete(f"/api/v1/posts/{posts[1].id}/", headers=bearer(ann_token))
    assert again.status_code == 204


async def test_is_in_group_decides_from_database_rows(
    http: httpx.AsyncClient, auth_app: CoreApp
) -> None:
    ann = await _user(auth_app, "ann@example.com")
    async with auth_app.session() as db:
        post = await Post.objects.using(db).create(title="one", author_id=ann.id, db=db)
    token = (await login(http, ann.email))["access_token"]
    path = f"/api/v1/posts/{post.id}/feature/"

    assert (await http.post(path, headers=bearer(token))).status_code == 403
    async with auth_app.session() as db:
        await add_to_group(ann, "editors", db)
    featured = await http.post(path, headers=bearer(token))
    assert featured.status_code == 200 and featured.json() == {"featured": post.id}

    async with auth_app.session() as db:
        await remove_from_group(ann, "editors", db)
    assert (await http.post(path, headers=bearer(token))).status_code == 403


async def test_superusers_pass_has_permission_without_rows(
    http: httpx.AsyncClient, auth_app: CoreApp
) -> None:
    root = await _user(auth_app, "root@example.com", is_superuser=True, is_staff=True)
    async with auth_app.session() as db:
        post = await Post.objects.using(db).create(title="one", author_id=root.id, db=db)
    token = (await login(http, root.email))["access_token"]

    response = await http.delete(f"/api/v1/posts/{post.id}/", headers=bearer(token))

    assert response.status_code == 204
