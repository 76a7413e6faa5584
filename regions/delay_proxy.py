"""A TCP proxy that adds a one-way delay in each direction: the inter-region network.

The kernel here has no netem, so every link that crosses regions (PostgreSQL replication,
write forwarding and DynamoDB replication to another region's local AWS endpoint) goes through
one of these. Each direction is a `DelayLine`: a chunk is stamped with its arrival time and
written `delay` seconds later, in order. The delay is latency, not lost throughput: a stream of
chunks arrives spread as it was sent, shifted by `delay`, never `delay` per chunk.

Bytes are forwarded unchanged (any protocol: PostgreSQL's, HTTP/1.1 keep-alive, WebSocket);
an EOF is forwarded as a half-close after the same delay; a reset on either side closes both.

Run many in one process (what `hemisphere up` does, as a child that dies with it):

    python -m regions.delay_proxy --spec proxies.json [--parent-pid PID]

with proxies.json a list (or `{"proxies": [...]}`) of
`{"name": "pg us-east-1→eu-west-1", "listen": "127.0.0.1:8013", "target": "127.0.0.1:8003",
"one_way_ms": 37.5}`. Once every proxy listens it prints one JSON line to stdout:
`{"ready": [{"name": ..., "listen": "127.0.0.1:8013"}, ...]}`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast

from regions.lifeline import run_until_stopped
from regions.network_priority import run_as_network

T = TypeVar("T")

READ_SIZE = 64 * 1024
# Chunks in flight per direction before the reader waits (about 16 MiB of 64 KiB reads):
# enough for the bandwidth-delay product of a local link, bounded so a stalled peer pushes back.
LINE_CAPACITY = 256
CONNECT_TIMEOUT_SECONDS = 5.0


class DelayLine(Generic[T]):
    """Items delivered by `deliver`, in order, each `delay` seconds after it was `put`.

    `run` delivers until `close` (which is itself delayed, so an end-of-stream arrives after
    the data before it). A `put` waits while `capacity` items are in flight.
    """

    def __init__(
        self,
        delay: float,
        deliver: Callable[[T], Awaitable[None]],
        capacity: int = LINE_CAPACITY,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.delay = delay
        self._deliver = deliver
        self._queue: asyncio.Queue[tuple[float, T | None, bool]] = asyncio.Queue(capacity)
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._sleep = sleep

    async def put(self, item: T) -> None:
        await self._queue.put((self._clock() + self.delay, item, False))

    async def close(self) -> None:
        await self._queue.put((self._clock() + self.delay, None, True))

    async def run(self) -> None:
        while True:
            due, item, closed = await self._queue.get()
            wait = due - self._clock()
            if wait > 0:
                await self._sleep(wait)
            if closed:
                return
            await self._deliver(cast(T, item))  # None only in the closing entry


@dataclass(frozen=True, slots=True)
class ProxySpec:
    """One link: listen here, forward to target, `one_way_seconds` added in each direction."""

    listen_host: str
    listen_port: int  # 0: any free port (see DelayProxy.port)
    target_host: str
    target_port: int
    one_way_seconds: float
    name: str = ""

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> ProxySpec:
        """`{"name", "listen": "host:port", "target": "host:port", "one_way_ms"}`."""
        try:
            listen_host, listen_port = _host_port(document["listen"])
            target_host, target_port = _host_port(document["target"])
            one_way_ms = document.get("one_way_ms", 0)
            if isinstance(one_way_ms, bool) or not isinstance(one_way_ms, int | float):
                raise ValueError(f"one_way_ms must be a number, got {one_way_ms!r}")
            if one_way_ms < 0:
                raise ValueError(f"one_way_ms must be ≥ 0, got {one_way_ms}")
            return cls(
                listen_host=listen_host,
                listen_port=listen_port,
                target_host=target_host,
                target_port=target_port,
                one_way_seconds=one_way_ms / 1000.0,
                name=str(document.get("name", "")),
            )
        except KeyError as missing:
            raise ValueError(f"delay proxy spec {dict(document)!r} lacks {missing}") from None
        except ValueError as error:
            raise ValueError(f"delay proxy spec {dict(document)!r}: {error}") from None


def _host_port(value: object) -> tuple[str, int]:
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(f"expected 'host:port', got {value!r}")
    host, _, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # "[::1]:5432"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected 'host:port', got {value!r}")
    return host, int(port)


class DelayProxy:
    """One delayed TCP link. `cut()` drops every connection and refuses new ones (a network
    partition that resets, as a dead region's host does) until `restore()`."""

    def __init__(self, spec: ProxySpec) -> None:
        self.spec = spec
        self._delay = spec.one_way_seconds
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._cut = False

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the delay proxy is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def listen(self) -> str:
        host = self.spec.listen_host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def set_delay(self, one_way_seconds: float) -> None:
        """Applies to bytes that arrive from now on (earlier ones keep their delivery time)."""
        self._delay = one_way_seconds

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.spec.listen_host, self.spec.listen_port, reuse_address=True
        )

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        await self._close_connections()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def cut(self) -> None:
        self._cut = True
        await self._close_connections()

    def restore(self) -> None:
        self._cut = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _close_connections(self) -> None:
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        # Its own task, so that stop() cancels it and not asyncio's connection callback
        # (which would log the cancellation as an error).
        task = asyncio.create_task(self._serve(reader, writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            # Here, not in _serve: a task cancelled before it ever ran has no finally of its own.
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(self.spec.target_host, self.spec.target_port),
                CONNECT_TIMEOUT_SECONDS,
            )
        except (OSError, TimeoutError):
            return  # the far side is down: the client sees its connection reset, as it would
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._direction(reader, upstream_writer))
                group.create_task(self._direction(upstream_reader, writer))
        except* (OSError, asyncio.IncompleteReadError):
            pass  # a reset on either side ends the connection on both
        finally:
            upstream_writer.transport.abort()

    async def _direction(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def deliver(chunk: bytes) -> None:
            writer.write(chunk)
            await writer.drain()

        line: DelayLine[bytes] = DelayLine(self._delay, deliver)

        async def receive() -> None:
            while chunk := await reader.read(READ_SIZE):
                line.delay = self._delay
                await line.put(chunk)
            await line.close()

        # Either half failing (a reset) cancels the other, so neither waits on a dead peer.
        async with asyncio.TaskGroup() as group:
            group.create_task(receive())
            group.create_task(line.run())
        if writer.can_write_eof() and not writer.is_closing():
            writer.write_eof()


async def run_proxies(
    specs: Sequence[ProxySpec], on_ready: Callable[[list[DelayProxy]], None] | None = None
) -> None:
    """Run every proxy until cancelled, then close every connection."""
    proxies = [DelayProxy(spec) for spec in specs]
    try:
        for proxy in proxies:
            await proxy.start()
        if on_ready is not None:
            on_ready(proxies)
        await asyncio.Event().wait()
    finally:
        await asyncio.gather(*(proxy.stop() for proxy in proxies), return_exceptions=True)


def load_specs(path: Path) -> list[ProxySpec]:
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"delay proxy spec file {path}: not readable JSON ({error})") from None
    if isinstance(document, Mapping):
        document = document.get("proxies")
    if not isinstance(document, list) or not all(isinstance(item, Mapping) for item in document):
        raise ValueError(f"delay proxy spec file {path}: expected a list of proxy objects")
    return [ProxySpec.from_json(item) for item in document]


def _print_ready(proxies: list[DelayProxy]) -> None:
    ready = [{"name": proxy.spec.name, "listen": proxy.listen} for proxy in proxies]
    print(json.dumps({"ready": ready}), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m regions.delay_proxy", description="Delayed TCP links between regions."
    )
    parser.add_argument("--spec", type=Path, required=True, help="JSON list of proxies")
    parser.add_argument(
        "--parent-pid", type=int, default=os.getppid(), help="exit when this process is gone"
    )
    args = parser.parse_args(argv)
    run_as_network()  # it stands in for the network: see regions/network_priority.py
    try:
        specs = load_specs(args.spec)
    except ValueError as error:
        print(f"delay proxies: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run_until_stopped(run_proxies(specs, _print_ready), args.parent_pid))
    except OSError as error:  # a port already taken, most likely
        print(f"delay proxies: cannot listen: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
