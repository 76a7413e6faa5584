"""AppSync's real-time protocol, driven message by message against the ASGI app (no socket),
with changes published through the IAM-only publish mutations."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from botocore.credentials import Credentials
from gql.transport.appsync_auth import AppSyncIAMAuthentication
from starlette.applications import Starlette

from domain.codec import order_to_plain, product_to_plain
from hemisphere.app import create_app
from hemisphere.http.realtime_options import RealtimeOptions
from subscriptions.appsync_protocol import MAX_PAYLOAD_BYTES
from subscriptions.inprocess import InProcessBroker
from subscriptions.publication import change_message
from subscriptions.root import FilterRule
from subscriptions.shared_events import SHARED_EXECUTIONS
from tests.support.app import (
    API_KEY,
    IAM_AKID,
    IAM_SECRET,
    SETTINGS,
    client_for,
    fake_runtime,
    runtime_factory,
    sigv4_headers,
)
from tests.support.fakes import InMemoryReader, make_customer, make_order, make_products

HOST = "testserver"
TS = "2026-01-01T00:00:00.000Z"
SUBSCRIPTION = """subscription OnOrder($c: ID) {
  onOrderChanged(customerId: $c) { id customerId status total { amount currency } version }
}"""
PARTIAL = "subscription { onOrderChanged { id failureReason total { amount } } }"
EVERY_FIELD = """{ id customerId customerName status lines { productId productName quantity
  unitPrice { amount currency } } total { amount currency } failureReason
  history { status at reason } placedIn createdAt updatedAt version }"""


# --- a WebSocket client that speaks ASGI to the app, in this event loop ---------------------


class Closed(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"closed with {code}")
        self.code = code


class AsgiWebSocket:
    """A WebSocket client that calls the ASGI app directly: no socket, and every receive has
    a timeout, so a test can also show that nothing arrives. With `stalled`, the client never
    takes a message off the wire (a slow consumer)."""

    def __init__(
        self,
        app: Starlette,
        path: str,
        *,
        query: str = "",
        subprotocols: Iterable[str] = (),
        headers: Mapping[str, str] | None = None,
        stalled: bool = False,
    ) -> None:
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._stalled = stalled
        raw_headers = [(b"host", HOST.encode())] + [
            (k.lower().encode(), v.encode()) for k, v in (headers or {}).items()
        ]
        self._scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "http_version": "1.1",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": raw_headers,
            "subprotocols": list(subprotocols),
            "client": ("127.0.0.1", 50000),
            "server": (HOST, 80),
            "state": {},
        }
        self._app = app
        self._task: asyncio.Task[None] | None = None
        self.subprotocol: str | None = None
        self.close_code: int | None = None

    async def _receive(self) -> dict[str, Any]:
        return await self._inbox.get()

    async def _send(self, message: dict[str, Any]) -> None:
        if self._stalled and message["type"] == "websocket.send":
            await asyncio.Event().wait()  # never returns: the client does not read
        await self._outbox.put(message)

    async def __aenter__(self) -> AsgiWebSocket:
        self._task = asyncio.create_task(self._app(self._scope, self._receive, self._send))
        await self._inbox.put({"type": "websocket.connect"})
        reply = await asyncio.wait_for(self._outbox.get(), 2)
        assert reply["type"] == "websocket.accept", reply
        self.subprotocol = reply.get("subprotocol")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._inbox.put({"type": "websocket.disconnect", "code": 1000})
        assert self._task is not None
        await asyncio.wait_for(self._task, 5)

    async def send_json(self, message: Mapping[str, Any]) -> None:
        await self._inbox.put({"type": "websocket.receive", "text": json.dumps(message)})

    async def receive_json(self, within: float = 2.0, *, skip_ka: bool = True) -> dict[str, Any]:
        while True:
            message = await asyncio.wait_for(self._outbox.get(), within)
            if message["type"] == "websocket.close":
                self.close_code = message.get("code", 1000)
                raise Closed(self.close_code)
            decoded: dict[str, Any] = json.loads(message["text"])
            if not (skip_ka and decoded.get("type") == "ka"):
                return decoded

    async def nothing_within(self, seconds: float) -> None:
        try:
            message = await self.receive_json(seconds)
        except TimeoutError:
            return
        raise AssertionError(f"expected nothing, got {message}")


# --- AppSync's headers, as the clients build them ------------------------------------------


def b64(value: Mapping[str, Any]) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def api_key_auth(key: str = API_KEY) -> dict[str, str]:
    return {"host": HOST, "x-api-key": key}


def iam(secret: str = IAM_SECRET) -> AppSyncIAMAuthentication:
    # gql's own signer: the same bytes a real gql client would send.
    return AppSyncIAMAuthentication(
        host=HOST, region_name="us-east-1", credentials=Credentials(IAM_AKID, secret)
    )


def appsync_query(header: Mapping[str, Any]) -> str:
    return f"header={b64(header)}&payload=e30="


def start(
    id: str,
    variables: Mapping[str, Any] | None = None,
    *,
    query: str = SUBSCRIPTION,
    auth: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
    request_extensions: Mapping[str, Any] | None = None,
    signer: AppSyncIAMAuthentication | None = None,
) -> dict[str, Any]:
    request: dict[str, Any] = {"query": query, "variables": dict(variables or {})}
    if request_extensions is not None:
        request["extensions"] = dict(request_extensions)
    data = json.dumps(request)
    # By default as a service (IAM): it may listen to every customer's orders (contract v2),
    # which the protocol's tests need; the tests of who may listen to what give `auth`.
    authorization = (signer or iam()).get_headers(data) if auth is None else auth
    return {
        "id": id,
        "type": "start",
        "payload": {
            "data": data,
            "extensions": {"authorization": authorization, **(extensions or {})},
        },
    }


def one_filter(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {
        "filterGroup": [{"filters": [{"fieldName": field, "operator": operator, "value": value}]}]
    }


# --- the API under test ---------------------------------------------------------------------

# A server-side rule, as a deployment would configure one: never push failed orders.
RULES: dict[str, FilterRule] = {
    "onOrderChanged": lambda arguments, caller: one_filter("status", "ne", "FAILED")
}


@dataclass
class Api:
    app: Starlette
    http: httpx.AsyncClient
    broker: InProcessBroker
    versions: itertools.count[int]

    def socket(self, **kwargs: Any) -> AsgiWebSocket:
        kwargs.setdefault("query", appsync_query(api_key_auth()))
        kwargs.setdefault("subprotocols", ["graphql-ws"])
        return AsgiWebSocket(self.app, kwargs.pop("path", "/graphql/realtime"), **kwargs)

    async def publish(
        self,
        customer: str,
        *,
        order: str = "o-0001",
        status: str = "CONFIRMED",
        amount: int = 2500,
        failure_reason: str | None = None,
        selection: str = EVERY_FIELD,
    ) -> dict[str, Any]:
        order_input = {
            "id": order,
            "customerId": customer,
            "customerName": f"Customer {customer}",
            "status": status,
            "lines": [
                {
                    "productId": "p-0001",
                    "productName": "Lamp",
                    "quantity": 1,
                    "unitPrice": {"amount": amount, "currency": "USD"},
                }
            ],
            "total": {"amount": amount, "currency": "USD"},
            "failureReason": failure_reason,
            "history": [{"status": status, "at": TS, "reason": None}],
            "placedIn": "us-east-1",
            "createdAt": TS,
            "updatedAt": TS,
            # Each change of an item is newer than the last: the broker drops older ones.
            "version": next(self.versions),
        }
        query = (
            f"mutation P($input: OrderPublication!) {{ publishOrder(input: $input) {selection} }}"
        )
        body = json.dumps({"query": query, "variables": {"input": order_input}}).encode()
        url = f"http://{HOST}/graphql"
        response = await self.http.post("/graphql", content=body, headers=sigv4_headers(url, body))
        assert response.status_code == 200 and "errors" not in response.json(), response.text
        return order_input


def make_api(app: Starlette, http: httpx.AsyncClient, broker: InProcessBroker) -> Api:
    return Api(app, http, broker, itertools.count(1))


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with serving(RealtimeOptions(filter_rules=RULES)) as running:
        yield running


class serving:
    def __init__(self, options: RealtimeOptions, broker: InProcessBroker | None = None) -> None:
        self._broker = broker or InProcessBroker()
        runtime = fake_runtime(InMemoryReader(), self._broker)
        self._app = create_app(SETTINGS, runtime_factory=runtime_factory(runtime), realtime=options)
        self._client = client_for(self._app)

    async def __aenter__(self) -> Api:
        http = await self._client.__aenter__()
        return make_api(self._app, http, self._broker)

    async def __aexit__(self, *exc: Any) -> None:
        await self._client.__aexit__(*exc)


async def connect(ws: AsgiWebSocket) -> dict[str, Any]:
    await ws.send_json({"type": "connection_init"})
    return await ws.receive_json()


async def started(ws: AsgiWebSocket, message: Mapping[str, Any]) -> None:
    await ws.send_json(message)
    assert await ws.receive_json() == {"type": "start_ack", "id": message["id"]}


# --- connection -----------------------------------------------------------------------------


async def test_connection_ack_then_a_keep_alive_every_interval() -> None:
    async with serving(RealtimeOptions(keepalive_seconds=0.05)) as api, api.socket() as ws:
        assert ws.subprotocol == "graphql-ws"
        await ws.send_json({"type": "connection_init"})
        assert await ws.receive_json(skip_ka=False) == {
            "type": "connection_ack",
            "payload": {"connectionTimeoutMs": 300000},
        }
        loop = asyncio.get_running_loop()
        began = loop.time()
        for _ in range(3):
            assert await ws.receive_json(skip_ka=False) == {"type": "ka"}
        assert loop.time() - began >= 0.09  # the first at once, then one per interval


@pytest.mark.parametrize(
    "query",
    [
        "",
        "payload=e30=",
        appsync_query(api_key_auth("da2-wrongwrongwrongwrongwrong")),
        appsync_query({"host": HOST}),
        "header=not-base64!&payload=e30=",
        f"header={b64(iam('not-the-secret').get_headers())}&payload=e30=",
    ],
    ids=["no header", "no credentials", "wrong key", "host only", "garbage", "bad signature"],
)
async def test_refused_credentials_get_connection_error_after_the_upgrade(
    api: Api, query: str
) -> None:
    async with api.socket(query=query) as ws:
        assert ws.subprotocol == "graphql-ws"  # the upgrade itself succeeds
        reply = await connect(ws)
        assert reply["type"] == "connection_error"
        [error] = reply["payload"]["errors"]
        assert error["errorType"] == "UnauthorizedException" and error["errorCode"] == 401
        with pytest.raises(Closed):
            await ws.receive_json()
        assert ws.close_code == 4401


async def test_header_subprotocol_as_amplify_sends_it(api: Api) -> None:
    header = base64.urlsafe_b64encode(json.dumps(api_key_auth()).encode()).decode().rstrip("=")
    async with api.socket(query="", subprotocols=["graphql-ws", f"header-{header}"]) as ws:
        assert ws.subprotocol == "graphql-ws"
        assert (await connect(ws))["type"] == "connection_ack"


async def test_iam_signed_connection_and_subscription(api: Api) -> None:
    signer = iam()
    async with api.socket(query=f"header={b64(signer.get_headers())}&payload=e30=") as ws:
        assert (await connect(ws))["type"] == "connection_ack"
        await started(ws, start("1", {"c": "c-1"}, signer=signer))
        await api.publish("c-1")
        assert (await ws.receive_json())["payload"]["data"]["onOrderChanged"]["id"] == "o-0001"


async def test_the_graphql_path_serves_appsync_clients_too(api: Api) -> None:
    async with api.socket(path="/graphql") as ws:
        assert (await connect(ws))["type"] == "connection_ack"
        await started(ws, start("1"))


# --- subscriptions --------------------------------------------------------------------------


async def test_data_for_matching_changes_only(api: Api) -> None:
    async with api.socket() as ws:
        await connect(ws)
        await started(ws, start("mine", {"c": "c-1"}))
        await started(ws, start("decoy", {"c": "c-2"}))
        await api.publish("c-1")
        assert await ws.receive_json() == {
            "type": "data",
            "id": "mine",
            "payload": {
                "data": {
                    "onOrderChanged": {
                        "id": "o-0001",
                        "customerId": "c-1",
                        "status": "CONFIRMED",
                        "total": {"amount": 2500, "currency": "USD"},
                        "version": 1,
                    }
                }
            },
        }
        await api.publish("c-2", order="o-0002")
        # The decoy's first change is its own: it never saw c-1's.
        reply = await ws.receive_json()
        assert reply["id"] == "decoy"
        assert reply["payload"]["data"]["onOrderChanged"]["customerId"] == "c-2"
        await ws.nothing_within(0.1)


async def test_a_field_fires_only_for_the_mutations_its_aws_subscribe_names(api: Api) -> None:
    async with api.socket() as ws:
        await connect(ws)
        await started(ws, start("products", query="subscription { onProductChanged { id } }"))
        await started(ws, start("customers", query="subscription { onCustomerChanged { id } }"))
        await api.publish("c-1")  # publishOrder: neither listens
        await ws.nothing_within(0.1)
        await api.broker.publish("publishProduct", product_to_plain(make_products(1)[0]))
        assert await ws.receive_json() == {
            "type": "data",
            "id": "products",
            "payload": {"data": {"onProductChanged": {"id": "p-0001"}}},
        }
        await ws.nothing_within(0.1)


async def test_an_omitted_argument_matches_anything(api: Api) -> None:
    async with api.socket() as ws:
        await connect(ws)
        await started(ws, start("all"))
        for customer in ("c-1", "c-2"):
            await api.publish(customer, order=f"o-{customer}")
            data = (await ws.receive_json())["payload"]["data"]["onOrderChanged"]
            assert data["customerId"] == customer


async def test_stop_completes_and_releases_the_broker(api: Api) -> None:
    async with api.socket() as ws:
        await connect(ws)
        await started(ws, start("1"))
        assert api.broker.subscriber_count("publishOrder") == 1
        await ws.send_json({"type": "stop", "id": "1"})
        assert await ws.receive_json() == {"type": "complete", "id": "1"}
        assert api.broker.subscriber_count("publishOrder") == 0
        await api.publish("c-1")
        await ws.nothing_within(0.1)


async def test_leaving_releases_every_subscription(api: Api) -> None:
    async with api.socket() as ws:
        await connect(ws)
        for id in ("1", "2", "3"):
            await started(ws, start(id))
        assert api.broker.subscriber_count("publishOrder") == 3
    assert api.broker.subscriber_count("publishOrder") == 0


async def test_each_start_is_authorized_on_its_own(api: Api) -> None:
    async with api.socket() as ws:
        await connect(ws)
        message = start("1")
        del message["payload"]["extensions"]["authorization"]
        await ws.send_json(message)
        reply = await ws.receive_json()
        assert reply["type"] == "error" and reply["id"] == "1"
        assert reply["payload"]["errors"][0]["errorType"] == "UnauthorizedException"
        await ws.send_json(start("2", auth=api_key_auth("da2-wrongwrongwrongwrongwrong")))
        reply = await ws.receive_json()
        assert reply["id"] == "2"
        assert reply["payload"]["errors"][0]["errorType"] == "UnauthorizedException"
        tampered = start("3", signer=iam())
        tampered["payload"]["data"] = tampered["payload"]["data"].replace("c", "C", 1)
        await ws.send_json(tampered)
        assert (await ws.receive_json())["payload"]["errors"][0]["errorType"] == (
            "UnauthorizedException"
        )
        await started(ws, start("4", signer=iam()))  # an IAM subscription on an API-key connection


@pytest.mark.parametrize(
    ("query", "error_type"),
    [
        ("subscription {", "InvalidSyntax"),
        ("subscription { onOrderChanged { nope } }", "ValidationError"),
        ("subscription { onNothing { id } }", "ValidationError"),
        ("query { region { region } }", "ValidationError"),
    ],
)
async def test_an_invalid_subscription_is_an_error(api: Api, query: str, error_type: str) -> None:
    async with api.socket() as ws:
        await connect(ws)
        await ws.send_json(start("1", query=query))
        reply = await ws.receive_json()
        assert reply["type"] == "error" and reply["id"] == "1", reply
        assert reply["payload"]["errors"][0]["errorType"] == error_type
        await started(ws, start("1"))  # the id is free again


async def test_protocol_mistakes(api: Api) -> None:
    async with api.socket() as ws:
        await ws.send_json(start("early"))
        reply = await ws.receive_json()
        assert (
            reply["id"] == "early" and "connection_init" in reply["payload"]["errors"][0]["message"]
        )
        await connect(ws)
        await started(ws, start("1"))
        await ws.send_json(start("1"))
        assert "already started" in (await ws.receive_json())["payload"]["errors"][0]["message"]
        await ws.send_json({"type": "bogus"})
        assert (await ws.receive_json())["payload"]["errors"][0]["errorType"] == (
            "UnsupportedOperation"
        )


async def test_the_101st_subscription_is_refused(api: Api) -> None:
    async with api.socket() as ws:
        await connect(ws)
        for n in range(100):
            await started(ws, start(str(n)))
        await ws.send_json(start("100"))
        reply = await ws.receive_json()
        assert reply["type"] == "error" and reply["id"] == "100"
        assert reply["payload"]["errors"][0] == {
            "errorType": "MaxSubscriptionsReachedError",
            "message": "Max number of 100 subscriptions reached",
            "errorCode": 400,
        }
        await ws.send_json({"type": "stop", "id": "0"})
        assert (await ws.receive_json())["type"] == "complete"
        await started(ws, start("100"))


async def test_a_message_over_240_kb_is_refused(api: Api) -> None:
    async with api.socket() as ws:
        await connect(ws)
        await ws.send_json(start("big", {"c": "x" * MAX_PAYLOAD_BYTES}))
        reply = await ws.receive_json()
        assert reply["type"] == "error" and reply["id"] == "big"
        assert "larger than 245760 bytes" in reply["payload"]["errors"][0]["message"]


async def test_a_binary_frame_closes_the_connection_and_its_subscriptions(api: Api) -> None:
    async with api.socket() as ws:
        await connect(ws)
        await started(ws, start("1"))
        await ws._inbox.put({"type": "websocket.receive", "bytes": b"\x00"})
        with pytest.raises(Closed):
            while True:
                await ws.receive_json()
        assert ws.close_code == 1003
        for _ in range(100):
            if not api.broker.subscriber_count("publishOrder"):
                break
            await asyncio.sleep(0.01)
        assert api.broker.subscriber_count("publishOrder") == 0


async def test_a_cancelled_connection_stays_cancelled_and_unsubscribes(api: Api) -> None:
    ws = api.socket()
    await ws.__aenter__()
    await connect(ws)
    await started(ws, start("1"))
    assert ws._task is not None
    ws._task.cancel()  # as the server does when it stops
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(ws._task, 5)
    assert api.broker.subscriber_count("publishOrder") == 0


async def test_an_idle_connection_keeps_no_writer_and_still_gets_what_comes_next(
    api: Api,
) -> None:
    def writers() -> int:
        return sum(t.get_coro().__qualname__ == "_Connection._write" for t in asyncio.all_tasks())

    async with api.socket() as ws:
        await connect(ws)
        await started(ws, start("1", {"c": "c-1"}))
        for _ in range(100):
            if not writers():
                break
            await asyncio.sleep(0.01)
        assert writers() == 0
        for n in range(3):
            await api.publish("c-1", order=f"o-{n}")
        received = [(await ws.receive_json())["payload"]["data"]["onOrderChanged"]["id"]]
        received += [(await ws.receive_json())["payload"]["data"]["onOrderChanged"]["id"]]
        received += [(await ws.receive_json())["payload"]["data"]["onOrderChanged"]["id"]]
        assert received == ["o-0", "o-1", "o-2"]


async def test_a_slow_consumer_is_disconnected() -> None:
    options = RealtimeOptions(max_pending_messages=5)
    async with serving(options) as api, api.socket(stalled=True) as ws:
        await ws.send_json({"type": "connection_init"})
        await ws.send_json(start("1"))
        # The client reads nothing, not even start_ack: watch the broker instead.
        for _ in range(500):
            if api.broker.subscriber_count("publishOrder"):
                break
            await asyncio.sleep(0.01)
        for n in range(10):
            await api.publish("c-1", order=f"o-{n}")
        with pytest.raises(Closed):
            await ws.receive_json(5)
        assert ws.close_code == 4408
        assert api.broker.subscriber_count("publishOrder") == 0


async def test_a_subscriber_the_broker_drops_is_disconnected() -> None:
    async with serving(RealtimeOptions(), InProcessBroker(queue_size=1)) as api, api.socket() as ws:
        await connect(ws)
        await started(ws, start("1"))
        # Two changes at once, before the subscriber can take the first: the broker's queue
        # of one overflows and it drops the subscriber.
        plain = {"id": "o-1", "customerId": "c-1", "version": 1}
        await api.broker.publish("publishOrder", plain)
        await api.broker.publish("publishOrder", {**plain, "version": 2})
        with pytest.raises(Closed):
            while True:
                await ws.receive_json()
        assert ws.close_code == 4408


# --- enhanced filters and server rules ------------------------------------------------------


async def test_enhanced_filters_from_the_start_and_the_request_extensions(api: Api) -> None:
    big = one_filter("total.amount", "ge", 10_000)
    usd = one_filter("total.currency", "eq", "USD")
    async with api.socket() as ws:
        await connect(ws)
        await started(
            ws, start("big", extensions={"filter": big}, request_extensions={"filter": usd})
        )
        await started(
            ws, start("small", extensions={"filter": one_filter("total.amount", "lt", 100)})
        )
        await api.publish("c-1", amount=2500)  # neither
        await api.publish("c-1", amount=50_000)  # big only
        reply = await ws.receive_json()
        assert reply["id"] == "big"
        assert reply["payload"]["data"]["onOrderChanged"]["total"]["amount"] == 50_000
        await api.publish("c-1", amount=10)
        reply = await ws.receive_json()
        assert reply["id"] == "small"
        await ws.nothing_within(0.1)


async def test_a_server_rule_applies_to_every_subscriber(api: Api) -> None:
    async with api.socket() as ws:
        await connect(ws)
        await started(ws, start("1"))
        await api.publish("c-1", status="FAILED")
        await api.publish("c-1", status="CONFIRMED")
        assert (await ws.receive_json())["payload"]["data"]["onOrderChanged"]["status"] == (
            "CONFIRMED"
        )


@pytest.mark.parametrize(
    ("filter_", "message"),
    [
        (one_filter("nope", "eq", 1), "type Order has no field nope"),
        (one_filter("total.amount.cents", "eq", 1), "total.amount has no fields"),
        (one_filter("status", "in", ["A", "B", "C", "D", "E", "F"]), "maximum value limit 5"),
        ({"filterGroup": "all"}, '"filterGroup" list'),
    ],
)
async def test_a_bad_filter_is_an_error_at_start(
    api: Api, filter_: dict[str, Any], message: str
) -> None:
    async with api.socket() as ws:
        await connect(ws)
        await ws.send_json(start("1", extensions={"filter": filter_}))
        reply = await ws.receive_json()
        assert reply["type"] == "error" and reply["id"] == "1"
        [error] = reply["payload"]["errors"]
        assert error["errorType"] == "BadRequestException" and message in error["message"]
        assert api.broker.subscriber_count("publishOrder") == 0


# --- what a subscriber receives -------------------------------------------------------------


async def test_fields_the_mutation_did_not_select_are_null_broker_level(api: Api) -> None:
    """The subscriber side of AppSync's rule, with a change as publish_change() sends it."""
    order = replace(
        make_order(7, make_customer(1), make_products(1)[0]), failure_reason="PAYMENT_DECLINED"
    )
    async with api.socket() as ws:
        await connect(ws)
        await started(ws, start("partial", query=PARTIAL))
        await started(ws, start("strict", query="subscription { onOrderChanged { id status } }"))
        await started(ws, start("by-customer", {"c": "c-0001"}))
        mask = {"id": True, "total": {"amount": True}}
        await api.broker.publish("publishOrder", change_message(order_to_plain(order), mask))
        replies = {
            m["id"]: m["payload"] for m in [await ws.receive_json(), await ws.receive_json()]
        }
        assert replies["partial"] == {
            "data": {
                "onOrderChanged": {"id": "o-0007", "failureReason": None, "total": {"amount": 200}}
            }
        }
        # A non-null field the mutation did not select fails as GraphQL says, as on AppSync.
        assert replies["strict"]["data"] == {"onOrderChanged": None}
        assert replies["strict"]["errors"][0]["path"] == ["onOrderChanged", "status"]
        # customerId was not selected: a subscriber that filters on it gets nothing.
        await ws.nothing_within(0.1)


