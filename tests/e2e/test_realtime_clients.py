"""Real third-party subscription clients against a running Hemisphere (uvicorn, fake read side,
in-process broker): gql's AppSync transport (API key and IAM) and its graphql-transport-ws
transport in Python; the graphql-ws client and Amplify JS v6's `generateClient` in Node.

Changes are published as the region's publisher does: IAM-signed publishOrder mutations.
graphql-transport-ws and gql acknowledge no subscription to their caller, so a test first
publishes sentinels until each subscriber has one ("warm-up"), then the changes it checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import itertools
import json
import os
import queue
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from botocore.credentials import Credentials
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from gql import Client, GraphQLRequest
from gql.transport.appsync_auth import (
    AppSyncApiKeyAuthentication,
    AppSyncAuthentication,
    AppSyncIAMAuthentication,
    AppSyncJWTAuthentication,
)
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport
from gql.transport.exceptions import TransportConnectionFailed, TransportServerError
from gql.transport.websockets import WebsocketsTransport

from hemisphere.app import create_app
from hemisphere.http.realtime_options import RealtimeOptions
from hemisphere.http.ws_protocol import LeanWebSocketsProtocol
from hemisphere.localstack import free_port
from hemisphere.settings import Settings
from subscriptions.inprocess import InProcessBroker
from tests.support.app import (
    API_KEY,
    IAM_AKID,
    IAM_SECRET,
    ISSUER,
    SETTINGS,
    fake_runtime,
    runtime_factory,
    sigv4_headers,
)
from tests.support.fakes import InMemoryReader
from tests.support.lambda_authorizer import running_authorizer

pytestmark = pytest.mark.e2e

NODE_SOURCES = Path(__file__).parent / "node"
TS = "2026-01-01T00:00:00.000Z"
SUBSCRIPTION = """subscription OnOrder($c: ID) {
  onOrderChanged(customerId: $c) { id customerId status total { amount currency } version }
}"""
PUBLISH = """mutation PublishOrder($input: OrderPublication!) { publishOrder(input: $input) {
  id customerId customerName status lines { productId productName quantity
  unitPrice { amount currency } } total { amount currency } failureReason
  history { status at reason } placedIn createdAt updatedAt version } }"""
BIG = {
    "filterGroup": [{"filters": [{"fieldName": "total.amount", "operator": "ge", "value": 10_000}]}]
}
PUBLISH_PRODUCT = """mutation P($input: ProductPublication!) { publishProduct(input: $input) {
  id sku name description category price { amount currency } available updatedAt version } }"""
ON_PRODUCT = "subscription OnProduct($id: ID) { onProductChanged(id: $id) { id name version } }"
VERSIONS = itertools.count(1)  # every change is newer than the last: the broker drops older ones


# --- a running server -----------------------------------------------------------------------


@dataclass
class Running:
    port: int
    broker: InProcessBroker
    cert: Path | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.cert else 'http'}://{self.host}/graphql"

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1)

    async def publish(self, customer: str, amount: int = 2500, order: str = "") -> None:
        order_input = {
            "id": order or f"o-{customer}-{amount}",
            "customerId": customer,
            "customerName": f"Customer {customer}",
            "status": "CONFIRMED",
            "lines": [],
            "total": {"amount": amount, "currency": "USD"},
            "failureReason": None,
            "history": [],
            "placedIn": "us-east-1",
            "createdAt": TS,
            "updatedAt": TS,
            "version": next(VERSIONS),
        }
        body = json.dumps({"query": PUBLISH, "variables": {"input": order_input}}).encode()
        verify = ssl.create_default_context(cafile=self.cert) if self.cert else True
        async with httpx.AsyncClient(verify=verify) as http:
            response = await http.post(
                self.url, content=body, headers=sigv4_headers(self.url, body)
            )
        assert response.status_code == 200 and "errors" not in response.json(), response.text

    def subscriber_count(self) -> int:
        return self.broker.subscriber_count("publishOrder")

    async def publish_product(self, id: str = "p-0001") -> None:
        """A change of a catalog product (readable by every mode: the API key's and tokens')."""
        product = {
            "id": id,
            "sku": "SKU-1",
            "name": "Lamp",
            "description": None,
            "category": "lighting",
            "price": {"amount": 1999, "currency": "USD"},
            "available": 3,
            "updatedAt": TS,
            "version": next(VERSIONS),
        }
        body = json.dumps({"query": PUBLISH_PRODUCT, "variables": {"input": product}}).encode()
        verify = ssl.create_default_context(cafile=self.cert) if self.cert else True
        async with httpx.AsyncClient(verify=verify) as http:
            response = await http.post(
                self.url, content=body, headers=sigv4_headers(self.url, body)
            )
        assert response.status_code == 200 and "errors" not in response.json(), response.text


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1: Amplify only speaks wss://, so its server needs TLS."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert, key_file = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key_file


@contextlib.contextmanager
def running_server(tls_dir: Path | None = None, settings: Settings = SETTINGS) -> Iterator[Running]:
    broker = InProcessBroker()
    app = create_app(
        settings,
        runtime_factory=runtime_factory(fake_runtime(InMemoryReader(), broker)),
        realtime=RealtimeOptions(keepalive_seconds=0.2),
    )
    port = free_port()
    tls: dict[str, Any] = {}
    cert = None
    if tls_dir is not None:
        cert, key = self_signed_certificate(tls_dir)
        tls = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    # The WebSocket protocol and settings `hemisphere serve` runs with (roles.serving).
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ws=LeanWebSocketsProtocol,
            ws_per_message_deflate=False,
            **tls,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Running(port, broker, cert)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def server() -> Iterator[Running]:
    with running_server() as running:
        yield running


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running_server(tmp_path_factory.mktemp("tls")) as running:
        yield running


# --- Python clients (gql) -------------------------------------------------------------------


@dataclass
class Subscriber:
    """A subscription running in a task, collecting what it receives."""

    received: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def ids(self) -> list[str]:
        return [r["onOrderChanged"]["id"] for r in self.received]


async def gql_subscriber(
    transport_factory: Callable[[], Any], request: GraphQLRequest
) -> Subscriber:
    subscriber = Subscriber()

    async def run() -> None:
        async with Client(transport=transport_factory()) as session:
            async for result in session.subscribe(request):
                subscriber.received.append(result)

    subscriber.task = asyncio.create_task(run())
    return subscriber


async def stop(*subscribers: Subscriber) -> None:
    for subscriber in subscribers:
        assert subscriber.task is not None
        if subscriber.task.done():
            subscriber.task.result()  # surfaces the client's error
        subscriber.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await subscriber.task


async def warm_up(server: Running, sentinels: dict[str, Subscriber], amount: int = 1) -> None:
    """Publish a sentinel for each subscriber (keyed by the customer only it follows) until
    each has received one, then forget them."""
    for _ in range(200):
        waiting = {c: s for c, s in sentinels.items() if not s.received}
        if not waiting:
            break
        for customer in waiting:
            await server.publish(customer, amount, order=f"sentinel-{customer}")
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("subscribers never received their sentinels")
    await asyncio.sleep(0.2)  # let stragglers arrive before forgetting them
    for subscriber in sentinels.values():
        subscriber.received.clear()


async def until(condition: Callable[[], bool], seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never held")


def appsync(server: Running, auth: AppSyncAuthentication, **kwargs: Any) -> Callable[[], Any]:
    return lambda: AppSyncWebsocketsTransport(url=server.ws_url, auth=auth, **kwargs)


def api_key(server: Running, key: str = API_KEY) -> AppSyncApiKeyAuthentication:
    return AppSyncApiKeyAuthentication(host=server.host, api_key=key)


def token_of(server: Running, customer_id: str) -> AppSyncJWTAuthentication:
    """A token caller (OIDC) speaking for `customer_id`: contract v2's customer data."""
    return AppSyncJWTAuthentication(host=server.host, jwt=ISSUER.token(customer_id))


