"""graphql-transport-ws and legacy graphql-ws on bad input: a frame that is not a message
object, a document that does not parse, an operation that cannot be selected. Each gets the
protocol's own answer (an `error` message, or close 4400) with AppSync-shaped errors
(`errorType`), never an unhandled exception."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from hemisphere.http.realtime_options import RealtimeOptions
from tests.functional.test_realtime_appsync import Api, AsgiWebSocket, Closed, serving
from tests.support.app import API_KEY

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with serving(RealtimeOptions(keepalive_seconds=60)) as running:
        yield running


async def acknowledged(api: Api, protocol: str) -> AsgiWebSocket:
    ws = AsgiWebSocket(api.app, "/graphql", subprotocols=[protocol])
    await ws.__aenter__()
    await ws.send_json({"type": "connection_init", "payload": {"x-api-key": API_KEY}})
    assert await ws.receive_json() == {"type": "connection_ack"}
    return ws


def operation(protocol: str, id: str, query: str, name: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"query": query, "variables": {}}
    if name is not None:
        payload["operationName"] = name
    return {
        "id": id,
        "type": "subscribe" if protocol == TRANSPORT_WS else "start",
        "payload": payload,
    }


@pytest.mark.parametrize("frame", [[], "text", 42, None, {"no": "type"}])
async def test_a_frame_that_is_not_a_message_closes_transport_ws_with_4400(
    api: Api, frame: Any
) -> None:
    ws = await acknowledged(api, TRANSPORT_WS)
    try:
        await ws.send_json(frame)
        with pytest.raises(Closed):
            await ws.receive_json()
        assert ws.close_code == 4400
    finally:
        await ws.__aexit__(None, None, None)


@pytest.mark.parametrize("frame", [[], "text", 42, None])
async def test_a_frame_that_is_not_a_message_is_an_error_on_legacy_graphql_ws(
    api: Api, frame: Any
) -> None:
    ws = await acknowledged(api, LEGACY_WS)
    try:
        await ws.send_json(frame)
        reply = await ws.receive_json()
        assert reply["type"] == "error"
        assert reply["payload"]["errorType"] == "BadRequestException"
    finally:
        await ws.__aexit__(None, None, None)


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
@pytest.mark.parametrize(
    ("query", "name", "error_type"),
    [
        ("subscription { onOrderChanged(", None, "InvalidSyntax"),
        ("subscription { onOrderChanged { nope } }", None, "ValidationError"),
        ("subscription A { onOrderChanged { id } }", "B", "BadRequestException"),
    ],
    ids=["syntax", "validation", "unknown-operation"],
)
async def test_a_bad_document_gets_an_error_message_with_its_error_type(
    api: Api, protocol: str, query: str, name: str | None, error_type: str
) -> None:
    ws = await acknowledged(api, protocol)
    try:
        await ws.send_json(operation(protocol, "1", query, name))
        reply = await ws.receive_json()
        assert reply["type"] == "error" and reply["id"] == "1", reply
        errors = reply["payload"] if protocol == TRANSPORT_WS else [reply["payload"]]
        assert errors and all(e["errorType"] == error_type for e in errors), errors
        assert all(e["message"] for e in errors)
    finally:
        await ws.__aexit__(None, None, None)
    assert api.broker.subscriber_count("publishOrder") == 0
