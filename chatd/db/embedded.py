"""The embedded PostgreSQL: pgserver's binaries, run as a child process of chatd's Trio tree.

The state directory holds `pg/` (the cluster), `postgres.log` and `chatd.lock`. An exclusive
flock on the lock file makes a second chatd on the same directory fail at once. PostgreSQL refuses
to run as root, so as root the cluster belongs to a system user `chatd-pg`. This module has the
parts (create, start, wait, stop); embedded_supervisor.py keeps the server running.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import importlib.util
import os
import pwd
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import structlog
import trio

from chatd.db.bridge import TrioConnection
from chatd.errors import DatabaseUnavailable, EmbeddedPostgresError

log = structlog.get_logger(__name__)


def _pgserver_bin() -> Path:
    # Located, not imported: importing pgserver has side effects (runtime dirs, warnings).
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the pgserver package is missing; reinstall chatd")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


PG_BIN = _pgserver_bin()
ROOT_RUN_AS = "chatd-pg"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; leave room for ".s.PGSQL.5432"


def default_state_dir() -> Path:
    """$CHATD_STATE_DIR, systemd's $STATE_DIRECTORY, /var/lib/chatd as root, else XDG state."""
    configured = os.environ.get("CHATD_STATE_DIR") or os.environ.get("STATE_DIRECTORY")
    if configured:
        return Path(configured.split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/chatd")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "chatd"


@dataclass(frozen=True)
class Cluster:
    """Where an embedded cluster lives and how to start it."""

    state_dir: Path
    extra_settings: tuple[str, ...] = ()  # e.g. ("fsync=off",) for throwaway test clusters

    @property
    def pgdata(self) -> Path:
        return self.state_dir / "pg"

    @property
    def socket_dir(self) -> Path:
        preferred = self.state_dir / "run"
        if len(str(preferred)) + len("/.s.PGSQL.5432") <= _SOCKET_PATH_MAX:
            return preferred
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"chatd-{digest}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "postgres.log"

    @property
    def run_as(self) -> str | None:
        return ROOT_RUN_AS if os.geteuid() == 0 else None

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@/{dbname}?host={quote(str(self.socket_dir), safe='')}"

    def postgres_command(self) -> list[str]:
        settings = [
            "listen_addresses=",
            f"unix_socket_directories={self.socket_dir}",
            "unix_socket_permissions=0700",
            *self.extra_settings,
        ]
        command = [str(PG_BIN / "postgres"), "-D", str(self.pgdata)]
        for setting in settings:
            command += ["-c", setting]
        return command

    def process_options(self) -> dict[str, Any]:
        """subprocess options: drop to the cluster's user when running as root."""
        if self.run_as is None:
            return {}
        entry = pwd.getpwnam(self.run_as)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def lock_state_dir(state_dir: Path) -> IO[str]:
    """Take the state directory for this process; EmbeddedPostgresError if another has it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    handle = (state_dir / "chatd.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise EmbeddedPostgresError(
                f"state directory {state_dir} is in use by another chatd (pid {holder}); stop it,"
                " or give this one its own --state-dir"
            ) from None
        raise
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


async def prepare(cluster: Cluster) -> None:
    """Create the cluster (initdb) if it does not exist yet; stop a PostgreSQL orphaned by a crash."""
    for directory in (cluster.state_dir, cluster.socket_dir):
        directory.mkdir(parents=True, exist_ok=True)
    if cluster.run_as is not None:
        _ensure_system_user(cluster.run_as)
        _check_reachable(cluster.state_dir, cluster.run_as)
        entry = pwd.getpwnam(cluster.run_as)
        for path in (cluster.socket_dir, cluster.pgdata if cluster.pgdata.exists() else None):
            if path is not None:
                os.chown(path, entry.pw_uid, entry.pw_gid)
    if not (cluster.pgdata / "PG_VERSION").exists():
        log.info("embedded_postgres_initdb", pgdata=str(cluster.pgdata))
        cluster.pgdata.mkdir(mode=0o700, exist_ok=True)
        if cluster.run_as is not None:
            entry = pwd.getpwnam(cluster.run_as)
            os.chown(cluster.pgdata, entry.pw_uid, entry.pw_gid)
        result = await trio.run_process(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(cluster.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            **cluster.process_options(),
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed: {result.stderr.decode(errors='replace')}")
    await _stop_orphan(cluster)


async def _stop_orphan(cluster: Cluster) -> None:
    """A chatd killed with -9 leaves its PostgreSQL running; we hold the lock, so it is orphaned."""
    pid = running_postmaster(cluster)
    if pid is None:
        return  # none, or a stale pid file (reboot, container restart): PostgreSQL replaces it
    log.warning("embedded_postgres_orphan_stopping", pid=pid)
    await stop_postmaster(pid)


async def stop_postmaster(pid: int) -> None:
    """Stop a postmaster that is not our child (fast shutdown); returns once it has exited."""
    try:
        os.kill(pid, signal.SIGINT)  # fast shutdown: roll back open transactions, checkpoint, exit
    except ProcessLookupError:
        return
    with trio.move_on_after(STOP_TIMEOUT_SECONDS):
        await wait_exited(pid)
        return
    log.warning("embedded_postgres_stop_timeout", pid=pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGQUIT)  # immediate shutdown; crash recovery on next start


async def wait_exited(pid: int) -> None:
    """Until process `pid` (not necessarily our child) has exited."""
    try:
        fd = os.pidfd_open(pid)  # readable once the process exits: no polling (Linux >= 5.3)
    except ProcessLookupError:
        return
    except OSError:  # no pidfd (older kernel, seccomp): ask every so often
        while _alive(pid):  # noqa: ASYNC110 — another process; no event to await
            await trio.sleep(0.1)
        return
    try:
        await trio.lowlevel.wait_readable(fd)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, and another user's
    return True


def _serves(pid: int, pgdata: Path) -> bool:
    """Is `pid` a PostgreSQL serving `pgdata`? A postmaster runs in its data directory."""
    if not Path("/proc/self/cwd").exists():
        return True  # no procfs to ask: trust the pid file
    try:
        return os.path.samefile(f"/proc/{pid}/cwd", pgdata)
    except OSError:  # gone meanwhile, or another user's process: not our PostgreSQL
        return False


def running_postmaster(cluster: Cluster) -> int | None:
    """The pid of a PostgreSQL serving this cluster now, per its pid file (checked: pids recycle)."""
    try:
        pid = int((cluster.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    return pid if _serves(pid, cluster.pgdata) else None


def running_url(cluster: Cluster) -> str | None:
    """The URL of this cluster if a PostgreSQL (e.g. a serving chatd's) is running on it now."""
    return cluster.url() if running_postmaster(cluster) is not None else None


async def run_postgres(
    cluster: Cluster, log_file: IO[bytes], *, task_status: trio.TaskStatus[trio.Process]
) -> None:
    """PostgreSQL as our child until it exits; cancelled, it gets a fast shutdown first."""
    await trio.run_process(
        cluster.postgres_command(),
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=log_file,
        check=False,
        deliver_cancel=_fast_shutdown,
        task_status=task_status,
        # Its own session: Ctrl-C in a terminal reaches chatd alone, which stops PostgreSQL
        # last, after the pool (else it shuts down under chatd's feet, mid-drain).
        start_new_session=True,
        **cluster.process_options(),
    )


async def _fast_shutdown(process: trio.Process) -> None:
    process.send_signal(signal.SIGINT)
    with trio.move_on_after(STOP_TIMEOUT_SECONDS):
        await process.wait()
        return
    log.warning("embedded_postgres_stop_timeout", pid=process.pid)
    process.send_signal(signal.SIGQUIT)  # immediate shutdown; crash recovery on next start


async def wait_ready(cluster: Cluster, process: trio.Process) -> bool:
    """Until PostgreSQL accepts connections (True), or it exits or the start times out (False)."""
    with trio.move_on_after(START_TIMEOUT_SECONDS):
        while process.poll() is None:
            try:
                conn: TrioConnection[Any] = await TrioConnection.connect_trio(
                    cluster.url(), connect_timeout=2
                )
            except DatabaseUnavailable:
                await trio.sleep(0.05)
                continue
            await conn.close()
            return True
    return False


def log_tail(cluster: Cluster, lines: int = 10) -> str:
    """The last lines of postgres.log (what PostgreSQL said before it stopped or failed)."""
    try:
        with cluster.log_path.open("rb") as log_file:
            log_file.seek(max(0, log_file.seek(0, os.SEEK_END) - 8192))
            text = log_file.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.rstrip("\n").split("\n")[-lines:])


def _ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )


def _check_reachable(path: Path, user: str) -> None:
    """As root, the cluster's user must be able to walk down to the state directory."""
    for parent in [*reversed(path.parents), path]:
        if not parent.stat().st_mode & 0o001:
            raise EmbeddedPostgresError(
                f"{parent} is not searchable by user {user}, which runs the embedded PostgreSQL"
                f" (PostgreSQL refuses root): use a --state-dir under /var/lib, or chmod o+x {parent}"
            )
