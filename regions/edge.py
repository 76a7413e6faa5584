"""The edge router of one user location: Route 53 latency records with health checks (and the
CDN in front), standing in for DNS with a reverse proxy.

Every request and WebSocket goes to the lowest-latency healthy region for the location
(`choose_region`), decided afresh for each new request or connection, so a region that
recovers gets its users back as they make new ones. The location→region delay is injected
(half the RTT each way: the request, then the response; per WebSocket message). HTTP answers
carry `x-hemisphere-region`. With no healthy region the answer is 503 in AppSync's error
shape, `errorType: ServiceUnavailable`, retryable. `GET /edge/status` shows each region's
health and the current choice. As with DNS, a request already sent to a region that fails is
not retried elsewhere: the client sees the error and its next request goes to the next region.

`regions.edge_runner` serves several (one per location) with one shared health checker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from yarl import URL

from regions.delay_proxy import DelayLine
from regions.edge_websocket import RegionConnectionFailedError, WebSocketBridge
from regions.health import HealthChecker, Transition
from regions.latency import LatencyMatrix

STATUS_PATH = "/edge/status"
REGION_HEADER = "x-hemisphere-region"
UPSTREAM_TIMEOUT_SECONDS = 30.0
# Headers of one hop (RFC 9110 §7.6.1): the edge's connection to the region has its own.
_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


_HOP_BYTES = frozenset(name.encode() for name in _HOP_HEADERS)
Message = dict[str, Any]


def choose_region(
    location: str, regions: Sequence[str], healthy: set[str], matrix: LatencyMatrix
) -> str | None:
    """The healthy region with the lowest RTT from `location` (ties: the location's own
    region, then the first listed)."""
    candidates = [region for region in regions if region in healthy]
    if not candidates:
        return None
    return matrix.nearest_first(location, candidates)[0]


def unavailable_body(message: str) -> dict[str, Any]:
    """AppSync's shape for an error the client should retry."""
    return {
        "data": None,
        "errors": [
            {
                "message": message,
                "errorType": "ServiceUnavailable",
                "errorInfo": {"retryable": True},
            }
        ],
    }