def iam(server: Running) -> AppSyncIAMAuthentication:
    return AppSyncIAMAuthentication(
        host=server.host, region_name="us-east-1", credentials=Credentials(IAM_AKID, IAM_SECRET)
    )


def request(customer: str | None, extensions: dict[str, Any] | None = None) -> GraphQLRequest:
    return GraphQLRequest(SUBSCRIPTION, variable_values={"c": customer}, extensions=extensions)


async def test_gql_appsync_tokens_arguments_and_enhanced_filter(server: Running) -> None:
    mine = await gql_subscriber(appsync(server, token_of(server, "c-1")), request("c-1"))
    decoy = await gql_subscriber(appsync(server, token_of(server, "c-2")), request("c-2"))
    # gql puts a GraphQLRequest's extensions into the `data` of AppSync's start message. A
    # service (IAM) may listen to every customer's orders: here the big ones.
    big = await gql_subscriber(appsync(server, iam(server)), request(None, {"filter": BIG}))
    try:
        await warm_up(server, {"c-1": mine, "c-2": decoy})
        await warm_up(server, {"c-3": big}, amount=99_999)
        await server.publish("c-1", 2500)  # mine
        await server.publish("c-1", 50_000)  # mine and big
        await server.publish("c-4", 20_000)  # big
        await until(lambda: len(mine.received) == 2 and len(big.received) == 2)
        await asyncio.sleep(0.2)
        assert mine.ids() == ["o-c-1-2500", "o-c-1-50000"]
        assert big.ids() == ["o-c-1-50000", "o-c-4-20000"]
        assert decoy.received == []
        assert mine.received[0] == {
            "onOrderChanged": {
                "id": "o-c-1-2500",
                "customerId": "c-1",
                "status": "CONFIRMED",
                "total": {"amount": 2500, "currency": "USD"},
                "version": mine.received[0]["onOrderChanged"]["version"],
            }
        }
    finally:
        await stop(mine, decoy, big)


