"""A fake `hemisphere up` for the drill's functional test: one uvicorn server standing in for
every region's API, every location's edge and the control endpoint, with the behaviours the
drill measures, scaled down to fractions of a second:

- an edge routes its location to the nearest region that is up and *detected* healthy; for
  DETECTION_S after a region stops, its location's edge still sends there and answers 502;
- checkouts succeed while the primary is up, else ReadOnlyRegion; an order is PENDING when
  acknowledged and CONFIRMED CONFIRM_S later (unless its primary died first: then it waits for
  a promotion, as the new primary's reconciler would re-drive it);
- contract v2: the API key reads the catalog and `region`; a customer, its orders, an order
  and a checkout need a token of that customer (from the development issuer made in the
  test's data dir, verified by the real TokenVerifier), else `Unauthorized`;
- a subscriber through an edge starts one subscription per customer on a connection, each
  authorized by its own `start`'s token, and gets that customer's order changes; a stopped
  region closes its connections;
- GET /status, POST /regions/R/stop|start|promote as GLOBAL.md says.

Paths: /edge/{location}/graphql (+ /realtime), /region/{region}/graphql, /control/...
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from graphql import GraphQLError, build_schema, graphql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from domain.auth import AuthMode
from domain.errors import UnauthorizedError
from hemisphere.http.jwt_auth import TokenIssuer, TokenVerifier
from hemisphere.local_issuer import LocalIssuer
from hemisphere.localstack import free_port
from regions.latency import GLOBAL

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
API_KEY = "da2-drill-fake"
DETECTION_S = 1.0
CONFIRM_S = 0.05

SDL = """
type Money { amount: Int! currency: String! }
type Product { id: ID! name: String! price: Money! available: Int! }
type ProductConnection { items: [Product!]! nextToken: String }
type Customer { id: ID! name: String! loyaltyPoints: Int! }
type StatusChange { status: String! at: String! }
type Order { id: ID! status: String! version: Int! total: Money history: [StatusChange!]!
  updatedAt: String! }
type OrderConnection { items: [Order!]! }
type RegionInfo { region: String! primaryRegion: String! readOnly: Boolean! epoch: Int! }
input OrderLineInput { productId: ID! quantity: Int! }
input CheckoutInput { customerId: ID! lines: [OrderLineInput!]! paymentToken: String!
  idempotencyKey: String! }
