"""`graphql-transport-ws` and legacy `graphql-ws` on /graphql (Strawberry's handlers), with
Hemisphere's authentication and enhanced filters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hemisphere.http.realtime_options import RealtimeOptions
from tests.functional.test_realtime_appsync import (
    SUBSCRIPTION,
    Api,
    AsgiWebSocket,
    Closed,
    one_filter,
    serving,
)
from tests.support.app import API_KEY, token_headers

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with serving(RealtimeOptions(keepalive_seconds=60)) as running:
        yield running


def socket(api: Api, protocol: str, headers: dict[str, str] | None = None) -> AsgiWebSocket:
    return AsgiWebSocket(api.app, "/graphql", subprotocols=[protocol], headers=headers)


def subscribe(
    id: str, customer: str | None = None, extensions: dict[str, Any] | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"query": SUBSCRIPTION, "variables": {"c": customer}}
    if extensions is not None:
        payload["extensions"] = extensions
    return {"id": id, "type": "subscribe", "payload": payload}


async def until_subscribed(api: Api, count: int) -> None:
    # graphql-transport-ws acknowledges no subscription: watch the broker instead.
    for _ in range(500):
        if api.broker.subscriber_count("publishOrder") == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} subscriptions never reached the broker")


async def test_a_token_in_connection_init_then_next_for_its_own_changes(api: Api) -> None:
    async with socket(api, TRANSPORT_WS) as ws:
        assert ws.subprotocol == TRANSPORT_WS
        await ws.send_json({"type": "connection_init", "payload": token_headers("c-1")})
        assert await ws.receive_json() == {"type": "connection_ack"}
        await ws.send_json(subscribe("mine", "c-1"))
        # Contract v2: another customer's orders are not the token's to listen to.
        await ws.send_json(subscribe("theirs", "c-2"))
        refused = await ws.receive_json()
        assert refused["type"] == "error" and refused["id"] == "theirs"
        assert refused["payload"][0]["errorType"] == "Unauthorized"
        await until_subscribed(api, 1)
        await api.publish("c-2", order="o-0002")
        await api.publish("c-1")
        reply = await ws.receive_json()
        assert reply["type"] == "next" and reply["id"] == "mine"
        assert reply["payload"]["data"]["onOrderChanged"]["customerId"] == "c-1"
        await ws.send_json({"id": "mine", "type": "complete"})
        await until_subscribed(api, 0)


async def test_the_api_key_may_not_listen_to_orders(api: Api) -> None:
    async with socket(api, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"x-api-key": API_KEY}})
        assert await ws.receive_json() == {"type": "connection_ack"}
        await ws.send_json(subscribe("orders", "c-1"))
        refused = await ws.receive_json()
        assert refused["type"] == "error" and refused["id"] == "orders"
        assert refused["payload"][0]["message"] == (
            "Not Authorized to access onOrderChanged on type Subscription"
        )
    assert api.broker.subscriber_count("publishOrder") == 0


async def test_api_key_in_the_upgrade_headers(api: Api) -> None:
    async with socket(api, TRANSPORT_WS, headers={"x-api-key": API_KEY}) as ws:
        await ws.send_json({"type": "connection_init"})
        assert await ws.receive_json() == {"type": "connection_ack"}


@pytest.mark.parametrize(
    ("payload", "headers"),
    [
        ({}, None),
        ({"x-api-key": "da2-wrongwrongwrongwrongwrong"}, None),
        # Credentials in the payload are the ones checked, even next to good headers.
        ({"x-api-key": "da2-wrongwrongwrongwrongwrong"}, {"x-api-key": API_KEY}),
    ],
    ids=["none", "wrong key", "wrong key in payload"],
)
async def test_without_valid_credentials_the_connection_is_closed_without_an_ack(
    api: Api, payload: dict[str, str], headers: dict[str, str] | None
) -> None:
    async with socket(api, TRANSPORT_WS, headers=headers) as ws:
        await ws.send_json({"type": "connection_init", "payload": payload})
        with pytest.raises(Closed):
            await ws.receive_json()
        assert ws.close_code == 4403
    assert api.broker.subscriber_count("publishOrder") == 0


async def test_enhanced_filter_in_the_subscribe_extensions(api: Api) -> None:
    async with socket(api, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": token_headers("c-1")})
        await ws.receive_json()
        big = {"filter": one_filter("total.amount", "ge", 10_000)}
        await ws.send_json(subscribe("big", "c-1", extensions=big))
        await until_subscribed(api, 1)
        await api.publish("c-1", amount=100)
        await api.publish("c-1", amount=20_000)
        reply = await ws.receive_json()
        assert reply["payload"]["data"]["onOrderChanged"]["total"]["amount"] == 20_000
        bad = {"filter": one_filter("nope", "eq", 1)}
        await ws.send_json(subscribe("bad", "c-1", extensions=bad))
        reply = await ws.receive_json()
        assert reply["type"] == "error" and reply["id"] == "bad"
        assert "has no field nope" in reply["payload"][0]["message"]


async def test_legacy_graphql_ws(api: Api) -> None:
    async with socket(api, LEGACY_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": token_headers("c-1")})
        assert await ws.receive_json() == {"type": "connection_ack"}
        start = subscribe("1", "c-1", {"filter": one_filter("status", "eq", "CONFIRMED")})
        await ws.send_json({**start, "type": "start"})
        await until_subscribed(api, 1)
        await api.publish("c-1", status="FAILED")
        await api.publish("c-1", status="CONFIRMED")
        reply = await ws.receive_json()
        assert reply["type"] == "data" and reply["id"] == "1"
        assert reply["payload"]["data"]["onOrderChanged"]["status"] == "CONFIRMED"
        await ws.send_json({"type": "stop", "id": "1"})
        assert await ws.receive_json() == {"type": "complete", "id": "1"}


async def test_legacy_graphql_ws_refuses_with_connection_error(api: Api) -> None:
    async with socket(api, LEGACY_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"x-api-key": "da2-nope"}})
        assert (await ws.receive_json())["type"] == "connection_error"
        with pytest.raises(Closed):
            await ws.receive_json()