async def test_gql_appsync_iam(server: Running) -> None:
    subscriber = await gql_subscriber(appsync(server, iam(server)), request("c-iam"))
    try:
        await warm_up(server, {"c-iam": subscriber})
        await server.publish("c-iam", 777)
        await until(lambda: subscriber.ids() == ["o-c-iam-777"])
    finally:
        await stop(subscriber)


async def test_gql_appsync_refused_key_is_a_connection_error(server: Running) -> None:
    transport = AppSyncWebsocketsTransport(
        url=server.ws_url, auth=api_key(server, "da2-wrongwrongwrongwrongwrong")
    )
    with pytest.raises(TransportServerError, match="UnauthorizedException"):
        async with Client(transport=transport):
            pass


async def test_gql_appsync_keep_alives_and_stop(server: Running) -> None:
    before = server.subscriber_count()
    # gql closes the connection if no `ka` arrives within a second; the server sends 5 a second.
    transport = appsync(server, token_of(server, "c-ka"), keep_alive_timeout=1)
    subscriber = await gql_subscriber(transport, request("c-ka"))
    try:
        await warm_up(server, {"c-ka": subscriber})
        await asyncio.sleep(2.5)
        await server.publish("c-ka", 5)
        await until(lambda: subscriber.ids() == ["o-c-ka-5"])
        assert server.subscriber_count() == before + 1
    finally:
        await stop(subscriber)
    # Leaving the subscription sends `stop`; the server forgets the subscriber.
    await until(lambda: server.subscriber_count() == before)


def transport_ws(server: Running, payload: dict[str, str]) -> Callable[[], Any]:
    return lambda: WebsocketsTransport(
        url=server.ws_url,
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload=payload,
    )


