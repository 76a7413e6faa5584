"""A subscriber as an AppSync client is one: the AppSync real-time protocol over a WebSocket
(subscriptions/appsync_protocol.py has the server's side), through a location's edge.

Under contract v2 an order subscription names a customer, and only that customer's token may
make it. So the subscriber of a location opens one connection (with the API key, which any
connection may use) and starts one subscription per shopper (users.SHOPPERS), each `start`
carrying that customer's token in its `authorization`, as AppSync takes it per start: every
order the drill places reaches each location once, through its customer's subscription.

It records each `data` message and reconnects when the connection drops (a region died under
it), as Amplify does; each time it records when the connection was lost and when it was
established again: when every one of its subscriptions had its `start_ack`."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Sequence
from datetime import datetime
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException
from websockets.typing import Subprotocol

from hemisphere.drill.records import Connection, Delivery
from hemisphere.drill.tokens import CustomerTokens

ORDER_CHANGES = """subscription DrillOrders($c: ID) {
  onOrderChanged(customerId: $c) { id status version updatedAt }
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


def start_message(host: str, customer_id: str, token: str) -> dict[str, object]:
    """The `start` of `customer_id`'s order subscription, authorized by its token."""
    request = {"query": ORDER_CHANGES, "variables": {"c": customer_id}}
    return {
        "type": "start",
        "id": f"orders-{customer_id}",
        "payload": {
            "data": orjson.dumps(request).decode(),
            "extensions": {"authorization": {"host": host, "authorization": token}},
        },
    }


async def subscribe_forever(
    location: str,
    realtime_url: str,
    api_key: str,
    customers: Sequence[str],
    tokens: CustomerTokens,
    clock: Callable[[], float],
    deliveries: list[Delivery],
    connections: list[Connection],
) -> None:
    """Until cancelled: subscribe to the orders of every one of `customers`, record, and
    reconnect after any failure (any subscription refused counts as one)."""
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
                for customer in customers:
                    start = start_message(headers["host"], customer, tokens.token(customer))
                    await socket.send(orjson.dumps(start).decode())
                waiting = {f"orders-{customer}" for customer in customers}
                async for raw in socket:
                    message = orjson.loads(raw)
                    kind = message.get("type")
                    if kind == "start_ack":
                        waiting.discard(str(message.get("id")))
                        if not waiting and not established:
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
