"""Shared fixtures: real PostgreSQL (one cluster per run, a fresh database per test), real chatd."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import nullcontext
from pathlib import Path

import httpx
import psycopg
import pytest
import trio
from psycopg import sql

from chatd.db.migrate import migrate
from chatd.db.pool import Pool, PoolConfig, open_pool
from chatd.http.services import Services
from chatd.logs import configure_logging
from chatd.process import run_services
from chatd.settings import Settings, load_settings
from chatd.wiring import build_services
from tests import n8n
from tests.pg import DatabaseFactory, running_cluster, searchable_tempdir

configure_logging("warning", "console")


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    external = os.environ.get("CHATD_TEST_DATABASE_URL")
    if external:
        yield external
        return
    with running_cluster() as server:
        yield server.url


@pytest.fixture(scope="session")
def databases(admin_url: str) -> Iterator[DatabaseFactory]:
    template = f"chatd_template_{os.getpid()}"
    factory = DatabaseFactory(admin_url, template)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(template)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))

    async def migrate_template() -> None:
        async with (
            open_pool(PoolConfig(factory.url(template), min_size=1)) as pool,
            pool.connection() as conn,
        ):
            await migrate(conn)

    trio.run(migrate_template)
    yield factory
    factory.drop(template)


@pytest.fixture
def database_url(databases: DatabaseFactory) -> Iterator[str]:
    name = databases.create()
    yield databases.url(name)
    databases.drop(name)


def make_settings(database_url: str, **sections: dict[str, object]) -> Settings:
    """Settings for a test: port 0, the test database, plus per-section overrides."""
    # Delivery is off unless a test turns it on (queue={"dispatch": True}) and names its sink.
    env = {
        "CHATD_SERVER__PORT": "0",
        "CHATD_DATABASE__URL": database_url,
        "CHATD_QUEUE__DISPATCH": "false",
    }
    for section, keys in sections.items():
        for key, value in keys.items():
            env[f"CHATD_{section.upper()}__{key.upper()}"] = str(value)
    return load_settings(None, env)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[Pool]:
    async with open_pool(PoolConfig(settings.database.url)) as pool:
        yield pool


class RunningChatd:
    def __init__(self, url: str, services: Services, stop: trio.Event) -> None:
        self.url = url
        self.services = services
        self.stop = stop

    def client(self, **kwargs: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, **kwargs)  # type: ignore[arg-type]


async def start_chatd(nursery: trio.Nursery, settings: Settings, pool: Pool) -> RunningChatd:
    """chatd's services and HTTP server in this test's nursery, on a free port."""
    services = build_services(settings, pool)
    stop = trio.Event()

    async def run(*, task_status: trio.TaskStatus[list[str]]) -> None:
        await run_services(services, stop, task_status.started)

    urls = await nursery.start(run)
    return RunningChatd(urls[0], services, stop)


@pytest.fixture
async def chatd(
    nursery: trio.Nursery, settings: Settings, pool: Pool
) -> AsyncIterator[RunningChatd]:
    running = await start_chatd(nursery, settings, pool)
    yield running
    running.stop.set()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A state directory for an embedded PostgreSQL of the test's own."""
    with searchable_tempdir("chatd-test-state-") as path:
        yield path


# --- a real n8n (marker n8n) ----------------------------------------------------------------------


def pytest_collection_finish(session: pytest.Session) -> None:
    """Install n8n before the first test when an n8n test will run and it is not installed yet
    (minutes, once per machine): outside every test's timeout."""
    wanted = any(item.get_closest_marker("n8n") for item in session.items)
    if wanted and n8n.installed() is None and not session.config.option.collectonly:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        say = reporter.write_line if reporter is not None else print
        say(f"installing n8n {n8n.N8N_VERSION} into {n8n.installation_dir()} (once; minutes)")
        capture = session.config.pluginmanager.get_plugin("capturemanager")
        try:
            with capture.global_and_fixture_disabled() if capture else nullcontext():
                n8n.install(log=say)
        except (OSError, subprocess.SubprocessError) as exc:  # the n8n tests will say it again
            say(f"installing n8n failed: {exc!r}")


@pytest.fixture(scope="session")
def llm_socket() -> Iterator[socket.socket]:
    """The stand-in model's listening socket for the whole run: n8n's OpenAI credential names
    its port, and each test serves it with its own LlmStandin (tests/llm_standin.py)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock


@pytest.fixture(scope="session")
def real_n8n(llm_socket: socket.socket) -> Iterator[n8n.ChatdN8n]:
    """One n8n per run serving chatd's workflows (tests/n8n.py); stopped at the end."""
    with n8n.running_chatd_n8n(llm_socket.getsockname()[1]) as running:
        yield running