async def test_gql_graphql_transport_ws(server: Running) -> None:
    # Browsers cannot set WebSocket headers: the token travels in connection_init.
    mine = await gql_subscriber(
        transport_ws(server, {"Authorization": ISSUER.token("c-5")}), request("c-5")
    )
    big = await gql_subscriber(
        transport_ws(server, {"Authorization": ISSUER.token("c-7")}),
        request("c-7", {"filter": BIG}),
    )
    try:
        await warm_up(server, {"c-5": mine})
        await warm_up(server, {"c-7": big}, amount=99_999)
        await server.publish("c-5", 10)
        await server.publish("c-7", 10)
        await server.publish("c-7", 30_000)
        await until(lambda: len(mine.received) == 1 and len(big.received) == 1)
        await asyncio.sleep(0.2)
        assert mine.ids() == ["o-c-5-10"] and big.ids() == ["o-c-7-30000"]
    finally:
        await stop(mine, big)


async def test_gql_graphql_transport_ws_refused_key(server: Running) -> None:
    with pytest.raises(TransportConnectionFailed) as refused:
        async with Client(transport=transport_ws(server, "da2-wrongwrongwrongwrongwrong")()):
            pass
    assert "4403" in str(refused.value.__cause__)  # closed as graphql-transport-ws refuses


# --- Node clients (graphql-ws, Amplify JS v6) -------------------------------------------------

_NETWORK_FAILURES = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET", "network")


