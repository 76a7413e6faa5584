"""Running a node's server: start, stop (smart/fast/immediate), kill (a hard outage).

The postmaster is our direct child (`postgres`, not `pg_ctl start`, which would daemonize it)
and carries PR_SET_PDEATHSIG=SIGKILL set by setpriv after it drops root, so it cannot outlive
us; its own children notice its death (PostgreSQL's children watch the postmaster). The death
signal follows the *thread* that started it: start nodes from a thread that lives as long as
the cluster (the main thread, as hemisphere/up/supervisor.py does).
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from hemisphere.pgcluster.errors import PgClusterError, PgStartError, PgTimeoutError
from hemisphere.pgcluster.node import LOCALHOST, PgNode, as_server_user, tool


class StopMode(enum.StrEnum):
    """PostgreSQL's shutdown modes, by the signal the postmaster takes for each."""

    SMART = "smart"  # SIGTERM: waits for clients to leave
    FAST = "fast"  # SIGINT: disconnects clients, clean shutdown checkpoint
    IMMEDIATE = "immediate"  # SIGQUIT: no checkpoint, crash recovery at next start


_SIGNALS = {
    StopMode.SMART: signal.SIGTERM,
    StopMode.FAST: signal.SIGINT,
    StopMode.IMMEDIATE: signal.SIGQUIT,
}

# Postmasters we started, by data directory, so that we can wait for (reap) them.
_running: dict[Path, subprocess.Popen[bytes]] = {}
_lock = threading.Lock()


def postgres_argv(
    node: PgNode, *, port: int | None = None, extra: dict[str, str] | None = None
) -> list[str]:
    """The command line of the node's postmaster, for a supervisor that runs it itself.
    It listens on 127.0.0.1 only and has no Unix socket (paths under data dirs can be too
    long for one, and every client here uses TCP)."""
    settings = {"listen_addresses": LOCALHOST, "unix_socket_directories": ""}
    settings.update(extra or {})
    argv = [tool("postgres"), "-D", str(node.data_dir), "-p", str(port or node.port)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    return as_server_user(argv, die_with_parent=True)


def pid_of(node: PgNode) -> int | None:
    """The postmaster's pid if a server runs on this data directory."""
    with _lock:
        process = _running.get(_key(node))
        if process is not None:
            if process.poll() is None:
                return process.pid
            del _running[_key(node)]
    pid = _pid_file_pid(node.data_dir)
    return pid if pid is not None and is_alive(pid) and _serves(pid, node.data_dir) else None


def is_running(node: PgNode) -> bool:
    return pid_of(node) is not None


def start(
    node: PgNode,
    *,
    timeout: float = 60.0,
    port: int | None = None,
    extra: dict[str, str] | None = None,
) -> None:
    """Start the node's server and return once it accepts connections (read-write for a
    primary, read-only for a hot standby once consistent). A no-op if it already runs.
    `port`/`extra` override the node's port and settings for this run only."""
    if is_running(node):
        return
    # Left by a server that was killed; its pid may since belong to another process, which
    # PostgreSQL would take for a live postmaster and refuse to start.
    (node.data_dir / "postmaster.pid").unlink(missing_ok=True)
    node.log_path.parent.mkdir(parents=True, exist_ok=True)
    with node.log_path.open("ab") as log:
        process = subprocess.Popen(
            postgres_argv(node, port=port, extra=extra),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops us in order
            cwd="/",
        )
    with _lock:
        _running[_key(node)] = process
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with _lock:
                _running.pop(_key(node), None)
            raise PgStartError(
                f"PostgreSQL {node.name} exited with {process.returncode}: {_log_tail(node)}"
            )
        # The pid check skips a stale file left by a server that was killed.
        lines = _pid_file_lines(node.data_dir)
        ours = len(lines) > 7 and lines[0].strip() == str(process.pid)
        if ours and lines[7].strip() in ("ready", "standby"):
            return
        time.sleep(0.05)
    kill(node)
    raise PgTimeoutError(f"PostgreSQL {node.name} not ready in {timeout}s: {_log_tail(node)}")


def stop(node: PgNode, mode: StopMode | str = StopMode.FAST, *, timeout: float = 30.0) -> None:
    """Shut the server down in `mode` and wait for it; SIGKILL if it outlasts `timeout`."""
    pid = pid_of(node)
    if pid is None:
        return
    os.kill(pid, _SIGNALS[StopMode(mode)])
    if not _wait_gone(node, pid, timeout):
        kill(node)


def kill(node: PgNode) -> None:
    """SIGKILL the postmaster and every process it started: a region's hard outage. The
    children are killed too, not left to notice: a backend mid-query would still answer."""
    pid = pid_of(node)
    if pid is None:
        return
    victims = [pid, *descendants(pid)]
    for victim in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    if not _wait_gone(node, pid, 10.0):
        raise PgClusterError(f"PostgreSQL {node.name} (pid {pid}) survived SIGKILL")
    deadline = time.monotonic() + 5
    while any(is_alive(v) for v in victims[1:]) and time.monotonic() < deadline:
        time.sleep(0.02)


def _wait_gone(node: PgNode, pid: int, timeout: float) -> bool:
    with _lock:
        process = _running.get(_key(node))
    deadline = time.monotonic() + timeout
    if process is not None and process.pid == pid:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        with _lock:
            _running.pop(_key(node), None)
        return True
    while is_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _key(node: PgNode) -> Path:
    return node.data_dir.resolve()


def _pid_file_lines(data_dir: Path) -> list[str]:
    try:
        return (data_dir / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return []


def _pid_file_pid(data_dir: Path) -> int | None:
    lines = _pid_file_lines(data_dir)
    return int(lines[0]) if lines and lines[0].strip().isdigit() else None


def is_alive(pid: int) -> bool:
    """Alive and not a zombie (a killed child of someone else may linger unreaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def _serves(pid: int, data_dir: Path) -> bool:
    """Whether `pid` is a postmaster of `data_dir` (a pid in a stale file may be reused)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    return any(arg and Path(arg.decode(errors="replace")) == data_dir for arg in argv) and any(
        arg.endswith(b"postgres") for arg in argv
    )


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _log_tail(node: PgNode, lines: int = 8) -> str:
    try:
        text = node.log_path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"(no log at {node.log_path})"
    return " | ".join(text[-lines:]) + f" (log: {node.log_path})"
