"""Two API processes of one region on one Redis, PostgreSQL and local AWS endpoint.

A product written through one instance (upsertProduct, signed with SigV4 by gql's AppSync IAM
auth) goes PostgreSQL → outbox → projection → table stream → the lease holder's publisher →
publishProduct → Redis → both instances' subscribers. Killing the instance that holds the
publisher's lease keeps changes flowing once the lease has moved.

Subscribers are gql's AppSync real-time clients (AppSyncWebsocketsTransport, API key).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.credentials import Credentials
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.appsync_auth import AppSyncApiKeyAuthentication, AppSyncIAMAuthentication
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport
from gql.transport.exceptions import TransportError

from adapters.appsync import AppSyncPublicationSink
from adapters.aws import StaticCredentials
from adapters.dynamodb.client import create_client
from adapters.dynamodb.leases import lease_key
from hemisphere.localstack import free_port
from schema.publish_documents import publication_documents
from subscriptions.stream_publisher import lease_name
from tests.support.builders import product

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "da2-fanoutfanoutfanoutfanout"
AKID, SECRET = "AKIAFANOUTE2E", "fanout-e2e-secret"
WARM_UP = product("p-warm", category="fanout")
LOCAL_AWS = StaticCredentials("hemisphere-local", "hemisphere-local")
LEASE, RENEW = 5.0, 1.5  # LeaseKeeper's defaults, which bootstrap uses


@dataclass
class Instance:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_instance(env: dict[str, str], log_dir: Path) -> Instance:
    port = free_port()
    log = log_dir / f"instance-{port}.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.fanout_runner",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Instance(process, port, log)


def wait_healthy(instance: Instance, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if instance.process.poll() is not None:
            raise AssertionError(f"instance exited:\n{instance.log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{instance.base}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"instance not healthy in {within}s:\n{instance.log.read_text()}")


@pytest.fixture
def instances(
    pg_dsn: str, aws_endpoint: str, redis_url: str, table_name: str, tmp_path: Path
) -> Iterator[list[Instance]]:
    env = {
        **os.environ,
        "DATABASE_URL": pg_dsn,
        "AWS_ENDPOINT_URL": aws_endpoint,
        "REDIS_URL": redis_url,
        "AWS_ACCESS_KEY_ID": LOCAL_AWS.access_key_id,
        "AWS_SECRET_ACCESS_KEY": LOCAL_AWS.secret_access_key,
        "HEMISPHERE_REGION": "us-east-1",
        "HEMISPHERE_TABLE": table_name,
        "HEMISPHERE_API_KEYS": API_KEY,
        "HEMISPHERE_IAM_CREDENTIALS": f"{AKID}:{SECRET}",
        "HEMISPHERE_TOKEN_SECRET": "fanout-e2e-token-secret",
        # The saga workers start with the relay; no checkout here ever calls the provider.
        "HEMISPHERE_PAYMENTS_URL": "http://127.0.0.1:9",
    }
    started = [start_instance(env, tmp_path) for _ in range(2)]
    try:
        for instance in started:
            wait_healthy(instance)
        yield started
    finally:
        for instance in started:
            instance.stop()


@dataclass
class Subscriber:
    """gql's AppSync real-time client on one instance: onProductChanged(category: "fanout")."""

    instance: Instance
    received: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        auth = AppSyncApiKeyAuthentication(host=f"127.0.0.1:{self.instance.port}", api_key=API_KEY)
        transport = AppSyncWebsocketsTransport(
            url=f"ws://127.0.0.1:{self.instance.port}/graphql/realtime", auth=auth
        )
        request = GraphQLRequest(
            """subscription { onProductChanged(category: "fanout") {
            id name category price { amount currency } version } }"""
        )
        with contextlib.suppress(TransportError, OSError):  # the instance may be killed
            async with Client(transport=transport, fetch_schema_from_transport=False) as session:
                async for result in session.subscribe(request):
                    self.received.append(result["onProductChanged"])
                    self.arrived.set()

    def ids(self) -> list[str]:
        return [m["id"] for m in self.received]

    async def wait_for_ids(self, ids: set[str], within: float) -> float:
        started = time.monotonic()
        async with asyncio.timeout(within):
            while not ids <= set(self.ids()):
                self.arrived.clear()
                await self.arrived.wait()
        return time.monotonic() - started


