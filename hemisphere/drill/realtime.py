"""A subscriber as an AppSync client is one: the AppSync real-time protocol over a WebSocket
(subscriptions/appsync_protocol.py has the server's side), through a location's edge.

It subscribes to every order change, records each `data` message, and reconnects when the
connection drops (a region died under it), as Amplify does; each time it records when the
subscription was lost and when `start_ack` arrived again."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException
from websockets.typing import Subprotocol

from hemisphere.drill.records import Connection, Delivery

ORDER_CHANGES = """subscription DrillOrders {
  onOrderChanged { id status version updatedAt }
}"""
RECONNECT_DELAY_S = 0.2
HANDSHAKE_TIMEOUT_S = 5.0


class SubscriptionRefusedError(Exception):
    """The server answered the subscription with `error` or `connection_error`."""


def connection_url(realtime_url: str, api_key: str) -> tuple[str, dict[str, str]]:
    """AppSync's `?header=<base64 JSON>&payload=e30=` form, and the auth headers it encodes."""
    headers = {"host": urlsplit(realtime_url).netloc, "x-api-key": api_key}
    encoded = base64.b64encode(orjson.dumps(headers)).decode()
    return f"{realtime_url}?header={encoded}&payload=e30=", headers


def delivery_from(location: str, payload: object, received_at: float) -> Delivery | None:
    """The order change a `data` message carries (None if it is not one)."""
    if not isinstance(payload, dict):
        return None
    order = ((payload.get("data") or {}).get("onOrderChanged")) or None
    if not isinstance(order, dict):
        return None
    try:
        changed_at = datetime.fromisoformat(str(order["updatedAt"]).replace("Z", "+00:00"))
        return Delivery(
            location=location,
            order_id=str(order["id"]),
            status=str(order["status"]),
            version=int(order["version"]),
            changed_at=changed_at.timestamp(),
            received_at=received_at,
        )
    except (KeyError, TypeError, ValueError):
        return None


async def subscribe_forever(
    location: str,
    realtime_url: str,
    api_key: str,
    clock: Callable[[], float],
    deliveries: list[Delivery],
    connections: list[Connection],
) -> None:
    """Until cancelled: subscribe, record, and reconnect after any failure."""
    url, headers = connection_url(realtime_url, api_key)
    established = False
    while True:
        try:
            async with connect(
                url,
                subprotocols=[Subprotocol("graphql-ws")],
                open_timeout=HANDSHAKE_TIMEOUT_S,
                max_size=2**20,
            ) as socket:
                await socket.send(orjson.dumps({"type": "connection_init"}).decode())
                start = {
                    "type": "start",
                    "id": "orders",
                    "payload": {
                        "data": orjson.dumps({"query": ORDER_CHANGES, "variables": {}}).decode(),
                        "extensions": {"authorization": headers},
                    },
                }
                await socket.send(orjson.dumps(start).decode())
                async for raw in socket:
                    message = orjson.loads(raw)
                    kind = message.get("type")
                    if kind == "start_ack":
                        established = True
                        connections.append(Connection(location, clock(), "established"))
                    elif kind == "data":
                        delivery = delivery_from(location, message.get("payload"), clock())
                        if delivery is not None:
                            deliveries.append(delivery)
                    elif kind in ("error", "connection_error"):
                        raise SubscriptionRefusedError(str(message.get("payload")))
        except (OSError, TimeoutError, WebSocketException, SubscriptionRefusedError):
            pass
        if established:
            established = False
            connections.append(Connection(location, clock(), "lost"))
        await asyncio.sleep(RECONNECT_DELAY_S)
