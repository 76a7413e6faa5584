"""The delay proxy with real peers: an echo server, a WebSocket server, moto over HTTP/1.1
keep-alive, PostgreSQL; and as the child process `hemisphere up` runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import websockets
from websockets.asyncio.server import ServerConnection, serve

from regions.delay_proxy import DelayProxy, ProxySpec

pytestmark = pytest.mark.integration


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(65536):
        writer.write(chunk)
        await writer.drain()
    writer.close()


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def _spec(target_port: int, one_way_ms: float) -> ProxySpec:
    return ProxySpec("127.0.0.1", 0, "127.0.0.1", target_port, one_way_ms / 1000.0, "test")


async def test_round_trip_through_50ms_each_way_takes_at_least_100ms(echo_port: int) -> None:
    async with DelayProxy(_spec(echo_port, 50)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        rtts = []
        for _ in range(3):
            started = time.perf_counter()
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
            rtts.append(time.perf_counter() - started)
        writer.close()
    assert min(rtts) >= 0.095


async def test_a_large_payload_arrives_whole_and_in_order(echo_port: int) -> None:
    payload = os.urandom(8 * 1024 * 1024)
    async with DelayProxy(_spec(echo_port, 5)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)

        async def send() -> None:
            for start in range(0, len(payload), 100_000):
                writer.write(payload[start : start + 100_000])
                await writer.drain()
            writer.write_eof()

        sending = asyncio.create_task(send())
        received = await reader.read(-1)  # until the echo server's close comes back through
        await sending
        writer.close()
    assert received == payload


async def test_a_burst_comes_back_whole_and_in_order(echo_port: int) -> None:
    async with DelayProxy(_spec(echo_port, 50)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        started = time.perf_counter()
        for index in range(20):
            writer.write(bytes([index]) * 10)
            await writer.drain()
            await asyncio.sleep(0.001)
        received = await reader.readexactly(200)
        elapsed = time.perf_counter() - started
        writer.close()
    assert received == b"".join(bytes([index]) * 10 for index in range(20))
    assert elapsed >= 0.095


async def _websocket_echo(connection: ServerConnection) -> None:
    async for message in connection:
        await connection.send(message)


async def test_a_websocket_with_a_subprotocol_works_through_it() -> None:
    async with serve(
        _websocket_echo, "127.0.0.1", 0, subprotocols=[websockets.Subprotocol("graphql-ws")]
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with (
            DelayProxy(_spec(port, 10)) as proxy,
            websockets.connect(
                f"ws://127.0.0.1:{proxy.port}/graphql/realtime?header=e30%3D",
                subprotocols=[websockets.Subprotocol("graphql-ws")],
            ) as client,
        ):
            assert client.subprotocol == "graphql-ws"
            for index in range(50):
                await client.send(json.dumps({"n": index}))
            replies = [json.loads(await client.recv()) for _ in range(50)]
    assert replies == [{"n": index} for index in range(50)]


async def test_http_keep_alive_to_moto_uses_one_connection(aws_endpoint: str) -> None:
    port = int(aws_endpoint.rsplit(":", 1)[1])
    async with (
        DelayProxy(_spec(port, 5)) as proxy,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{proxy.port}") as client,
    ):
        for _ in range(3):
            response = await client.get("/moto-api/data.json")
            assert response.status_code == 200
            assert proxy.connection_count == 1


async def test_postgresql_sessions_work_through_it(database_url: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(database_url)
    async with DelayProxy(_spec(parts.port or 5432, 5)) as proxy:
        proxied = database_url.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
        connection = await asyncpg.connect(proxied)
        try:
            rows = await connection.fetch("SELECT g FROM generate_series(1, 50000) AS g")
            assert [row["g"] for row in rows] == list(range(1, 50001))
        finally:
            await connection.close()


async def test_cut_drops_connections_and_refuses_new_ones_until_restored(echo_port: int) -> None:
    async with DelayProxy(_spec(echo_port, 0)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        await proxy.cut()
        assert await reader.read() == b""
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await reader.read() == b""
        writer.close()
        proxy.restore()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"back")
        assert await reader.readexactly(4) == b"back"
        writer.close()


async def test_stop_closes_every_connection(echo_port: int) -> None:
    proxy = DelayProxy(_spec(echo_port, 0))
    await proxy.start()
    connections = [await asyncio.open_connection("127.0.0.1", proxy.port) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert proxy.connection_count == 3
    await proxy.stop()
    for reader, writer in connections:
        assert await reader.read() == b""
        writer.close()


async def test_a_dead_target_resets_the_client() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with DelayProxy(_spec(port, 0)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        with contextlib.suppress(ConnectionResetError):
            assert await reader.read() == b""
        writer.close()


def test_the_child_process_serves_and_dies_with_its_parent(tmp_path: Path) -> None:
    spec = tmp_path / "proxies.json"
    spec.write_text(json.dumps([{"name": "a", "listen": "127.0.0.1:0", "target": "127.0.0.1:1"}]))
    # A parent that starts the proxies, reports their pid and ready line, then waits forever.
    parent_code = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-m', 'regions.delay_proxy', '--spec', "
        f"{str(spec)!r}], stdout=subprocess.PIPE, text=True)\n"
        "print(child.pid, flush=True)\n"
        "print(child.stdout.readline(), end='', flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    ready = json.loads(parent.stdout.readline())
    assert ready["ready"][0]["name"] == "a"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.1)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie waiting for init to reap it is gone for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_malformed_spec_file_is_a_one_line_error(tmp_path: Path) -> None:
    spec = tmp_path / "proxies.json"
    spec.write_text(json.dumps([{"name": "a", "listen": "nowhere"}]))
    result = subprocess.run(
        [sys.executable, "-m", "regions.delay_proxy", "--spec", str(spec)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "expected 'host:port'" in result.stderr


def test_a_taken_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        spec = tmp_path / "proxies.json"
        spec.write_text(
            json.dumps([{"name": "a", "listen": f"127.0.0.1:{port}", "target": "127.0.0.1:1"}])
        )
        result = subprocess.run(
            [sys.executable, "-m", "regions.delay_proxy", "--spec", str(spec)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert result.stderr.startswith("delay proxies: cannot listen")
    assert result.stderr.count("\n") == 1
