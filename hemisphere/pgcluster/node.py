"""A node of the cluster and the PostgreSQL tools that act on it.

A node is a data directory served on 127.0.0.1:port. The port is never written in the data
directory (it is given on the server's command line): a base backup or a rewind copies the
configuration of another node, and each node must keep its own port.

The binaries are those of the `pgserver` wheel. PostgreSQL refuses to run as root; as root,
every server-side tool runs as the unprivileged user `pgserver` (the one the wheel itself
creates), which owns the data directories.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import pwd
import re
import stat
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hemisphere.pgcluster.errors import PgClusterError, PgCommandError

SUPERUSER = "postgres"
OS_USER = "pgserver"
LOCALHOST = "127.0.0.1"
_NODE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,63}")


@dataclass(frozen=True, slots=True)
class PgNode:
    """One PostgreSQL server of the cluster: `name` (e.g. the region) is also the
    application_name it streams under, so the primary's pg_stat_replication names it."""

    name: str
    data_dir: Path
    port: int

    def __post_init__(self) -> None:
        # The name goes into conninfo strings as application_name: no spaces or quotes.
        if not _NODE_NAME.fullmatch(self.name):
            raise ValueError(f"node name {self.name!r}: letters, digits, '.', '_', '-' only")
        if not 0 < self.port < 65536:
            raise ValueError(f"node {self.name}: port {self.port} is not a TCP port")
        # Absolute: the tools run from "/", and a stale postmaster.pid is told apart by it.
        object.__setattr__(self, "data_dir", Path(self.data_dir).absolute())

    @property
    def log_path(self) -> Path:
        """The server's log, beside the data directory (inside, backups would copy it)."""
        return self.data_dir.with_name(f"{self.data_dir.name}.log")

    def url(self, database: str = "hemisphere") -> str:
        return f"postgresql://{SUPERUSER}@{LOCALHOST}:{self.port}/{database}"


def conninfo(host: str, port: int, *, application_name: str = "", database: str = "") -> str:
    """A libpq connection string (key=value form, as primary_conninfo takes)."""
    parts = [f"host={host}", f"port={port}", f"user={SUPERUSER}", "connect_timeout=5"]
    if application_name:
        parts.append(f"application_name={application_name}")
    if database:
        parts.append(f"dbname={database}")
    return " ".join(parts)


@cache
def bin_dir() -> Path:
    """pgserver's pginstall/bin (found without importing pgserver, which has side effects)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise PgClusterError("the pgserver wheel is not installed (pip install pgserver)")
    path = Path(spec.origin).parent / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise PgClusterError(f"no PostgreSQL binaries in {path}")
    if os.geteuid() == 0:
        _make_readable_by_all(path.parent)
    return path


def tool(name: str) -> str:
    return str(bin_dir() / name)


@cache
def server_user() -> pwd.struct_passwd | None:
    """The OS user the server-side tools run as: `pgserver` when we are root, else None (us)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", OS_USER], check=True, capture_output=True
        )
        return pwd.getpwnam(OS_USER)


def as_server_user(argv: list[str], *, die_with_parent: bool = False) -> list[str]:
    """`argv` run as the server's OS user (setpriv: no Python pre-exec hook, safe with
    threads). With `die_with_parent`, PR_SET_PDEATHSIG=SIGKILL is set in the same setpriv,
    after the user change (a change of uid clears it)."""
    options = ["--pdeathsig=KILL"] if die_with_parent else []
    user = server_user()
    if user is not None:
        options += [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups"]
    return ["setpriv", *options, "--", *argv] if options else argv


def prepare_dir(path: Path) -> None:
    """Create `path` (mode 0700, owned by the server user) with every ancestor traversable."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    user = server_user()
    if user is None:
        return
    os.chown(path, user.pw_uid, user.pw_gid)
    for ancestor in path.resolve().parents:
        mode = ancestor.stat().st_mode
        if mode & stat.S_IXOTH == 0:
            ancestor.chmod(mode | stat.S_IXOTH)


def run_tool(
    argv: list[str], *, as_server: bool = True, timeout: float = 120.0, with_stderr: bool = False
) -> str:
    """Run a PostgreSQL tool; its stdout (and stderr, where tools log), or PgCommandError."""
    full = as_server_user(argv) if as_server else argv
    try:
        done = subprocess.run(
            full,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            env={**os.environ, "PGCONNECT_TIMEOUT": "5", "LC_ALL": "C"},
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PgCommandError(argv, -1, f"timed out after {timeout}s") from exc
    if done.returncode != 0:
        raise PgCommandError(argv, done.returncode, done.stderr, done.stdout)
    return done.stdout + done.stderr if with_stderr else done.stdout


def query(
    port: int, sql: str, *, host: str = LOCALHOST, database: str = "postgres", timeout: float = 30
) -> list[list[str]]:
    """Rows of one SQL statement run with psql (NULL reads as ""). psql rather than a driver:
    callers are synchronous supervisors, and no event loop needs to exist."""
    out = run_tool(
        [
            tool("psql"),
            "-X",
            "--csv",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            conninfo(host, port, database=database),
            "-c",
            sql,
        ],
        as_server=False,
        timeout=timeout,
    )
    return [row for row in csv.reader(io.StringIO(out)) if row]


def query_value(port: int, sql: str, *, host: str = LOCALHOST, database: str = "postgres") -> str:
    rows = query(port, sql, host=host, database=database)
    if not rows:
        raise PgClusterError(f"no row from {sql!r}")
    return rows[0][0]


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def set_auto_conf(node: PgNode, settings: dict[str, str]) -> None:
    """Write `settings` into postgresql.auto.conf while the server is down (what ALTER SYSTEM
    does while it is up); other settings in the file are kept."""
    path = node.data_dir / "postgresql.auto.conf"
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in lines if line.split("=", 1)[0].strip() not in settings]
    kept += [f"{key} = {quote_literal(value)}" for key, value in settings.items()]
    path.write_text("\n".join(kept) + "\n")
    _chown_to_server(path)


def write_file(path: Path, text: str) -> None:
    path.write_text(text)
    _chown_to_server(path)


def _chown_to_server(path: Path) -> None:
    user = server_user()
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


def control_data(node: PgNode) -> dict[str, str]:
    """pg_controldata's fields (the state of a stopped node: timeline, last checkpoint)."""
    out = run_tool([tool("pg_controldata"), "-D", str(node.data_dir)])
    fields: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def has_data(node: PgNode) -> bool:
    return (node.data_dir / "PG_VERSION").exists()


def is_standby_on_disk(node: PgNode) -> bool:
    """Whether the data directory starts as a standby (standby.signal) or as a primary."""
    return (node.data_dir / "standby.signal").exists()


def _make_readable_by_all(path: Path) -> None:
    """The wheel's files as pip left them may be unreadable by the server user."""
    read = stat.S_IRGRP | stat.S_IROTH
    traverse = stat.S_IXGRP | stat.S_IXOTH
    for root, dirs, files in os.walk(path):
        for name in dirs:
            entry = Path(root, name)
            entry.chmod(entry.stat().st_mode | read | traverse)
        for name in files:
            entry = Path(root, name)
            mode = entry.stat().st_mode
            wanted = mode | read | (traverse if mode & stat.S_IXUSR else 0)
            if wanted != mode:
                entry.chmod(wanted)
    for ancestor in path.resolve().parents:
        mode = ancestor.stat().st_mode
        if mode & stat.S_IXOTH == 0:
            ancestor.chmod(mode | stat.S_IXOTH)
