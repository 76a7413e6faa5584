"""`hemisphere api` as a container runs it: configuration from the environment, probes,
logs on stdout, a clean exit on SIGTERM; and its start-up errors as one line."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from hemisphere.localstack import free_port
from tests.support.roles import API_KEY, api_env, clean_env, start_role

pytestmark = pytest.mark.e2e


def test_api_serves_from_the_environment_and_stops_on_sigterm(
    pg_dsn: str, aws_endpoint: str, table_name: str, payments_url: str
) -> None:
    env = api_env(
        pg_dsn,
        aws_endpoint,
        table_name,
        HEMISPHERE_SEED_DEMO_DATA="true",
        HEMISPHERE_REBUILD_PROJECTIONS="true",
        HEMISPHERE_PAYMENTS_URL=payments_url,
    )
    api = start_role(["api", "--host", "127.0.0.1"], env, port=free_port())
    try:
        ready = api.wait_ready()
        assert ready["status"] == "ready" and ready["role"] == "primary"
        assert ready["checks"] == {"postgres": "ok", "dynamodb": "ok", "projections": "ok"}
        alive = api.probe("/healthz")
        assert alive is not None and alive.json() == {"status": "alive"}
        product = api.query('{ product(id: "p-0001") { id } }')
        assert product["data"] == {"product": {"id": "p-0001"}}
        with contextlib.ExitStack() as stack:
            sockets = [graphql_ws(stack, api.port), appsync_realtime(stack, api.port)]
            started = time.monotonic()
            api.process.send_signal(signal.SIGTERM)
            # Closed as "service restart": clients reconnect (elsewhere) at once.
            assert [close_code(ws) for ws in sockets] == [1012, 1012]
        assert api.wait_exit(timeout=20) == 0
        assert time.monotonic() - started < 10
    finally:
        if api.process.poll() is None:
            api.process.kill()
    assert "Hemisphere API serving region us-east-1" in api.text
    assert "SIGTERM received: stopping" in api.text
    assert "Traceback" not in api.text


def close_code(ws: ClientConnection, timeout: float = 10) -> int | None:
    """Read (keep-alives, pings) until the server closes; its close code."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=deadline - time.monotonic())
    except ConnectionClosed as closed:
        return None if closed.rcvd is None else closed.rcvd.code
    raise AssertionError("the server did not close the WebSocket")


def graphql_ws(stack: contextlib.ExitStack, port: int | None) -> ClientConnection:
    ws = stack.enter_context(
        connect(
            f"ws://127.0.0.1:{port}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]
        )
    )
    ws.send(json.dumps({"type": "connection_init", "payload": {"x-api-key": API_KEY}}))
    assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
    return ws


def appsync_realtime(stack: contextlib.ExitStack, port: int | None) -> ClientConnection:
    header = {"host": f"127.0.0.1:{port}", "x-api-key": API_KEY}
    encoded = base64.b64encode(json.dumps(header).encode()).decode()
    ws = stack.enter_context(
        connect(
            f"ws://127.0.0.1:{port}/graphql/realtime?header={encoded}&payload=e30=",
            subprotocols=[Subprotocol("graphql-ws")],
        )
    )
    ws.send(json.dumps({"type": "connection_init"}))
    assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
    return ws


def test_a_malformed_database_url_is_one_line_naming_it() -> None:
    role = start_role(["api"], clean_env(DATABASE_URL="notaurl"))
    assert role.wait_exit() == 2
    assert role.text.strip().splitlines() == [
        "hemisphere: DATABASE_URL is not a URL like postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
    ]


def test_serve_names_a_malformed_database_url_too(tmp_path: object) -> None:
    role = start_role(["serve", "--data-dir", str(tmp_path)], clean_env(DATABASE_URL="notaurl"))
    assert role.wait_exit() == 2
    assert len(role.text.strip().splitlines()) == 1 and "DATABASE_URL" in role.text


def test_an_unreachable_database_is_waited_for_then_one_line(
    aws_endpoint: str, table_name: str
) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    env = api_env(dead, aws_endpoint, table_name, HEMISPHERE_STARTUP_TIMEOUT="2")
    role = start_role(["api", "--host", "127.0.0.1"], env, port=free_port())
    assert role.wait_exit() == 1
    lines = role.text.strip().splitlines()
    assert any("waiting for PostgreSQL" in line for line in lines)
    assert lines[-1].startswith("hemisphere: PostgreSQL at 127.0.0.1:")
    assert "HEMISPHERE_STARTUP_TIMEOUT" in lines[-1]
    assert "Traceback" not in role.text


def test_a_port_already_taken_is_refused_before_anything_starts(
    aws_endpoint: str, table_name: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # A database that does not exist: had the role got past the port, it would wait.
        dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
        role = start_role(
            ["api", "--host", "127.0.0.1"], api_env(dead, aws_endpoint, table_name), port=port
        )
        assert role.wait_exit(timeout=20) == 1
    assert role.text.strip().splitlines() == [
        f"hemisphere: port {port} on 127.0.0.1 is already in use by pid {os.getpid()} (python); "
        "stop it or choose another --port"
    ]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_while_waiting_for_backends_exits_cleanly(
    aws_endpoint: str, table_name: str, signum: signal.Signals
) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    role = start_role(
        ["api", "--host", "127.0.0.1"], api_env(dead, aws_endpoint, table_name), port=free_port()
    )
    deadline = time.monotonic() + 30
    while "waiting for PostgreSQL" not in role.text:
        assert time.monotonic() < deadline, role.text
        time.sleep(0.1)
    assert role.stop(signum, timeout=10) == 0
    assert "Traceback" not in role.text