@pytest.fixture(scope="session")
def node_clients() -> Path:
    """The Node clients of tests/e2e/node, installed from its lock file into a cache outside
    the repository (reused while the lock file is unchanged)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node clients need node and npm on PATH")
    cache = Path(os.environ.get("TMPDIR") or tempfile.gettempdir()) / "hemisphere-node-clients"
    cache.mkdir(parents=True, exist_ok=True)
    lock = (NODE_SOURCES / "package-lock.json").read_bytes()
    stamp = cache / ".installed-lock"
    if not (stamp.exists() and stamp.read_bytes() == lock and (cache / "node_modules").is_dir()):
        for name in ("package.json", "package-lock.json"):
            shutil.copy(NODE_SOURCES / name, cache / name)
        try:
            installed = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=cache,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except subprocess.TimeoutExpired:
            pytest.skip("npm ci took over 10 minutes: the npm registry is unreachable or slow")
        if installed.returncode != 0:
            output = installed.stdout + installed.stderr
            reasons = [
                line for line in output.splitlines() if any(m in line for m in _NETWORK_FAILURES)
            ]
            if reasons:
                pytest.skip(f"the npm registry is unreachable: {reasons[0].strip()}")
            raise AssertionError(f"npm ci failed:\n{output}")
        stamp.write_bytes(lock)
    shutil.copy(NODE_SOURCES / "subscribe.mjs", cache / "subscribe.mjs")
    return cache


class NodeSubscriber:
    """tests/e2e/node/subscribe.mjs in a child process, its reports read by a thread."""

    def __init__(self, clients: Path, server: Running, **config: Any) -> None:
        config = {
            "url": server.url,
            "region": "us-east-1",
            "query": SUBSCRIPTION,
            "count": 1,
            "timeoutMs": 60_000,
            **config,
        }
        env = dict(os.environ)
        if server.cert is not None:
            env["NODE_EXTRA_CA_CERTS"] = str(server.cert)  # trust our self-signed certificate
        self.process = subprocess.Popen(
            ["node", str(clients / "subscribe.mjs"), json.dumps(config)],
            cwd=clients,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.reports: queue.Queue[dict[str, Any]] = queue.Queue()
        self.received: list[dict[str, Any]] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.reports.put(json.loads(line))

    async def next_report(self, seconds: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                report = self.reports.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.02)
                continue
            if report["event"] == "error":
                raise AssertionError(f"the Node client failed: {report['error']}")
            if report["event"] == "data":
                self.received.append(report["data"])
            return report
        stderr = self.process.stderr.read() if self.process.poll() is not None else ""
        raise AssertionError(f"no report from the Node client in {seconds} s {stderr}")

    async def until_ready(self) -> None:
        while (await self.next_report())["event"] != "ready":
            pass

    async def until_data(self) -> dict[str, Any]:
        while (report := await self.next_report())["event"] != "data":
            pass
        data: dict[str, Any] = report["data"]
        return data

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


@pytest.fixture
async def node(node_clients: Path) -> AsyncIterator[Callable[..., NodeSubscriber]]:
    started: list[NodeSubscriber] = []

    def start(server: Running, **config: Any) -> NodeSubscriber:
        subscriber = NodeSubscriber(node_clients, server, **config)
        started.append(subscriber)
        return subscriber

    yield start
    for subscriber in started:
        subscriber.close()


async def publish_until(
    server: Running, subscriber: NodeSubscriber, customer: str, amount: int
) -> dict[str, Any]:
    """Publish until the subscriber reports a change (graphql-ws acknowledges nothing)."""
    for _ in range(100):
        await server.publish(customer, amount)
        with contextlib.suppress(AssertionError):
            return await asyncio.wait_for(subscriber.until_data(), 0.3)
    raise AssertionError("the subscriber never received a change")


async def test_node_graphql_ws_client_with_an_enhanced_filter(
    server: Running, node: Callable[..., NodeSubscriber]
) -> None:
    subscriber = node(
        server,
        client="graphql-ws",
        auth={"oidc": ISSUER.token("c-node")},
        variables={"c": "c-node"},
        extensions={"filter": BIG},
        count=2,
    )
    await subscriber.until_ready()
    # Small changes pass the argument but not the filter: only the big one arrives.
    first = await publish_until(server, subscriber, "c-node", 10_000)
    assert first["onOrderChanged"]["customerId"] == "c-node"
    await server.publish("c-node", 5)
    await server.publish("c-other", 50_000)  # another customer's: never the token's
    await server.publish("c-node", 60_000)
    data = await subscriber.until_data()
    assert data["onOrderChanged"]["id"] == "o-c-node-60000"
    assert data["onOrderChanged"]["total"] == {"amount": 60_000, "currency": "USD"}


def amplify_auth(mode: str, customer: str) -> dict[str, Any]:
    if mode == "iam":
        return {"iam": {"accessKeyId": IAM_AKID, "secretAccessKey": IAM_SECRET}}
    return {mode: ISSUER.token(customer, user_pool=mode == "userPool")}


@pytest.mark.parametrize("mode", ["oidc", "userPool", "iam"])
async def test_amplify_generate_client(
    tls_server: Running, node: Callable[..., NodeSubscriber], mode: str
) -> None:
    """Amplify v6 connects to <endpoint>/realtime with its credentials in a `header-…`
    subprotocol, and waits for start_ack before it reports the subscription ready; a token
    listens to its own customer's orders (contract v2), IAM to any."""
    customer = f"c-amplify-{next(VERSIONS)}"
    decoy_customer = "c-amplify-decoy"
    mine = node(
        tls_server, client="amplify", auth=amplify_auth(mode, customer), variables={"c": customer}
    )
    decoy = node(
        tls_server,
        client="amplify",
        auth=amplify_auth(mode, decoy_customer),
        variables={"c": decoy_customer},
    )
    await mine.until_ready()
    await decoy.until_ready()
    await tls_server.publish(customer, 1234)
    data = await mine.until_data()
    assert data == {
        "onOrderChanged": {
            "id": f"o-{customer}-1234",
            "customerId": customer,
            "status": "CONFIRMED",
            "total": {"amount": 1234, "currency": "USD"},
            "version": data["onOrderChanged"]["version"],
        }
    }
    await tls_server.publish("c-amplify-decoy", 1)
    assert (await decoy.until_data())["onOrderChanged"]["id"] == "o-c-amplify-decoy-1"


