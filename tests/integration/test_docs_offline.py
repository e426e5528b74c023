"""/docs and /redoc render in a real browser with no internet: headless Chromium, whose resolver
answers only for the loopback address, opens the pages of a uvicorn server and must show the
app's operations. With DOCS_ASSETS=cdn the same browser shows none (FastAPI's CDN is out of
reach), which is what makes the first test mean something."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests import services

ROOT = Path(__file__).parents[2]
# Any host but the loopback address fails to resolve, as on a machine with no internet.
NO_INTERNET = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
# What each page renders for an operation: Swagger UI's block id `operations-<tag>-<id>`,
# ReDoc's section id `tag/<tag>/operation/<id>`.
RENDERED = {
    "/docs": 'id="operations-Articles-article_publish"',
    "/redoc": 'id="tag/Articles/operation/article_publish"',
}
PATH = "/api/v1/articles/{id}/publish/"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    services.unavailable("chromium", "no chromium on PATH (Debian: apt-get install chromium)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def chromium() -> str:
    return _chromium()


@pytest.fixture(scope="module")
def serve() -> Iterator[Callable[[str], str]]:
    """Start the test API under uvicorn with the given DOCS_ASSETS; returns its base URL."""
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}

    def start(assets: str) -> str:
        if assets in servers:
            return servers[assets][1]
        port = services.free_port()
        env = {
            **os.environ,
            "ENVIRONMENT": "test",
            "DATABASE_URL": "memory://",
            "DOCS_ASSETS": assets,
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]
            ),
        }
        command = [sys.executable, "-m", "uvicorn", "tests.integration.docs_app:app"]
        server = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env,
            cwd=ROOT,
        )
        base = f"http://127.0.0.1:{port}"
        servers[assets] = (server, base)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/health/live", timeout=1).raise_for_status()
                return base
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the test API did not start under uvicorn")
                time.sleep(0.2)

    yield start
    for server, _ in servers.values():
        server.terminate()
        server.wait(timeout=10)


def _render(chromium: str, url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran (up to 10 s of virtual time), loaded offline."""
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--host-resolver-rules={NO_INTERNET}",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _text(dom: str) -> str:
    # Swagger UI puts zero-width spaces before the slashes of a path, for line breaking.
    return re.sub(r"<[^>]+>", "", dom).replace("\u200b", "")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_page_lists_the_operations_with_no_internet(
    page: str, chromium: str, serve: Callable[[str], str], tmp_path: Path
) -> None:
    base = serve("local")

    dom = _render(chromium, f"{base}{page}", tmp_path / "profile")

    assert RENDERED[page] in dom, dom[:2000]
    assert PATH in _text(dom)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_with_docs_assets_cdn_the_page_needs_the_internet(
    page: str, chromium: str, serve: Callable[[str], str], tmp_path: Path
) -> None:
    base = serve("cdn")

    dom = _render(chromium, f"{base}{page}", tmp_path / "profile")

    assert "article_publish" not in dom
    assert re.search(r'<script src="https://', dom), dom[:2000]
