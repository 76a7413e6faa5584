"""A subscriber acknowledged by `start_ack` receives the very next change, also when the
broker is Redis (where a channel is heard only once Redis confirms the SUBSCRIBE), and a
broker that does not answer refuses the subscription with a retryable error instead of
acknowledging one that would never deliver."""

from __future__ import annotations

import uuid

import pytest

from adapters.redis import RedisBroker
from domain.codec import order_to_plain
from hemisphere.http.realtime_options import RealtimeOptions
from subscriptions import delivery
from tests.functional.test_realtime_appsync import connect, serving, start
from tests.support.fakes import make_customer, make_order, make_products


async def test_the_change_right_after_start_ack_is_delivered(redis_url: str) -> None:
    # The race is on the first subscriber of a channel in an instance: a fresh broker each
    # time, and the change published by another instance the moment the ack arrives.
    order = make_order(1, make_customer(1), make_products(1)[0])
    for attempt in range(8):
        prefix = f"hemisphere-test-{uuid.uuid4().hex[:8]}:"
        broker, other_instance = (
            RedisBroker(redis_url, prefix=prefix),
            RedisBroker(redis_url, prefix=prefix),
        )
        try:
            await other_instance.publish("warm-up", {})  # its connection is open: no delay
            async with serving(RealtimeOptions(), broker) as api, api.socket() as ws:  # type: ignore[arg-type]
                await connect(ws)
                await ws.send_json(start("1", {"c": order.customer_id}))
                assert await ws.receive_json() == {"type": "start_ack", "id": "1"}
                await other_instance.publish(
                    "publishOrder", {**order_to_plain(order), "version": attempt + 1}
                )
                reply = await ws.receive_json()
                assert reply["type"] == "data", reply
                assert reply["payload"]["data"]["onOrderChanged"]["id"] == order.id
        finally:
            await broker.aclose()
            await other_instance.aclose()


async def test_a_broker_that_does_not_answer_refuses_the_subscription(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(delivery, "BROKER_LISTENING_TIMEOUT_SECONDS", 0.5)
    # Nothing listens on port 1: the SUBSCRIBE is never confirmed.
    broker = RedisBroker("redis://127.0.0.1:1/0", prefix="hemisphere-test-down:")
    try:
        async with serving(RealtimeOptions(), broker) as api, api.socket() as ws:  # type: ignore[arg-type]
            await connect(ws)
            await ws.send_json(start("1", {"c": "c-1"}))
            reply = await ws.receive_json()
            assert reply["type"] == "error" and reply["id"] == "1", reply
            [error] = reply["payload"]["errors"]
            assert error["errorType"] == "ServiceUnavailable"
            assert api.broker.subscriber_count("publishOrder") == 0
    finally:
        await broker.aclose()
