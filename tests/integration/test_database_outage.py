"""A database outage under a running app: 503 in the error envelope with Retry-After, logged
once, and recovery without a restart when the database is back.

The app talks to PostgreSQL through a TCP proxy this test controls: stopping the proxy drops
every connection and refuses new ones, as a database host that goes away does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Mapped

from core import AutoRouter, CoreApp, Field, Model, ModelViewSet
from core.permissions import AllowAny
from core.settings import Settings
from tests import services

pytestmark = pytest.mark.postgres


class Memo(Model):
    __tablename__ = "outage_memos"

    id: Mapped[int] = Field.pk()
    text: Mapped[str] = Field.string(max_length=100)


class MemoInput(BaseModel):
    text: str


class MemoOutput(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    text: str


class MemoViewSet(ModelViewSet):
    model = Memo
    input_schema = MemoInput
    output_schema = MemoOutput
    permission_classes = [AllowAny]


class Proxy:
    """Forwards 127.0.0.1:<port> to the database; `stop()` drops every connection."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = services.free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._server = None

    async def _serve(self, client_reader: Any, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, server_writer}
        pipes = [
            asyncio.create_task(self._pipe(client_reader, server_writer)),
            asyncio.create_task(self._pipe(server_reader, client_writer)),
        ]
        self._tasks.update(pipes)
        try:
            await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self._tasks.difference_update(pipes)
            for writer in (client_writer, server_writer):
                self._writers.discard(writer)
                writer.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[str]:
    url = await services.create_database(postgres_url, "core_outage")
    try:
        yield url
    finally:
        await services.drop_database(postgres_url, url)


async def test_an_outage_answers_503_and_the_app_recovers_when_the_database_is_back(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    real = make_url(database)
    proxy = Proxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.start()
    through_proxy = real.set(host="127.0.0.1", port=proxy.port)
    router = AutoRouter(prefix="/api")
    router.register("/memos", MemoViewSet)
    app = CoreApp(
        settings=Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=through_proxy.render_as_string(hide_password=False),
            database_pool_timeout=5,
        ),
        routers=[router],
    )
    async with app.lifespan():
        await app.create_all(Memo.metadata)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.post("/api/memos/", json={"text": "before"})).status_code == 201
            assert (await http.get("/api/memos/")).status_code == 200

            await proxy.stop()
            with caplog.at_level(logging.WARNING):
                answers = [
                    await http.get("/api/memos/"),
                    await http.post("/api/memos/", json={"text": "during"}),
                    await http.get("/api/memos/1/"),
                ]
            for answer in answers:
                assert answer.status_code == 503, answer.text
                assert answer.headers["Retry-After"].isdigit()
                body = answer.json()
                assert body["code"] == "database_unavailable"
                # The envelope says nothing of hosts, ports or drivers.
                assert str(proxy.port) not in answer.text and "5432" not in answer.text
            outage_logs = [r for r in caplog.records if "is unavailable" in r.getMessage()]
            assert len(outage_logs) == 1 and str(proxy.port) in outage_logs[0].getMessage()

            await proxy.start()
            with caplog.at_level(logging.WARNING, logger="core.database"):
                listed = await http.get("/api/memos/")
                created = await http.post("/api/memos/", json={"text": "after"})
            assert listed.status_code == 200, listed.text
            assert created.status_code == 201, created.text
            assert [m["text"] for m in (await http.get("/api/memos/")).json()["results"]] == [
                "before",
                "after",
            ]
            assert any("available again" in r.getMessage() for r in caplog.records)
    await proxy.stop()