# --- AWS_LAMBDA: a token judged by a Lambda authorizer (a real one, on a port) ------------------

LAMBDA_TOKEN = "custom-token-reader"


@pytest.fixture(scope="module")
def lambda_authorizer_url() -> Iterator[str]:
    answers = {LAMBDA_TOKEN: {"isAuthorized": True, "resolverContext": {"customerId": "c-9"}}}
    with running_authorizer(answers) as stand_in:
        yield stand_in.url


@pytest.fixture(scope="module")
def lambda_server(lambda_authorizer_url: str) -> Iterator[Running]:
    settings = replace(SETTINGS, lambda_authorizer_url=lambda_authorizer_url)
    with running_server(settings=settings) as running:
        yield running


@pytest.fixture(scope="module")
def lambda_tls_server(
    lambda_authorizer_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    settings = replace(SETTINGS, lambda_authorizer_url=lambda_authorizer_url)
    with running_server(tmp_path_factory.mktemp("tls"), settings) as running:
        yield running


async def publish_product_until(server: Running, subscriber: NodeSubscriber) -> dict[str, Any]:
    """Publish until the subscriber reports a change (graphql-ws acknowledges nothing)."""
    for _ in range(100):
        await server.publish_product()
        with contextlib.suppress(AssertionError):
            return await asyncio.wait_for(subscriber.until_data(), 0.3)
    raise AssertionError("the subscriber never received a change")


async def test_gql_appsync_lambda_token(lambda_server: Running) -> None:
    # gql's JWT authentication sends any token as Authorization: the Lambda authorizer's.
    auth = AppSyncJWTAuthentication(host=lambda_server.host, jwt=LAMBDA_TOKEN)
    subscriber = Subscriber()

    async def run() -> None:
        async with Client(transport=appsync(lambda_server, auth)()) as session:
            async for result in session.subscribe(GraphQLRequest(ON_PRODUCT)):
                subscriber.received.append(result)

    subscriber.task = asyncio.create_task(run())
    try:
        for _ in range(100):
            await lambda_server.publish_product()
            await asyncio.sleep(0.1)
            if subscriber.received:
                break
        assert subscriber.received[0]["onProductChanged"]["name"] == "Lamp"
    finally:
        await stop(subscriber)
    refused = AppSyncJWTAuthentication(host=lambda_server.host, jwt="not-a-known-token")
    with pytest.raises(TransportServerError, match="UnauthorizedException"):
        async with Client(transport=appsync(lambda_server, refused)()):
            pass


async def test_node_graphql_ws_client_with_a_lambda_token(
    lambda_server: Running, node: Callable[..., NodeSubscriber]
) -> None:
    subscriber = node(
        lambda_server, client="graphql-ws", auth={"lambda": LAMBDA_TOKEN}, query=ON_PRODUCT
    )
    await subscriber.until_ready()
    data = await publish_product_until(lambda_server, subscriber)
    assert data["onProductChanged"]["id"] == "p-0001"


async def test_amplify_lambda_auth_mode(
    lambda_tls_server: Running, node: Callable[..., NodeSubscriber]
) -> None:
    """Amplify v6 `authMode: 'lambda'` with `authToken`: the token in its connection header
    and in each start's authorization; it reports ready at start_ack."""
    subscriber = node(
        lambda_tls_server,
        client="amplify",
        auth={"lambda": LAMBDA_TOKEN},
        query=ON_PRODUCT,
        variables={"id": "p-0007"},
    )
    await subscriber.until_ready()
    await lambda_tls_server.publish_product("p-0007")
    data = await subscriber.until_data()
    assert data["onProductChanged"]["id"] == "p-0007"
    assert data["onProductChanged"]["name"] == "Lamp"
