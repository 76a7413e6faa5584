"""`hemisphere publisher` alone (the API runs none): the table's changes reach the API's
WebSocket subscribers through it; it needs no PostgreSQL and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import time

import httpx
import pytest
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from hemisphere.localstack import free_port
from tests.support.app import sigv4_headers
from tests.support.roles import API_KEY, IAM, api_env, start_role

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def upsert(base: str, sku: str) -> None:
    body = json.dumps(
        {
            "query": f'mutation {{ upsertProduct(input: {{sku: "{sku}", name: "{sku}", '
            'category: "garden", price: {amount: 100, currency: "USD"}, available: 1}) { id } }'
        }
    ).encode()
    url = f"{base}/graphql"
    headers = sigv4_headers(url, body, akid=IAM[0], secret=IAM[1])
    answer = httpx.post(url, content=body, headers=headers, timeout=10).json()
    assert "errors" not in answer, answer


def test_a_publisher_alone_feeds_the_apis_subscribers(
    pg_dsn: str, aws_endpoint: str, table_name: str, payments_url: str
) -> None:
    api = start_role(
        ["api", "--host", "127.0.0.1"],
        api_env(
            pg_dsn,
            aws_endpoint,
            table_name,
            HEMISPHERE_SEED_DEMO_DATA="true",
            HEMISPHERE_REBUILD_PROJECTIONS="true",
            HEMISPHERE_PAYMENTS_URL=payments_url,
        ),
        port=free_port(),
    )
    publisher = None
    try:
        api.wait_ready()
        # No DATABASE_URL: the publisher must not need one.
        env = api_env("", aws_endpoint, table_name, HEMISPHERE_PUBLISH_URL=f"{api.base}/graphql")
        publisher = start_role(["publisher"], env)
        deadline = time.monotonic() + 60
        while "publishing (fencing token" not in publisher.text:
            assert publisher.process.poll() is None and time.monotonic() < deadline, publisher.text
            time.sleep(0.2)

        with connect(
            f"ws://127.0.0.1:{api.port}/graphql",
            subprotocols=[Subprotocol("graphql-transport-ws")],
        ) as ws:
            ws.send(json.dumps({"type": "connection_init", "payload": {"x-api-key": API_KEY}}))
            assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
            query = 'subscription { onProductChanged(category: "garden") { sku } }'
            ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
            time.sleep(1)  # graphql-transport-ws acknowledges no subscription
            upsert(api.base, "PUB-ALONE")
            deadline = time.monotonic() + 30
            while True:
                message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                if message["type"] == "next":
                    break
            assert message["payload"]["data"] == {"onProductChanged": {"sku": "PUB-ALONE"}}
        assert publisher.stop(signal.SIGTERM) == 0
        assert "stream publisher stopped" in publisher.text
        assert api.stop(signal.SIGTERM) == 0
    finally:
        for role in (api, publisher):
            if role is not None and role.process.poll() is None:
                role.process.kill()