class EdgeRouter:
    """The ASGI app of one location's edge. `aclose()` closes its connections to the regions."""

    def __init__(
        self,
        location: str,
        regions: Mapping[str, str],
        matrix: LatencyMatrix,
        health: HealthChecker,
        upstream_timeout: float = UPSTREAM_TIMEOUT_SECONDS,
    ) -> None:
        self.check_latencies(location, regions, matrix)
        self.location = location
        self.regions = {name: _origin(url) for name, url in regions.items()}
        self.matrix = matrix
        self.health = health
        self._upstream_timeout = upstream_timeout
        # One keep-alive client per region (made on first use, inside the running loop): a
        # request pays the injected latency, not a handshake.
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._bridges: set[WebSocketBridge] = set()
        # Requests waiting on each region, and those given up because it turned unhealthy.
        self._in_flight: dict[str, set[asyncio.Task[Any]]] = {name: set() for name in regions}
        self._abandoned: set[asyncio.Task[Any]] = set()
        health.subscribe(self._on_transition)

    @staticmethod
    def check_latencies(location: str, regions: Iterable[str], matrix: LatencyMatrix) -> None:
        """LatencyMatrixError now for a pair the matrix lacks, rather than on a request."""
        for region in regions:
            matrix.rtt_ms(location, region)

    def choice(self) -> str | None:
        return choose_region(
            self.location, list(self.regions), self.health.healthy_regions(), self.matrix
        )

    def status(self) -> dict[str, Any]:
        health = self.health.status()
        return {
            "location": self.location,
            "choice": self.choice(),
            "latency": self.matrix.name,
            "regions": {
                region: {
                    "url": url,
                    "rtt_ms": self.matrix.rtt_ms(self.location, region),
                    "websockets": sum(1 for bridge in self._bridges if bridge.region == region),
                    "requests_in_flight": len(self._in_flight[region]),
                    **health.get(region, {}),
                }
                for region, url in self.regions.items()
            },
        }

    async def aclose(self) -> None:
        for bridge in list(self._bridges):
            bridge.close_for_failover()
        await asyncio.gather(*(session.close() for session in self._sessions.values()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["path"] == STATUS_PATH:
                await JSONResponse(self.status())(scope, receive, send)
            else:
                await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)

    def _on_transition(self, transition: Transition) -> None:
        """A region found unhealthy loses its WebSockets (1012) and its waiting requests
        (503), so that a hung region holds nobody beyond the detection time."""
        if transition.healthy:
            return
        for bridge in list(self._bridges):
            if bridge.region == transition.region:
                bridge.close_for_failover()
        for task in self._in_flight.get(transition.region, ()):
            self._abandoned.add(task)
            task.cancel()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        region = self.choice()
        if region is None:
            await _unavailable("no healthy region", None)(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None  # an ASGI call always runs in a task
        started = _Started(send)
        self._in_flight[region].add(task)
        try:
            await self._forward(region, scope, receive, started)
        except asyncio.CancelledError:
            if task not in self._abandoned:
                raise
            task.uncancel()
            if not started.sent:
                message = f"region {region} failed its health checks; retry"
                await _unavailable(message, region)(scope, receive, send)
        finally:
            self._in_flight[region].discard(task)
            self._abandoned.discard(task)

    async def _forward(self, region: str, scope: Scope, receive: Receive, send: _Started) -> None:
        one_way = self.matrix.one_way_seconds(self.location, region)
        body = await _read_body(receive)
        await asyncio.sleep(one_way)  # the request travels to the region
        try:
            response = await self._session(region).request(
                scope["method"],
                # Verbatim: a re-encoded query (%41 read as A) would break SigV4's signature.
                URL(_path_and_query(scope), encoded=True),
                headers=_forwarded_headers(scope),
                data=body,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            await asyncio.sleep(one_way)
            message = f"region {region} did not answer ({type(error).__name__}); retry"
            await _unavailable(message, region)(scope, receive, send)
            return
        try:
            await _relay_response(response, region, one_way, send)
        except (aiohttp.ClientError, TimeoutError) as error:
            # The region died mid-answer: a 503 if nothing was sent yet; otherwise the
            # connection is cut (the client sees an incomplete response, as it would).
            if not send.sent:
                message = f"region {region} failed mid-answer ({type(error).__name__}); retry"
                await _unavailable(message, region)(scope, receive, send)
        finally:
            response.release()

    def _session(self, region: str) -> aiohttp.ClientSession:
        session = self._sessions.get(region)
        if session is None:
            session = self._sessions[region] = aiohttp.ClientSession(
                base_url=self.regions[region],
                timeout=aiohttp.ClientTimeout(total=self._upstream_timeout),
                # Bytes pass through as the region sent them (content-encoding included), and
                # no header the client did not send is added.
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )
        return session

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        region = self.choice()
        if region is None:
            denial = _unavailable("no healthy region", None)
            await WebSocket(scope, receive, send).send_denial_response(denial)
            return
        bridge = WebSocketBridge(region, self.matrix.one_way_seconds(self.location, region))
        upstream_url = _websocket_url(self.regions[region]) + _path_and_query(scope)
        self._bridges.add(bridge)
        try:
            await bridge.serve(scope, receive, send, upstream_url)
        except RegionConnectionFailedError as error:
            denial = _unavailable(f"region {error} did not answer; retry", region)
            await WebSocket(scope, receive, send).send_denial_response(denial)
        finally:
            self._bridges.discard(bridge)


class _Started:
    """An ASGI `send` that remembers whether the response has begun (after which an error
    can only cut the connection, not become a 503)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.sent = False

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        self.sent = True
        await self._send(message)


async def _relay_response(
    response: aiohttp.ClientResponse, region: str, one_way: float, send: Send
) -> None:
    """The answer travels back: its start and each body chunk `one_way` after they arrived
    (a streamed answer, e.g. multipart subscriptions, keeps its pace)."""
    headers = [
        (name, value) for name, value in response.raw_headers if name.lower() not in _HOP_BYTES
    ]
    headers.append((REGION_HEADER.encode(), region.encode()))
    start = {"type": "http.response.start", "status": response.status, "headers": headers}
    line: DelayLine[Message] = DelayLine(one_way, send)
    delivering = asyncio.create_task(line.run())
    try:
        await line.put(start)
        async for chunk in response.content.iter_any():
            await line.put({"type": "http.response.body", "body": chunk, "more_body": True})
        await line.put({"type": "http.response.body", "body": b"", "more_body": False})
        await line.close()
        await delivering
    finally:
        delivering.cancel()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _forwarded_headers(scope: Scope) -> list[tuple[str, str]]:
    """The client's headers minus one hop's; Host is kept (SigV4 signs it), and the client's
    address is added as X-Forwarded-For."""
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in scope["headers"]
        if name not in _HOP_BYTES
    ]
    client = scope.get("client")
    if client:
        headers.append(("x-forwarded-for", str(client[0])))
    return headers


def _path_and_query(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    path = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
    return f"{path}?{query}" if query else path


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"a region's URL must be http(s)://host:port, got {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _websocket_url(origin: str) -> str:
    return "ws" + origin.removeprefix("http")


def _unavailable(message: str, region: str | None) -> Response:
    headers = {REGION_HEADER: region} if region else None
    return JSONResponse(unavailable_body(message), status_code=503, headers=headers)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
