"""`hemisphere serve` as a new user runs it (embedded PostgreSQL and local AWS endpoint), driven
by a real third-party GraphQL client (gql) with AppSync's API key and IAM authentication."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.credentials import Credentials
from gql import Client, GraphQLRequest, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.appsync_auth import (
    AppSyncApiKeyAuthentication,
    AppSyncIAMAuthentication,
    AppSyncJWTAuthentication,
)
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport
from gql.transport.exceptions import TransportQueryError

from hemisphere.localstack import free_port

pytestmark = pytest.mark.e2e

# What the user's shell might hold that would point serve away from its embedded defaults.
_BACKEND_VARIABLES = (
    "DATABASE_URL",
    "AWS_ENDPOINT_URL",
    "REDIS_URL",
    "HEMISPHERE_API_KEYS",
    "HEMISPHERE_IAM_CREDENTIALS",
    "HEMISPHERE_TOKEN_SECRET",
)


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int
    output: list[str]
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def api_key(self) -> str:
        return (self.data_dir / "api-key").read_text().strip()

    @property
    def iam(self) -> tuple[str, str]:
        akid, secret = (self.data_dir / "iam-credentials").read_text().strip().split(":", 1)
        return akid, secret

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)


def start_serve(
    data_dir: Path, timeout: float = 120, extra_env: dict[str, str] | None = None
) -> Served:
    """`serve` on embedded defaults (whatever backends the shell points at are dropped), with
    `extra_env` added."""
    env = {k: v for k, v in os.environ.items() if k not in _BACKEND_VARIABLES}
    env |= extra_env or {}
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hemisphere.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if "Press Ctrl-C to stop." in lines.get(timeout=1):
                return Served(process, port, output, data_dir)
        except queue.Empty:
            if process.poll() is not None:
                break
    process.kill()
    raise AssertionError("hemisphere serve did not start:\n" + "".join(output))


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    # Not under pytest's base temp: as root the embedded PostgreSQL runs as another user, and
    # every concurrent pytest run resets /tmp/pytest-of-root to 0700, locking it out.
    with tempfile.TemporaryDirectory(prefix="hemisphere-serve-") as tmp:
        server = start_serve(Path(tmp) / "data")
        try:
            yield server
        finally:
            if server.process.poll() is None:
                server.stop()


def api_key_client(served: Served) -> Client:
    auth = AppSyncApiKeyAuthentication(host=f"127.0.0.1:{served.port}", api_key=served.api_key)
    return Client(transport=AIOHTTPTransport(url=served.url, auth=auth))


CLI = (sys.executable, "-m", "hemisphere.cli")


def customer_token(served: Served, customer: str, *extra: str) -> str:
    """`hemisphere token CUSTOMER`, as the README tells a new user to get one."""
    return subprocess.run(
        [*CLI, "token", customer, *extra, "--data-dir", str(served.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def token_client(served: Served, customer: str) -> Client:
    auth = AppSyncJWTAuthentication(
        host=f"127.0.0.1:{served.port}", jwt=customer_token(served, customer)
    )
    return Client(transport=AIOHTTPTransport(url=served.url, auth=auth))


def iam_client(served: Served) -> Client:
    akid, secret = served.iam
    auth = AppSyncIAMAuthentication(
        host=f"127.0.0.1:{served.port}",
        credentials=Credentials(akid, secret),
        region_name="us-east-1",
    )
    return Client(transport=AIOHTTPTransport(url=served.url, auth=auth))


async def test_a_subscriber_from_the_first_second_gets_only_real_changes(served: Served) -> None:
    """Subscribed as soon as serve printed its banner (this test comes first in the module on
    purpose), nothing arrives for the demo data the start rebuilt into the projections; the
    next real change arrives, once."""
    transport = AppSyncWebsocketsTransport(
        url=f"ws://127.0.0.1:{served.port}/graphql/realtime",
        auth=AppSyncApiKeyAuthentication(host=f"127.0.0.1:{served.port}", api_key=served.api_key),
    )
    received: list[dict[str, Any]] = []
    arrived = asyncio.Event()
    async with Client(transport=transport) as session:

        async def collect() -> None:
            subscription = gql('subscription { onProductChanged(category: "garden") { id } }')
            async for event in session.subscribe(subscription):
                received.append(event["onProductChanged"])
                arrived.set()

        collecting = asyncio.create_task(collect())
        try:
            await asyncio.sleep(3)  # the rebuild's 30 garden products would arrive by now
            assert received == []
            async with iam_client(served) as writer:
                written = await writer.execute(
                    gql("""mutation { upsertProduct(input: {sku: "FIRST-SECOND", name: "Rake",
                      category: "garden", price: {amount: 900, currency: "EUR"}, available: 3})
                      { id } }""")
                )
            await asyncio.wait_for(arrived.wait(), 15)
            await asyncio.sleep(0.5)
        finally:
            collecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collecting
    assert received == [{"id": written["upsertProduct"]["id"]}]


def test_serve_prints_the_graphiql_url_and_the_key(served: Served) -> None:
    text = "".join(served.output)
    assert f"GraphiQL:   http://127.0.0.1:{served.port}/graphql" in text
    assert served.api_key.startswith("da2-") and served.api_key in text


README_SHOP = """{
    product(id: "p-0001") { id name price { amount currency } }
    products(category: "books", limit: 5) { items { id category } nextToken }
    customer(id: "c-0001") { id email }
    ordersByCustomer(customerId: "c-0001") { items { id status } }
    region { region primaryRegion epoch }
}"""


async def test_readme_queries_with_a_token_from_hemisphere_token(served: Served) -> None:
    async with token_client(served, "c-0001") as session:
        result = await session.execute(gql(README_SHOP))
    assert result["product"]["id"] == "p-0001"
    assert len(result["products"]["items"]) == 5 and result["products"]["nextToken"]
    assert result["customer"]["id"] == "c-0001"
    assert len(result["ordersByCustomer"]["items"]) >= 3
    assert result["region"]["epoch"] >= 1


async def test_the_api_key_reads_the_catalog_but_no_customer(served: Served) -> None:
    async with api_key_client(served) as session:
        catalog = await session.execute(gql('{ product(id: "p-0001") { id } region { epoch } }'))
        assert catalog["product"] == {"id": "p-0001"}
        with pytest.raises(TransportQueryError) as refused:
            await session.execute(gql('{ customer(id: "c-0001") { email } }'))
    assert refused.value.data == {"customer": None}
    assert refused.value.errors is not None
    assert refused.value.errors[0]["errorType"] == "Unauthorized"


async def test_a_cognito_admin_token_writes_the_catalog(served: Served) -> None:
    """`hemisphere token --groups admins`: a user pool token of the admins group (the
    contract's upsertProduct: IAM or Cognito admins)."""
    auth = AppSyncJWTAuthentication(
        host=f"127.0.0.1:{served.port}",
        jwt=customer_token(served, "c-0002", "--groups", "admins"),
    )
    async with Client(transport=AIOHTTPTransport(url=served.url, auth=auth)) as session:
        written = await session.execute(
            gql("""mutation { upsertProduct(input: {sku: "ADMIN-1", name: "Admin Lamp",
              category: "garden", price: {amount: 100, currency: "EUR"}, available: 1})
              { id name } }""")
        )
    assert written["upsertProduct"]["name"] == "Admin Lamp"


async def test_iam_client_writes_and_the_projection_follows(served: Served) -> None:
    async with iam_client(served) as session:
        written = await session.execute(
            gql("""mutation {
            upsertProduct(input: {sku: "E2E-LAMP", name: "E2E Lamp", category: "garden",
              price: {amount: 4200, currency: "EUR"}, available: 7}) { id version } }""")
        )
    product_id = written["upsertProduct"]["id"]
    deadline = time.monotonic() + 5
    async with api_key_client(served) as session:
        while True:
            seen = await session.execute(
                GraphQLRequest(
                    "query($id: ID!) { product(id: $id) { name } }",
                    variable_values={"id": product_id},
                )
            )
            if seen["product"] is not None:
                break
            assert time.monotonic() < deadline
    assert seen["product"] == {"name": "E2E Lamp"}


async def test_a_cached_product_follows_its_change(served: Served) -> None:
    """The read cache (projections.read_cache) keeps p-0007's answer after the first read;
    the change stream's publication of the upsert must replace it, not a timeout."""
    read = GraphQLRequest('{ product(id: "p-0007") { name available } }')
    async with api_key_client(served) as session:
        before = (await session.execute(read))["product"]
        assert (await session.execute(read))["product"] == before
        async with iam_client(served) as writer:
            await writer.execute(
                gql("""mutation { upsertProduct(input: {id: "p-0007", sku: "SKU-0007",
                  name: "Renamed by the cache test", category: "garden",
                  price: {amount: 1234, currency: "EUR"}, available: 2}) { id } }""")
            )
        deadline = time.monotonic() + 10
        while (seen := (await session.execute(read))["product"]) == before:
            assert time.monotonic() < deadline, "the cached answer outlived the change"
            await asyncio.sleep(0.05)
    assert seen == {"name": "Renamed by the cache test", "available": 2}


async def test_api_key_client_may_not_call_iam_fields(served: Served) -> None:
    with pytest.raises(TransportQueryError) as refused:
        async with api_key_client(served) as session:
            await session.execute(
                gql(
                    'mutation { upsertProduct(input: {sku: "X", name: "X", category: "x",'
                    ' price: {amount: 1, currency: "USD"}, available: 1}) { id } }'
                )
            )
    assert refused.value.data == {"upsertProduct": None}
    assert refused.value.errors is not None
    assert refused.value.errors[0]["errorType"] == "Unauthorized"


async def test_wrong_key_is_refused(served: Served) -> None:
    auth = AppSyncApiKeyAuthentication(
        host=f"127.0.0.1:{served.port}", api_key="da2-nottherightkeynottheright"
    )
    # gql reads the JSON errors of the 401 response as the query's result.
    with pytest.raises(TransportQueryError) as refused:
        async with Client(transport=AIOHTTPTransport(url=served.url, auth=auth)) as session:
            await session.execute(gql("{ region { region } }"))
    assert refused.value.errors is not None
    assert refused.value.errors[0]["errorType"] == "UnauthorizedException"
    async with httpx.AsyncClient(timeout=10) as http:
        status = await http.post(served.url, json={"query": "{ region { region } }"})
    assert status.status_code == 401


def test_graphiql_opens_in_a_browser(served: Served) -> None:
    page = httpx.get(served.url, headers={"accept": "text/html"}, timeout=10)
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    assert served.api_key in page.text


def _moto_port(served: Served) -> int | None:
    stack = served.data_dir / "stack.json"
    if not stack.exists():
        return None
    import json

    url: Any = json.loads(stack.read_text()).get("AWS_ENDPOINT_URL")
    return int(url.rsplit(":", 1)[1]) if url else None


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_ctrl_c_stops_everything_and_the_next_start_keeps_the_data(served: Served) -> None:
    moto_port = _moto_port(served)
    assert moto_port is not None and _listening(moto_port)
    with httpx.Client(timeout=10) as http:
        body = {"query": '{ product(id: "p-0001") { name } }'}
        before = http.post(served.url, json=body, headers={"x-api-key": served.api_key}).json()
    # A sync call: gql runs the async transport in its own loop.
    iam_client(served).execute(
        gql(
            'mutation { upsertProduct(input: {sku: "KEEP-1", name: "Kept", category: "garden",'
            ' price: {amount: 100, currency: "USD"}, available: 1}) { id } }'
        )
    )
    assert served.stop() == 0
    assert not _listening(moto_port) and not _listening(served.port)

    again = start_serve(served.data_dir)
    try:
        assert again.api_key == served.api_key
        with httpx.Client(timeout=10) as http:
            after = http.post(again.url, json=body, headers={"x-api-key": again.api_key}).json()
            lamp = http.post(
                again.url,
                headers={"x-api-key": again.api_key},
                json={"query": '{ products(category: "garden", limit: 100) { items { sku } } }'},
            ).json()
        assert after == before
        assert "KEEP-1" in {p["sku"] for p in lamp["data"]["products"]["items"]}
    finally:
        assert again.stop() == 0
