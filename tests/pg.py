"""Test PostgreSQL: the same embedded mechanism as `chatd serve`, run by the test process.

Set CHATD_TEST_DATABASE_URL to use an existing server instead (its user must be able to CREATE
DATABASE). Each test gets a fresh database cloned from a template migrated once per run.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import trio
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from chatd.db.embedded import Cluster, prepare

# Throwaway clusters trade durability for speed.
FAST = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=300")


def with_dbname(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo("", **params)


@contextmanager
def searchable_tempdir(prefix: str) -> Iterator[Path]:
    """A fresh temp dir others can enter: as root, the embedded PostgreSQL runs as chatd-pg
    (pytest's own temp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def running_cluster(extra: tuple[str, ...] = FAST) -> Iterator[EmbeddedServer]:
    """A throwaway cluster in its own temp dir (searchable, since as root it runs as chatd-pg)."""
    with searchable_tempdir("chatd-test-pg-") as state_dir:
        server = EmbeddedServer(Cluster(state_dir, extra_settings=extra))
        server.start()
        try:
            yield server
        finally:
            server.stop()


class EmbeddedServer:
    """An embedded cluster the test can stop and restart (fast or immediate) at will."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.cluster.url()

    def start(self) -> None:
        trio.run(prepare, self.cluster)
        with self.cluster.log_path.open("ab") as log:  # the child keeps its own copy of the fd
            self.process = subprocess.Popen(
                self.cluster.postgres_command(),
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                **self.cluster.process_options(),
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(self.cluster.log_path.read_text()[-2000:]) from None
                time.sleep(0.05)

    def stop(self, mode: signal.Signals = signal.SIGINT) -> None:
        """SIGINT: fast shutdown; SIGQUIT: immediate (crash-like) shutdown."""
        if self.process is None:
            return
        self.process.send_signal(mode)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


class DatabaseFactory:
    """Clones the migrated template into a fresh database per test."""

    _counter = itertools.count()

    def __init__(self, admin_url: str, template: str) -> None:
        self.admin_url = admin_url
        self.template = template

    def create(self, *, from_template: bool = True) -> str:
        name = f"t_{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            if from_template:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(self.template)
                    )
                )
            else:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def url(self, name: str) -> str:
        return with_dbname(self.admin_url, name)
