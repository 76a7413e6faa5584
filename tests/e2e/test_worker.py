"""`hemisphere worker` deployed apart from the API: an API with HEMISPHERE_RUN_WORKERS=false
takes the checkout; the worker process runs the saga and the outbox relay."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from dataclasses import replace
from typing import Any

import pytest

from hemisphere.app import create_app
from hemisphere.bootstrap import start_runtime
from hemisphere.runtime import StartupOptions
from hemisphere.settings import Settings
from tests.support.app import SETTINGS, client_for, token_headers

pytestmark = pytest.mark.e2e


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEMISPHERE_")}
    assert settings.database_url and settings.aws_endpoint_url and settings.payments_url
    return env | {
        "DATABASE_URL": settings.database_url,
        "AWS_ENDPOINT_URL": settings.aws_endpoint_url,
        "AWS_ACCESS_KEY_ID": "hemisphere-local",
        "AWS_SECRET_ACCESS_KEY": "hemisphere-local",
        "HEMISPHERE_TABLE": settings.table_name,
        "HEMISPHERE_PAYMENTS_URL": settings.payments_url,
    }


async def test_a_separate_worker_runs_the_sagas(
    pg_dsn: str, aws_endpoint: str, table_name: str, payments_url: str
) -> None:
    settings = replace(
        SETTINGS,
        database_url=pg_dsn,
        aws_endpoint_url=aws_endpoint,
        aws_access_key_id="hemisphere-local",
        aws_secret_access_key="hemisphere-local",
        table_name=table_name,
        payments_url=payments_url,
        run_workers=False,
    )

    def factory(s: Settings) -> Any:
        return start_runtime(s, StartupOptions(seed_demo_data=True, rebuild_projections=True))

    async with client_for(create_app(settings, runtime_factory=factory)) as api:
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hemisphere.cli",
            "worker",
            env=worker_env(settings),
            stdout=asyncio.subprocess.DEVNULL,
        )
        try:
            body = {
                "query": "mutation($i: CheckoutInput!) { checkout(input: $i) { id status } }",
                "variables": {
                    "i": {
                        "customerId": "c-0004",
                        "lines": [{"productId": "p-0020", "quantity": 1}],
                        "paymentToken": "tok_visa",
                        "idempotencyKey": uuid.uuid4().hex,
                    }
                },
            }
            customer = token_headers("c-0004")  # contract v2: the customer's own token
            placed = (await api.post("/graphql", json=body, headers=customer)).json()
            order_id = placed["data"]["checkout"]["id"]
            deadline = time.monotonic() + 45
            while True:
                query = {"query": f'{{ order(id: "{order_id}") {{ status }} }}'}
                seen = await api.post("/graphql", json=query, headers=customer)
                order = seen.json()["data"]["order"]
                if order is not None and order["status"] == "CONFIRMED":
                    break
                assert worker.returncode is None, "the worker exited"
                assert time.monotonic() < deadline, order
                await asyncio.sleep(0.2)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(worker.wait(), timeout=30) == 0
