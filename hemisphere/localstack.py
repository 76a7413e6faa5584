"""The embedded local stack: a PostgreSQL server from the `pgserver` wheel and the local AWS
endpoint (moto server) as a child process.

moto runs in its own process, not in a thread of the API: it spends about 3 ms of CPU on each
request, which would stall the API's event loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Self

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, database: str = "hemisphere") -> Iterator[str]:
    """Start (or join) a PostgreSQL server whose data lives in `data_dir`; yields its URL.
    The data outlives the server: the next start finds it again."""
    import pgserver  # imported here: only the embedded stack needs the server binaries

    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        server = pgserver.get_server(  # type: ignore[attr-defined]
            str(data_dir), cleanup_mode="stop"
        )
    try:
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
        if "1 row" not in exists:
            server.psql(f'CREATE DATABASE "{database}";')
        socket_dir = server.get_uri().split("host=", 1)[1]
        yield f"postgresql://postgres@/{database}?host={socket_dir}"
    finally:
        server.cleanup()


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
        self._process = subprocess.Popen(
            self.command(),
            env=self.environment(),
            stdout=subprocess.DEVNULL,
            # Otherwise stderr is inherited: if it cannot start, its traceback says why.
            stderr=subprocess.DEVNULL if self.quiet else None,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the {self.name} exited with {self._process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}{self.health_path}", timeout=1):
                    pass
                self.ready()
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the {self.name} did not start on {self.url} in {timeout}s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

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
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

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
