"""/docs and /redoc load their scripts and styles from the app itself (DOCS_ASSETS=local), so they
work with no internet; DOCS_ASSETS=cdn keeps FastAPI's CDN. The browser test that renders them is
tests/integration/test_docs_offline.py."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from core import CoreApp
from core.errors import ConfigurationError
from core.testing import test_settings


async def _get(app: object, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path)


def _urls(html: str) -> list[str]:
    """Every script, stylesheet and icon address a page loads."""
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_pages_load_nothing_from_outside_the_app(page: str) -> None:
    app = CoreApp(settings=test_settings())

    response = await _get(app, page)

    assert response.status_code == 200
    urls = _urls(response.text)
    assert urls and all(url.startswith("/docs-assets/") for url in urls), urls
    for url in urls:
        asset = await _get(app, url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000


async def test_swagger_ui_reads_the_apps_openapi_and_keeps_the_oauth2_redirect() -> None:
    app = CoreApp(settings=test_settings())

    page = (await _get(app, "/docs")).text
    redirect = await _get(app, "/docs/oauth2-redirect")

    assert "url: '/openapi.json'" in page
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in page
    assert redirect.status_code == 200
    assert "oauth2" in redirect.text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_assets_cdn_loads_them_from_the_public_cdn(page: str) -> None:
    app = CoreApp(settings=test_settings(docs_assets="cdn"))

    response = await _get(app, page)

    assert response.status_code == 200
    scripts = re.findall(r'<script src="([^"]+)"', response.text)
    assert scripts and all(url.startswith("https://cdn.jsdelivr.net/") for url in scripts)
    assert (await _get(app, "/docs-assets/swagger-ui.css")).status_code == 404


async def test_a_page_turned_off_is_not_served() -> None:
    app = CoreApp(settings=test_settings(), docs_url=None, redoc_url="/reference")

    assert (await _get(app, "/docs")).status_code == 404
    assert (await _get(app, "/docs/oauth2-redirect")).status_code == 404
    assert (await _get(app, "/redoc")).status_code == 404
    assert (await _get(app, "/reference")).status_code == 200


async def test_no_openapi_no_pages() -> None:
    app = CoreApp(settings=test_settings(), openapi_url=None)

    assert (await _get(app, "/docs")).status_code == 404
    assert (await _get(app, "/redoc")).status_code == 404
    assert (await _get(app, "/docs-assets/swagger-ui-bundle.js")).status_code == 404


async def test_a_mounted_app_points_its_pages_under_the_mount() -> None:
    core_app = CoreApp(settings=test_settings())
    host = FastAPI()
    host.mount("/core", core_app)
    core_app.attach(host)

    async with host.router.lifespan_context(host):
        page = (await _get(host, "/core/docs")).text
        urls = _urls(page)
        asset = await _get(host, urls[0])

    assert "url: '/core/openapi.json'" in page
    assert urls and all(url.startswith("/core/docs-assets/") for url in urls), urls
    assert asset.status_code == 200


# -- DOCS_PERMISSION ---------------------------------------------------------------------------
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/asyncapi.json")
SECRET = "docs-permission-secret-key-of-a-decent-length"


def _token(app: CoreApp, **claims: Any) -> dict[str, str]:
    token = app.container.auth.token_backend().create_token(
        {"sub": "7", **claims}, token_type="access"
    )
    return {"Authorization": f"Bearer {token}"}


async def test_docs_permission_serves_the_docs_to_allowed_callers_only() -> None:
    app = CoreApp(
        settings=test_settings(secret_key=SECRET, docs_permission="core.permissions.IsAdmin")
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        admin, user = _token(app, is_superuser=True), _token(app)
        for path in DOCS_PATHS:
            anonymous = await client.get(path)
            assert anonymous.status_code == 401, path
            assert anonymous.json()["code"] == "not_authenticated"
            assert anonymous.headers["www-authenticate"] == "Bearer"
            refused = await client.get(path, headers=user)
            assert refused.status_code == 403, path
            assert refused.json() == {
                "detail": "Administrator access required.",
                "code": "permission_denied",
            }
            assert (await client.get(path, headers=admin)).status_code == 200, path
        document = (await client.get("/openapi.json", headers=admin)).json()
        assert document["info"]["title"]
        # The rest of the app is not behind it: liveness and the pages' static files.
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/docs-assets/swagger-ui.css")).status_code == 200


async def test_docs_permission_takes_any_permission_by_its_dotted_path() -> None:
    app = CoreApp(
        settings=test_settings(
            secret_key=SECRET, docs_permission="core.permissions.IsAuthenticated"
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        assert (await client.get("/openapi.json")).status_code == 401
        assert (await client.get("/openapi.json", headers=_token(app))).status_code == 200


@pytest.mark.parametrize("path", ["core.permissions.NoSuchThing", "no.such.module.X", "core.app"])
def test_a_docs_permission_that_names_no_permission_fails_at_start(path: str) -> None:
    with pytest.raises(ConfigurationError, match="DOCS_PERMISSION"):
        CoreApp(settings=test_settings(docs_permission=path))
