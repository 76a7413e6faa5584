"""WebSocket upgrades reach their endpoint before the middleware and the router; any other
WebSocket path is still the router's, which refuses it, and HTTP is untouched."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from hemisphere.app import create_app
from tests.functional.test_realtime_appsync import AsgiWebSocket, api_key_auth, appsync_query
from tests.support.app import SETTINGS, client_for, fake_runtime, runtime_factory
from tests.support.fakes import InMemoryReader


@pytest.fixture
async def served() -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(SETTINGS, runtime_factory=runtime_factory(fake_runtime(InMemoryReader())))
    async with client_for(app) as client:
        yield app, client


@pytest.fixture
def app(served: tuple[Starlette, httpx.AsyncClient]) -> Starlette:
    return served[0]


async def test_an_unknown_websocket_path_is_refused_by_the_router(app: Starlette) -> None:
    with pytest.raises(AssertionError, match=r"websocket\.close"):
        async with AsgiWebSocket(app, "/graphql/elsewhere"):
            pass


@pytest.mark.parametrize("path", ["/graphql/realtime", "/graphql"])
async def test_appsync_upgrades_are_answered_on_both_paths(app: Starlette, path: str) -> None:
    query = appsync_query(api_key_auth())
    async with AsgiWebSocket(app, path, query=query, subprotocols=["graphql-ws"]) as socket:
        assert socket.subprotocol == "graphql-ws"
        await socket.send_json({"type": "connection_init"})
        assert (await socket.receive_json())["type"] == "connection_ack"


async def test_graphql_ws_upgrades_reach_strawberrys_handler(app: Starlette) -> None:
    async with AsgiWebSocket(app, "/graphql", subprotocols=["graphql-transport-ws"]) as socket:
        assert socket.subprotocol == "graphql-transport-ws"
        await asyncio.sleep(0)


async def test_http_still_goes_through_the_middleware(
    served: tuple[Starlette, httpx.AsyncClient],
) -> None:
    response = await served[1].get("/healthz")
    assert response.status_code == 200
    assert "x-amzn-requestid" in response.headers
