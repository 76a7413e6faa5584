"""Running a role until it is told to stop, as a container runtime tells it.

The first SIGTERM, SIGINT or SIGHUP starts a graceful stop: /readyz turns 503 (draining), the
listening socket closes, in-flight requests finish, WebSockets close with 1012 (service
restart) so clients reconnect elsewhere, the lifespan closes the backends and the workers
give back their current task, then the children stop. A second SIGINT skips the wait. If the
whole stop outlives HEMISPHERE_SHUTDOWN_TIMEOUT, a watchdog kills the children and ends the
process: a stop is bounded whatever hangs.

uvicorn handles signals itself, but re-raises them once it has stopped serving: the default
SIGTERM action then ends the process before its children are stopped (the orphans of issue 8).
Here the role owns the signals and uvicorn gets none.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn

from hemisphere.http.ws_protocol import LeanWebSocketsProtocol
from hemisphere.localstack import kill_children
from hemisphere.readiness import Readiness

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class StartupError(Exception):
    """Start-up cannot go on (a port taken, a backend that never came): one line, exit 1."""


class Interrupted(BaseException):
    """A stop signal arrived while the process was still starting, outside the event loop."""


class Shutdown:
    """The stop of one process: what the signals set in motion."""

    def __init__(self, readiness: Readiness | None, timeout: float) -> None:
        self.readiness = readiness
        self.timeout = timeout
        self.requested = False
        # What the process exits with once stopped: 1 after `fail`.
        self.exit_code = 0
        self.server: uvicorn.Server | None = None
        self.main: asyncio.Task[Any] | None = None
        # A role without a server (the workers) waits for this to be called.
        self.on_stop: Callable[[], None] | None = None
        self._watchdog: threading.Timer | None = None
        self._deadline: float | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self.request, signum)

    def request(self, signum: int = signal.SIGTERM) -> None:
        if self.requested:
            if signum == signal.SIGINT and self.server is not None:
                self.server.force_exit = True
            return
        self.requested = True
        if self.exit_code == 0:
            log.warning("%s received: stopping", signal.Signals(signum).name)
        self._arm_watchdog()
        if self.readiness is not None:
            self.readiness.draining = True
        if self.server is not None and self.server.started:
            self.server.should_exit = True
        elif self.on_stop is not None:
            self.on_stop()
        elif self.main is not None:
            # Still starting: nothing to drain; unwinding the start stops what it started.
            self.main.cancel()

    def fail(self, reason: str) -> None:
        """Stop because this process cannot go on serving: the orchestrator should restart
        it (exit code 1)."""
        log.error("%s: stopping with exit code 1 so that it is restarted", reason)
        self.exit_code = 1
        self.request(signal.SIGTERM)

    def remaining(self, reserve: float = 0.5) -> float:
        """Seconds left of the stop's budget (all of it before a stop began), less `reserve`
        for what must still happen after; at least one."""
        if self._deadline is None:
            return self.timeout
        return max(1.0, self._deadline - time.monotonic() - reserve)

    def _arm_watchdog(self) -> None:
        self._deadline = time.monotonic() + self.timeout
        self._watchdog = threading.Timer(self.timeout, _overrun, args=(self.timeout,))
        self._watchdog.daemon = True
        self._watchdog.start()

    def disarm(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()


def _overrun(timeout: float) -> None:
    log.error("the stop took longer than %gs (HEMISPHERE_SHUTDOWN_TIMEOUT): killing", timeout)
    kill_children()
    os._exit(1)


@contextlib.contextmanager
def interruptible_start() -> Iterator[None]:
    """Before the event loop runs, SIGTERM and SIGHUP interrupt like Ctrl-C does, so whatever
    was started so far is stopped on the way out (their default action would end the process
    at once and orphan its children)."""

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, interrupt) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling (see the module's docstring)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen(host: str, port: int) -> socket.socket:
    """Bind the API's socket before anything else starts: a port already taken is refused
    at once, not after the backends came up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} on {host} is already in use{_holder_of(port)}; "
                "stop it or choose another --port"
            ) from None
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    # Bound, not yet listening: until the server serves, a client is refused at once rather
    # than left waiting in the backlog (uvicorn starts listening when it serves).
    return sock


def _holder_of(port: int) -> str:
    """` by pid N (name)` for the process listening on `port`, when this process may know."""
    import psutil

    try:
        for conn in psutil.net_connections("tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid is None:
                    break
                return f" by pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    except (psutil.Error, OSError):
        pass
    return " by another process"


def uvicorn_config(app: Any, sock: socket.socket, shutdown: Shutdown) -> uvicorn.Config:
    host, port = sock.getsockname()[:2]
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        # uvicorn's records go to the process's handler (hemisphere.logs: text or JSON lines).
        log_config=None,
        lifespan="on",
        # uvicorn's websockets-sansio, without what it keeps per connection and never reads
        # again (hemisphere.http.ws_protocol: issue 9's memory per idle connection).
        ws=LeanWebSocketsProtocol,
        # No permessage-deflate: subscription messages are a few hundred bytes, and a
        # compressor per connection cost a third of a change's delivery CPU and most of an
        # idle connection's memory (bench/subscriptions.py).
        ws_per_message_deflate=False,
        # Half the budget for requests and WebSockets; the rest for backends and children.
        timeout_graceful_shutdown=max(1, int(shutdown.timeout / 2)),
    )


async def serve_app(config: uvicorn.Config, sock: socket.socket, shutdown: Shutdown) -> bool:
    """Serve until `shutdown` is requested; whether the server ever started."""
    server = _Server(config)
    shutdown.server = server
    if shutdown.requested:
        return False
    await server.serve(sockets=[sock])
    return server.started


def run(main: Callable[[Shutdown], Awaitable[int]], shutdown: Shutdown) -> int:
    """Run `main` on uvicorn's event loop (uvloop when installed) with the stop signals
    handled; a stop requested during start-up unwinds it and counts as a clean exit."""

    async def guarded() -> int:
        shutdown.install(asyncio.get_running_loop())
        shutdown.main = asyncio.current_task()
        try:
            return max(await main(shutdown), shutdown.exit_code)
        except asyncio.CancelledError:
            if shutdown.requested:
                return shutdown.exit_code
            raise

    # uvicorn picks the loop (uvloop when installed: +25% on small requests); the app named
    # here is never loaded.
    loop_factory = uvicorn.Config(app="hemisphere.app:create_app").get_loop_factory()
    # The watchdog stays armed after this returns: the children still have to stop.
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(guarded())
