"""The embedded PostgreSQL of `hemisphere serve`: the `pgserver` wheel's binaries, run as a
child of this process.

pgserver itself starts the server through `pg_ctl`, which daemonizes it: the postmaster is
nobody's child, outlives a killed parent, and a second process on the same data directory
silently joins it. Here the postmaster is our own child instead, with a parent-death signal
of SIGINT (PostgreSQL's *fast* shutdown: clean, no crash recovery at the next start), so a
SIGKILL of the parent still stops it cleanly; and a stop sends the same SIGINT and waits.
Only the socket listens (no TCP port to collide with).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hemisphere.localstack import spawn, stop_process

log = logging.getLogger(__name__)

# A Unix socket path longer than this does not fit in sockaddr_un (108 bytes with the NUL).
_MAX_SOCKET_PATH = 100
# As root, PostgreSQL refuses to run: pgserver's convention is a system user of this name.
_SYSTEM_USER = "pgserver"


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not start; the message says why in one line."""


def _bin(name: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH  # only the embedded stack needs them

    return str(POSTGRES_BIN_PATH / name)


class EmbeddedPostgres:
    """One PostgreSQL server on `data_dir`, a child of this process while it runs."""

    name = "embedded PostgreSQL"

    def __init__(self, data_dir: Path, database: str = "hemisphere") -> None:
        self.data_dir = data_dir.resolve()
        self.database = database
        self._process: subprocess.Popen[bytes] | None = None
        self._user = _SYSTEM_USER if os.geteuid() == 0 else None
        self.socket_dir = self._socket_dir()

    @property
    def where(self) -> str:
        return f"data directory {self.data_dir}"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/{self.database}?host={self.socket_dir}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def start(self, timeout: float = 60.0) -> str:
        self._prepare()
        self.spawn()
        self.wait_until_up(timeout)
        return self.url

    def spawn(self) -> None:
        """Start the postmaster (from the main thread: see localstack.die_with_parent)."""
        log_file = open(self.data_dir / "log", "ab")  # noqa: SIM115 - the child writes it
        with log_file:
            self._process = spawn(
                [
                    _bin("postgres"),
                    "-D",
                    str(self.data_dir),
                    "-k",
                    str(self.socket_dir),
                    "-c",
                    "listen_addresses=",
                ],
                death_signal=signal.SIGINT,
                user=self._user,
                stdout=log_file,
                stderr=log_file,
                stdin=subprocess.DEVNULL,
            )

    def wait_until_up(self, timeout: float = 60.0) -> None:
        """Return once it accepts connections and the database exists (after a crash, once
        it has replayed its WAL). Safe to run in a worker thread."""
        self._wait_accepting(timeout)
        self._ensure_database()

    def stop(self, timeout: float = 5.0) -> None:
        """Fast shutdown (SIGINT): sessions end, a checkpoint is written, the next start
        finds a cleanly shut down cluster."""
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, timeout, stop_signal=signal.SIGINT)

    def _socket_dir(self) -> Path:
        if len(str(self.data_dir / ".s.PGSQL.5432")) <= _MAX_SOCKET_PATH:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"hemisphere-pg-{digest}"

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            self._grant_system_user()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                [
                    _bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "--auth-local=trust",
                    "--encoding=utf8",
                    "-U",
                    "postgres",
                ]
            )

    def _grant_system_user(self) -> None:
        import pwd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns without XDG_RUNTIME_DIR
            from pgserver._commands import POSTGRES_BIN_PATH
            from pgserver.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

        assert self._user is not None
        ensure_user_exists(self._user)
        ensure_prefix_permissions(self.data_dir)
        # As pgserver does: the binaries and libraries readable and runnable by that user.
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
        entry = pwd.getpwnam(self._user)
        for path in (self.data_dir, self.socket_dir):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if (self.data_dir / "log").exists():
            os.chown(self.data_dir / "log", entry.pw_uid, entry.pw_gid)

    def _run(self, command: list[str], timeout: float = 120.0) -> str:
        result = subprocess.run(
            command, user=self._user, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
            # The first error says why; what follows is the clean-up after it.
            reason = next((line for line in lines if "error" in line.lower()), lines[-1])
            raise EmbeddedPostgresError(f"{Path(command[0]).name} failed: {reason}")
        return result.stdout

    def _wait_accepting(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                self._process = None
                raise EmbeddedPostgresError(
                    f"the embedded PostgreSQL on {self.data_dir} exited at start: "
                    f"{self._last_log_line()}"
                )
            ready = subprocess.run(
                [_bin("pg_isready"), "-q", "-h", str(self.socket_dir), "-U", "postgres"],
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise EmbeddedPostgresError(f"the embedded PostgreSQL did not start in {timeout:g}s")

    def _ensure_database(self) -> None:
        psql = [_bin("psql"), "-h", str(self.socket_dir), "-U", "postgres", "-d", "postgres"]
        exists = self._run(
            [*psql, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"]
        )
        if exists.strip() != "1":
            self._run([*psql, "-c", f'CREATE DATABASE "{self.database}"'])

    def _last_log_line(self) -> str:
        """The reason it stopped: the last FATAL or PANIC line of its log, else the last."""
        with contextlib.suppress(OSError):
            lines = (self.data_dir / "log").read_text(errors="replace").strip().splitlines()
            fatal = [line for line in lines if "FATAL:" in line or "PANIC:" in line]
            if fatal or lines:
                return (fatal or lines)[-1]
        return "no log"


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, database: str = "hemisphere", **kwargs: Any) -> Iterator[str]:
    """Start a PostgreSQL server whose data lives in `data_dir`; yields its URL, stops it
    cleanly on the way out. The data outlives the server: the next start finds it again."""
    server = EmbeddedPostgres(data_dir, database)
    server.start(**kwargs)
    try:
        yield server.url
    finally:
        server.stop()