@contextlib.asynccontextmanager
async def subscribed(*instances: Instance) -> AsyncIterator[list[Subscriber]]:
    """A subscriber on each instance, each known to receive (a publication reached it)."""
    subscribers = [Subscriber(instance) for instance in instances]
    tasks = [asyncio.create_task(s.run()) for s in subscribers]
    sink = AppSyncPublicationSink(
        f"{instances[0].base}/graphql",
        Credentials(AKID, SECRET),
        "us-east-1",
        documents=publication_documents(),
    )
    try:
        # The server acknowledges a subscription before its broker has confirmed it:
        # publish (directly, publishProduct) until every subscriber has heard something.
        async with asyncio.timeout(15):
            for attempt in itertools.count():
                warm = replace(WARM_UP, id=f"p-warm-{attempt}")
                await sink.publish(warm)
                await asyncio.sleep(0.2)
                if all(warm.id in s.ids() for s in subscribers):
                    break
        yield subscribers
    finally:
        await sink.aclose()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def upsert_product(instance: Instance, name: str) -> str:
    auth = AppSyncIAMAuthentication(
        host=f"127.0.0.1:{instance.port}",
        credentials=Credentials(AKID, SECRET),
        region_name="us-east-1",
    )
    transport = AIOHTTPTransport(url=f"{instance.base}/graphql", auth=auth)
    async with Client(transport=transport) as session:
        result = await session.execute(
            GraphQLRequest(
                """mutation($name: String!) { upsertProduct(input: {sku: $name, name: $name,
                category: "fanout", price: {amount: 1000, currency: "EUR"}, available: 3})
                { id } }""",
                variable_values={"name": name},
            )
        )
    return str(result["upsertProduct"]["id"])


async def leader_of(
    instances: list[Instance], aws_endpoint: str, table_name: str, within: float = 15.0
) -> Instance:
    """The instance whose process holds the publisher's lease (its holder name is
    host:pid:random), read from the lease item in the table."""
    key = {name: {"S": value} for name, value in lease_key(lease_name("us-east-1")).items()}
    deadline = time.monotonic() + within
    async with create_client(aws_endpoint, "us-east-1", LOCAL_AWS) as client:
        while time.monotonic() < deadline:
            item = (await client.get_item(TableName=table_name, Key=key, ConsistentRead=True)).get(
                "Item"
            )
            if item is not None and int(item["expiresAt"]["N"]) > time.time() * 1000:
                pid = int(item["holder"]["S"].split(":")[1])
                for instance in instances:
                    if instance.process.pid == pid:
                        return instance
            await asyncio.sleep(0.2)
    raise AssertionError("none of these instances holds the publisher's lease")


async def test_a_change_made_through_one_instance_reaches_subscribers_on_both(
    instances: list[Instance],
) -> None:
    a, b = instances
    async with subscribed(a, b) as (on_a, on_b):
        product_id = await upsert_product(a, "Fanout Lamp")
        took = await on_b.wait_for_ids({product_id}, within=15)
        await on_a.wait_for_ids({product_id}, within=5)
    for subscriber in (on_a, on_b):
        (change,) = [m for m in subscriber.received if m["id"] == product_id]
        assert change["name"] == "Fanout Lamp"
        assert change["price"] == {"amount": 1000, "currency": "EUR"}
    print(f"\nupsertProduct → subscriber on the other instance: {took * 1000:.0f} ms")


async def test_changes_keep_flowing_after_the_publishers_instance_is_killed(
    instances: list[Instance], aws_endpoint: str, table_name: str
) -> None:
    leader = await leader_of(instances, aws_endpoint, table_name)
    (survivor,) = [i for i in instances if i is not leader]
    async with subscribed(survivor) as (subscriber,):
        before = [await upsert_product(survivor, f"Before {n}") for n in range(3)]
        leader.kill()  # SIGKILL: no checkpoint, no lease release
        killed_at = time.monotonic()
        after = [await upsert_product(survivor, f"After {n}") for n in range(3)]
        await subscriber.wait_for_ids(set(before + after), within=LEASE + RENEW + 15)
        flowing_again = time.monotonic() - killed_at
        assert await leader_of([survivor], aws_endpoint, table_name) is survivor
    # Every change arrived (some perhaps twice: the dead holder may not have checkpointed them).
    assert set(before + after) <= set(subscriber.ids())
    print(f"\nchanges flowing again {flowing_again:.1f} s after the lease holder was killed")
