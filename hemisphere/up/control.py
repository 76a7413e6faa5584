"""The control endpoint of a running `hemisphere up` (HTTP JSON on 127.0.0.1:B+99), used by
`hemisphere regions …` and the drill.

    GET  /status                 every region's role, epoch, health, lags, subscriptions, sagas
    GET  /.well-known/openid-configuration, /.well-known/jwks.json
                                 the development token issuer every region verifies tokens of
    POST /regions/{R}/stop       hard outage of R
    POST /regions/{R}/start      R comes back and resynchronizes as a secondary
    POST /regions/{R}/promote    fenced promotion; answers once R accepts writes

The issuer's documents are here because this endpoint is up whenever any region is (it starts
before the first region and stops after the last), and no latency proxy stands in front of it:
a region fetching keys sees no injected delay.

Status is computed in the request's thread. Actions run one at a time on the main thread
(`ActionQueue`): children must be forked from it (their death signal follows the forking
thread), and two promotions must never interleave.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from hemisphere.local_issuer import LocalIssuer

log = logging.getLogger(__name__)

_ACTION = re.compile(r"^/regions/([a-z0-9-]+)/(stop|start|promote)$")


class ControlError(Exception):
    """An action that cannot be done; `status` is the HTTP status it answers with."""

    def __init__(self, message: str, status: int = HTTPStatus.CONFLICT) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Controlled(Protocol):
    """What the endpoint controls (the orchestrator)."""

    def status(self) -> dict[str, Any]: ...

    def stop_region(self, region: str) -> dict[str, Any]: ...

    def start_region(self, region: str) -> dict[str, Any]: ...

    def promote_region(self, region: str) -> dict[str, Any]: ...


class ActionQueue:
    """Work handed to the main thread, which runs it between its own rounds."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()  # a job is queued before close() or refused after

    def submit(self, job: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                future.set_exception(ControlError("hemisphere up is stopping"))
                return future
            self._jobs.put((job, future))
        return future

    def close(self) -> None:
        """No more actions (`up` is stopping: the main thread runs none any more); those
        waiting fail at once. The endpoint still answers status and the issuer's keys."""
        with self._lock:
            self._closed = True
        while True:
            try:
                _, future = self._jobs.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(ControlError("hemisphere up is stopping"))

    def run_pending(self, wait: float) -> None:
        """On the main thread: run the jobs waiting, or wait up to `wait` s for one."""
        try:
            job, future = self._jobs.get(timeout=wait)
        except queue.Empty:
            return
        while True:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job())
                except Exception as error:  # handed to the waiting request
                    future.set_exception(error)
                except BaseException as error:  # a stop signal: the request fails, we stop
                    future.set_exception(ControlError(f"hemisphere up is stopping ({error!r})"))
                    raise
            try:
                job, future = self._jobs.get_nowait()
            except queue.Empty:
                return


class ControlServer:
    def __init__(
        self, port: int, target: Controlled, actions: ActionQueue, issuer: LocalIssuer
    ) -> None:
        handler = _handler(target, actions, issuer)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="control-endpoint", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for a loop that must have started
            self._server.shutdown()
        self._server.server_close()


def _handler(
    target: Controlled, actions: ActionQueue, issuer: LocalIssuer
) -> type[BaseHTTPRequestHandler]:
    published = issuer.documents()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in published:
                self._answer(HTTPStatus.OK, published[path])
                return
            if path.rstrip("/") != "/status":
                self._answer(HTTPStatus.NOT_FOUND, {"error": f"no such resource {self.path}"})
                return
            try:
                status = target.status()
            except Exception as error:
                log.exception("status failed")
                self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(error)})
                return
            self._answer(HTTPStatus.OK, status)

        def do_POST(self) -> None:
            match = _ACTION.match(self.path.rstrip("/"))
            if match is None:
                self._answer(HTTPStatus.NOT_FOUND, {"error": f"no such action {self.path}"})
                return
            region, verb = match.groups()
            action = {
                "stop": target.stop_region,
                "start": target.start_region,
                "promote": target.promote_region,
            }[verb]
            try:
                result = actions.submit(lambda: action(region)).result()
            except ControlError as error:
                self._answer(error.status, {"error": error.message})
                return
            except Exception as error:
                log.exception("%s %s failed", verb, region)
                self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{verb}: {error}"})
                return
            self._answer(HTTPStatus.OK, result)

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                # The caller gave up waiting (a status poll with a short timeout on a busy
                # machine): nobody to answer, nothing failed here.
                log.debug("control: %s left before its answer", self.client_address)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("control: " + format, *args)

    return Handler
