"""The embedded local stack: a PostgreSQL server from the `pgserver` wheel and the local AWS
endpoint (moto server) as a child process.

moto runs in its own process, not in a thread of the API: it spends about 3 ms of CPU on each
request, which would stall the API's event loop.

No child outlives this process: each is started with a parent-death signal (Linux's
PR_SET_PDEATHSIG), so even a SIGKILL of the parent, which runs no clean-up, ends them.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

log = logging.getLogger(__name__)


_PR_SET_PDEATHSIG = 1
# Every child started here and not yet stopped, for the shutdown watchdog's last resort.
_LIVE: set[subprocess.Popen[bytes]] = set()


def die_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None]:
    """A `preexec_fn` that makes the child receive `signum` when its parent dies.

    The signal follows the *thread* that forked: start children from the main thread (or the
    event loop's), never from a pool thread that may end. Runs after Popen has changed the
    child's user, which would otherwise clear the setting."""
    parent = os.getpid()
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def arm() -> None:
        if libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
            os._exit(127)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def spawn(
    command: list[str], *, death_signal: int = signal.SIGTERM, **popen: Any
) -> subprocess.Popen[bytes]:
    """Popen in a process group of its own (Ctrl-C in a terminal reaches only the parent, which
    stops the children in order) that dies with this process."""
    process: subprocess.Popen[bytes] = subprocess.Popen(
        command, start_new_session=True, preexec_fn=die_with_parent(death_signal), **popen
    )
    _LIVE.add(process)
    return process


def stop_process(
    process: subprocess.Popen[bytes], timeout: float, stop_signal: int = signal.SIGTERM
) -> None:
    """`stop_signal`, then SIGKILL of its whole group if it has not exited within `timeout`."""
    try:
        if process.poll() is None:
            process.send_signal(stop_signal)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("pid %d did not stop within %gs: killing it", process.pid, timeout)
                _kill_group(process)
                process.wait()
    finally:
        _LIVE.discard(process)


def kill_children() -> None:
    """SIGKILL every live child's group: the watchdog's last resort when a stop hangs."""
    for process in list(_LIVE):
        _kill_group(process)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, database: str = "hemisphere") -> Iterator[str]:
    """Start a PostgreSQL server whose data lives in `data_dir` as a child of this process;
    yields its URL (see embedded_postgres.py)."""
    from hemisphere.embedded_postgres import embedded_postgres as start

    with start(data_dir, database) as url:
        yield url


class ChildService:
    """An HTTP service of the local stack in a child process on 127.0.0.1:`port`, in its own
    process group: Ctrl-C in the terminal reaches the CLI, which stops the children in order,
    after the API has drained. Subclasses say how to run it and how to tell it is up."""

    name = "service"
    health_path = "/"
    # Whether the child's stderr is dropped (a server that logs every request there).
    quiet = False

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def ready(self) -> None:
        """Runs once the health check answers (configuration the service takes at run time)."""

    def start(self, timeout: float = 30.0) -> None:
        self.spawn()
        self.wait_until_up(timeout)

    def spawn(self) -> None:
        """Start the process (from the main thread: see die_with_parent), without waiting."""
        self._process = spawn(
            self.command(),
            env=self.environment(),
            stdout=subprocess.DEVNULL,
            # Otherwise stderr is inherited: if it cannot start, its traceback says why.
            stderr=subprocess.DEVNULL if self.quiet else None,
        )

    def wait_until_up(self, timeout: float = 30.0) -> None:
        """Return once the health check answers (and `ready` ran); stop it and raise if it
        exits or does not answer within `timeout`. Safe to run in a worker thread."""
        process = self._process
        assert process is not None, "spawn() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the {self.name} exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}{self.health_path}", timeout=1):
                    pass
                self.ready()
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the {self.name} did not start on {self.url} in {timeout}s")

    def stop(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, timeout)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def where(self) -> str:
        return f"port {self.port}"

    def exit_code(self) -> int | None:
        """None while it runs (or was never started); its exit status once it died."""
        return None if self._process is None else self._process.poll()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MotoServer(ChildService):
    """moto's HTTP server in a child process on 127.0.0.1:`port`.

    MOTO_PORT must equal the server's port: Step Functions' service integrations call back
    into `localhost:$MOTO_PORT`. State machines execute only with execute_state_machine on.
    """

    name = "local AWS endpoint"
    health_path = "/moto-api/data.json"
    quiet = True  # werkzeug logs a line per request

    def command(self) -> list[str]:
        # moto.server with state machines parsed once (see hemisphere/moto/server.py).
        server = "hemisphere.moto.server"
        return [sys.executable, "-m", server, "-H", "127.0.0.1", "-p", str(self.port)]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["MOTO_PORT"] = str(self.port)
        env.setdefault("AWS_ACCESS_KEY_ID", "hemisphere-local")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "hemisphere-local")
        return env

    def ready(self) -> None:
        self._enable_state_machine_execution()

    def _enable_state_machine_execution(self) -> None:
        body = b'{"stepfunctions": {"execute_state_machine": true}}'
        request = urllib.request.Request(
            f"{self.url}/moto-api/config",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5):
            pass