type Query {
  product(id: ID!): Product
  products(category: String, limit: Int, nextToken: String): ProductConnection!
  customer(id: ID!): Customer
  ordersByCustomer(customerId: ID!, limit: Int): OrderConnection!
  region: RegionInfo!
  order(id: ID!): Order
}
type Mutation { checkout(input: CheckoutInput!): Order }
"""
SCHEMA = build_schema(SDL)


class ReadOnlyRegion(Exception):
    pass


class Unauthorized(Exception):
    pass


# Who a request is made as: a customer id (a token), or None (the API key).
Identity = str | None


def own(identity: Identity, customer_id: str) -> None:
    """Contract v2: customer data is its own customer's only, never the API key's."""
    if identity != customer_id:
        raise Unauthorized(f"Not Authorized to access data of customer {customer_id}")


@dataclass(frozen=True)
class Subscriber:
    """One order subscription: of `customer`, on a connection to `region`."""

    region: str
    customer: str
    id: str
    queue: asyncio.Queue[dict[str, Any] | None]


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class RegionState:
    up: bool = True
    changed: float = 0.0  # when it last went up or down

    def detected_healthy(self, now: float) -> bool:
        return self.up and now - self.changed >= DETECTION_S / 2


@dataclass
class FakeUp:
    primary: str = "us-east-1"
    epoch: int = 1
    regions: dict[str, RegionState] = field(
        default_factory=lambda: {name: RegionState() for name in REGIONS}
    )
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Orders whose saga was left in flight by a dead primary, re-driven at the next promotion.
    stranded: list[str] = field(default_factory=list)
    subscribers: list[Subscriber] = field(default_factory=list)
    port: int = 0
    issuer: LocalIssuer | None = None
    # What the API key was refused, and the customer reads a token was let through for.
    refused: list[str] = field(default_factory=list)
    customer_reads: int = 0

    def verifier(self) -> TokenVerifier:
        assert self.issuer is not None
        issuer = TokenIssuer(AuthMode.OPENID_CONNECT, self.issuer.issuer, jwks=self.issuer.jwks())
        return TokenVerifier([issuer])

    async def identity(self, verifier: TokenVerifier, headers: Mapping[str, str]) -> Identity:
        """The customer a token speaks for, None for the API key; UnauthorizedError else."""
        token = headers.get("authorization")
        if token:
            return (await verifier.verify(token)).customer_id
        if headers.get("x-api-key") == API_KEY:
            return None
        raise UnauthorizedError("no credentials")

    # --- topology.json ----------------------------------------------------------------------

    def topology(self) -> dict[str, Any]:
        base = f"http://127.0.0.1:{self.port}"
        return {
            "primary": self.primary,
            "epoch": self.epoch,
            "api_key": API_KEY,
            "iam": "AKID:SECRET",
            "token_issuer": self.issuer.issuer if self.issuer else None,
            "control": f"{base}/control",
            "latency": "global",
            "regions": {
                r: {
                    "graphql": f"{base}/region/{r}/graphql",
                    "realtime": f"ws://127.0.0.1:{self.port}/region/{r}/graphql/realtime",
                }
                for r in REGIONS
            },
            "edge": {r: f"{base}/edge/{r}/graphql" for r in REGIONS},
        }

    # --- routing ------------------------------------------------------------------------------

    def route(self, location: str) -> str | None:
        """The edge's choice: nearest detected-healthy region; a region that died less than
        DETECTION_S ago is still chosen (its users see errors until detection)."""
        now = time.time()
        for region in GLOBAL.nearest_first(location, list(REGIONS)):
            state = self.regions[region]
            if state.detected_healthy(now):
                return region
            if not state.up and now - state.changed < DETECTION_S:
                return region  # not detected yet: the request will fail
        return None

    # --- resolvers ----------------------------------------------------------------------------

    def root(self, region: str, identity: Identity) -> Any:
        fake = self

        class Root:
            def product(self, info: Any, id: str) -> dict[str, Any]:
                return {
                    "id": id,
                    "name": f"Product {id}",
                    "price": {"amount": 1000, "currency": "USD"},
                    "available": 5,
                }

            def products(self, info: Any, **args: Any) -> dict[str, Any]:
                return {"items": [self.product(info, f"p-000{n}") for n in range(1, 4)]}

            def customer(self, info: Any, id: str) -> dict[str, Any]:
                own(identity, id)
                fake.customer_reads += 1
                return {"id": id, "name": "C", "loyaltyPoints": 1}

            def ordersByCustomer(self, info: Any, customerId: str, **args: Any) -> dict[str, Any]:
                own(identity, customerId)
                return {"items": []}

            def region(self, info: Any) -> dict[str, Any]:
                return {
                    "region": region,
                    "primaryRegion": fake.primary,
                    "readOnly": not fake.regions[fake.primary].up,
                    "epoch": fake.epoch,
                }

            def order(self, info: Any, id: str) -> dict[str, Any] | None:
                order = fake.orders.get(id)
                if order is not None:
                    own(identity, order["customerId"])
                return order

            def checkout(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
                own(identity, input["customerId"])
                if not fake.regions[fake.primary].up:
                    raise ReadOnlyRegion("the primary cannot be reached")
                return fake.place(input["idempotencyKey"], input["customerId"])

        return Root()

    def place(self, key: str, customer: str) -> dict[str, Any]:
        now = time.time()
        order: dict[str, Any] = {
            "id": f"o-{key}",
            "customerId": customer,
            "status": "PENDING",
            "version": 1,
            "total": {"amount": 1000, "currency": "USD"},
            "history": [{"status": "PENDING", "at": iso(now)}],
            "updatedAt": iso(now),
            "primary": self.primary,
        }
        self.orders[order["id"]] = order
        self.publish(order)
        asyncio.get_running_loop().call_later(CONFIRM_S, self.confirm, order["id"])
        return order

    def confirm(self, order_id: str) -> None:
        order = self.orders[order_id]
        if not self.regions[order["primary"]].up or order["primary"] != self.primary:
            self.stranded.append(order_id)
            return
        now = time.time()
        order.update(status="CONFIRMED", version=2, updatedAt=iso(now))
        order["history"].append({"status": "CONFIRMED", "at": iso(now)})
        self.publish(order)

    def publish(self, order: dict[str, Any]) -> None:
        public = {k: order[k] for k in ("id", "status", "version", "updatedAt")}
        for subscriber in self.subscribers:
            if subscriber.customer == order["customerId"]:
                payload = {"data": {"onOrderChanged": public}}
                subscriber.queue.put_nowait(
                    {"type": "data", "id": subscriber.id, "payload": payload}
                )

    # --- control ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        now = time.time()
        return {
            "primary": self.primary,
            "epoch": self.epoch,
            "regions": {
                r: {
                    "role": ("primary" if r == self.primary else "secondary") if s.up else "down",
                    "health": "healthy" if s.detected_healthy(now) else "unhealthy",
                    "epoch": self.epoch,
                    "dynamodb_replication_lag_ms": {o: 60.0 for o in REGIONS if o != r},
                    "postgres_replay_lag_ms": None if r == self.primary else 15.0,
                    "subscriptions": 1,
                    "in_flight_sagas": 0,
                }
                for r, s in self.regions.items()
            },
        }

    def stop(self, region: str) -> None:
        self.regions[region] = RegionState(up=False, changed=time.time())
        for subscriber in self.subscribers:
            if subscriber.region == region:
                subscriber.queue.put_nowait(None)

    def start(self, region: str) -> None:
        self.regions[region] = RegionState(up=True, changed=time.time())

    def promote(self, region: str) -> None:
        self.primary = region
        self.epoch += 1
        stranded, self.stranded = self.stranded, []
        for order_id in stranded:
            self.orders[order_id]["primary"] = region
            self.confirm(order_id)


def errors_of(error: GraphQLError) -> dict[str, Any]:
    original = error.original_error
    kind = (
        "ReadOnlyRegion"
        if isinstance(original, ReadOnlyRegion)
        else "Unauthorized"
        if isinstance(original, Unauthorized)
        else "BadRequest"
    )
    return {"message": error.message, "errorType": kind}


def app(fake: FakeUp) -> Starlette:
    verifier = fake.verifier()

    async def execute(region: str, request: Request) -> Response:
        try:
            identity = await fake.identity(verifier, request.headers)
        except UnauthorizedError:
            return JSONResponse({"errors": [{"errorType": "UnauthorizedException"}]}, 401)
        body = await request.json()
        result = await graphql(
            SCHEMA,
            body["query"],
            root_value=fake.root(region, identity),
            variable_values=body.get("variables"),
        )
        document: dict[str, Any] = {"data": result.data}
        if result.errors:
            document["errors"] = [errors_of(e) for e in result.errors]
            if identity is None:
                fake.refused += [e["errorType"] for e in document["errors"]]
        return Response(orjson.dumps(document), media_type="application/json")

    async def edge(request: Request) -> Response:
        region = fake.route(request.path_params["location"])
        if region is None or not fake.regions[region].up:
            return Response("Bad Gateway", 502)
        return await execute(region, request)

    async def direct(request: Request) -> Response:
        region = request.path_params["region"]
        if not fake.regions[region].up:
            return Response("connection refused", 503)
        return await execute(region, request)

    async def realtime(websocket: WebSocket) -> None:
        region = fake.route(websocket.path_params["location"])
        if region is None or not fake.regions[region].up:
            await websocket.close(code=1011)
            return
        await websocket.accept(subprotocol="graphql-ws")
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        mine: list[Subscriber] = []

        async def starts() -> None:
            """Each `start` on its own: its token must be of the customer it names. When the
            client goes, the connection ends."""
            try:
                await read_starts()
            finally:
                queue.put_nowait(None)

        async def read_starts() -> None:
            while True:
                start = orjson.loads(await websocket.receive_text())
                assert start["type"] == "start"
                variables = orjson.loads(start["payload"]["data"]).get("variables") or {}
                customer = str(variables.get("c"))
                headers = start["payload"]["extensions"]["authorization"]
                try:
                    identity = await fake.identity(verifier, headers)
                    own(identity, customer)
                except (UnauthorizedError, Unauthorized):
                    fake.refused.append("subscription")
                    error = {"errors": [{"errorType": "Unauthorized"}]}
                    queue.put_nowait({"type": "error", "id": start["id"], "payload": error})
                    continue
                subscriber = Subscriber(region, customer, start["id"], queue)
                mine.append(subscriber)
                fake.subscribers.append(subscriber)
                queue.put_nowait({"type": "start_ack", "id": start["id"]})

        reading: asyncio.Task[None] | None = None
        try:
            init = orjson.loads(await websocket.receive_text())
            assert init["type"] == "connection_init"
            await websocket.send_text('{"type":"connection_ack","payload":{}}')
            reading = asyncio.create_task(starts())
            while (message := await queue.get()) is not None:
                await websocket.send_text(orjson.dumps(message).decode())
            await websocket.close(code=1001)
        except WebSocketDisconnect:
            pass
        finally:
            if reading is not None:
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)
            for subscriber in mine:
                if subscriber in fake.subscribers:
                    fake.subscribers.remove(subscriber)

    async def status(request: Request) -> Response:
        return JSONResponse(fake.status())

    async def act(request: Request) -> Response:
        region, action = request.path_params["region"], request.path_params["action"]
        if region not in fake.regions:
            return JSONResponse({"error": f"no region {region}"}, 404)
        if action == "promote":
            await asyncio.sleep(0.1)
        {"stop": fake.stop, "start": fake.start, "promote": fake.promote}[action](region)
        return JSONResponse({"region": region, "epoch": fake.epoch})

    return Starlette(
        routes=[
            Route("/edge/{location}/graphql", edge, methods=["POST"]),
            WebSocketRoute("/edge/{location}/graphql/realtime", realtime),
            Route("/region/{region}/graphql", direct, methods=["POST"]),
            Route("/control/status", status),
            Route("/control/regions/{region}/{action}", act, methods=["POST"]),
        ]
    )


@contextlib.contextmanager
def running_fake_up(data_dir: Path) -> Iterator[FakeUp]:
    """The fake, and its development issuer in `data_dir` (issuer.json: the drill finds it)."""
    port = free_port()
    issuer = LocalIssuer(data_dir, f"http://127.0.0.1:{port}/issuer")
    issuer.remember(data_dir)
    fake = FakeUp(port=port, issuer=issuer)
    server = uvicorn.Server(
        uvicorn.Config(app(fake), host="127.0.0.1", port=fake.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(10)