async def test_fields_the_mutation_did_not_select_are_null(api: Api) -> None:
    async with api.socket() as ws:
        await connect(ws)
        await started(ws, start("1", query=PARTIAL))
        await api.publish(
            "c-1", failure_reason="OUT_OF_STOCK", selection="{ id customerId total { amount } }"
        )
        data = (await ws.receive_json())["payload"]["data"]["onOrderChanged"]
        assert data == {"id": "o-0001", "failureReason": None, "total": {"amount": 2500}}


@pytest.mark.parametrize(
    ("query", "operation_name", "message"),
    [
        ("subscription A { onOrderChanged { id } }", "B", "Unknown operation named 'B'"),
        (
            "subscription A { onOrderChanged { id } } subscription B { onOrderChanged { id } }",
            None,
            "Must provide operation name",
        ),
    ],
)
async def test_an_operation_that_cannot_be_selected_is_an_error_at_start(
    api: Api, query: str, operation_name: str | None, message: str
) -> None:
    """The spec's GetOperation: an unknown name, or several operations and no name."""
    request = {"query": query, "variables": {}, "operationName": operation_name}
    data = json.dumps(request)
    async with api.socket() as ws:
        await connect(ws)
        await ws.send_json(
            {
                "id": "1",
                "type": "start",
                "payload": {"data": data, "extensions": {"authorization": api_key_auth()}},
            }
        )
        reply = await ws.receive_json()
        assert reply["type"] == "error" and reply["id"] == "1"
        [error] = reply["payload"]["errors"]
        assert error["errorType"] == "BadRequestException" and message in error["message"]
        assert api.broker.subscriber_count("publishOrder") == 0


async def test_equal_subscribers_share_one_execution_of_each_change(api: Api) -> None:
    """subscriptions.shared_events: the same document, variables and caller scope get one
    execution per change; another selection gets its own; the answers are the same as
    executing each alone."""
    async with api.socket() as first, api.socket() as second, api.socket() as other:
        for ws in (first, second, other):
            await connect(ws)
        await started(first, start("a", {"c": "c-1"}))
        await started(second, start("b", {"c": "c-1"}))
        await started(other, start("c", {"c": "c-1"}, query=PARTIAL))
        executed, shared = SHARED_EXECUTIONS.executed, SHARED_EXECUTIONS.shared
        await api.publish("c-1")
        a, b, c = (
            await first.receive_json(),
            await second.receive_json(),
            await other.receive_json(),
        )
        assert a["payload"] == b["payload"]
        assert a["payload"]["data"]["onOrderChanged"]["customerId"] == "c-1"
        assert c["payload"]["data"]["onOrderChanged"] == {
            "id": "o-0001",
            "failureReason": None,
            "total": {"amount": 2500},
        }
        assert SHARED_EXECUTIONS.executed - executed == 2  # one per distinct selection
        assert SHARED_EXECUTIONS.shared - shared == 1
