"""The edge router in front of two tiny regions (real processes): nearest-region routing with
injected latency, failover after interval * threshold when the near one dies, the way back,
503 in AppSync's shape when none is healthy, and WebSockets (both real-time protocols' upgrade
shapes) proxied, closed for failover, and reconnected elsewhere."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from hemisphere.localstack import free_port
from regions import latency
from regions.edge_runner import EdgeSpec, EdgesSpec, RunningEdges, run_edges

pytestmark = pytest.mark.integration

INTERVAL = 0.1
THRESHOLD = 3
# near is 40 ms away from the location "near", far 120 ms.
MATRIX = latency.load({"local_rtt_ms": 40, "rtt_ms": {"near": {"far": 120}}})


class TinyRegion:
    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.tiny_region", self.name, str(self.port)]
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"tiny region {self.name} did not start")

    def kill(self) -> None:
        """A hard outage: SIGKILL, as `hemisphere regions stop` does."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def unready(self) -> None:
        request = urllib.request.Request(f"{self.url}/test/unready", method="POST")
        with urllib.request.urlopen(request, timeout=5):
            pass


@pytest.fixture
def regions() -> Iterator[dict[str, TinyRegion]]:
    started = {name: TinyRegion(name) for name in ("near", "far")}
    try:
        for region in started.values():
            region.spawn()
        for region in started.values():
            region.wait_ready()
        yield started
    finally:
        for region in started.values():
            region.kill()


@dataclass
class Edge:
    url: str
    ws_url: str
    running: RunningEdges


@pytest.fixture
async def edge(regions: dict[str, TinyRegion]) -> AsyncIterator[Edge]:
    spec = EdgesSpec(
        matrix=MATRIX,
        regions={name: region.url for name, region in regions.items()},
        edges=[EdgeSpec("near", "127.0.0.1", 0)],
        interval=INTERVAL,
        # Probes of a healthy region may be slow on a loaded machine (the whole suite on two
        # cores): three of them past 0.5 s took "near" out of service mid-test. A dead or
        # unready region answers at once either way.
        timeout=2.0,
        failure_threshold=THRESHOLD,
    )
    ready: asyncio.Future[RunningEdges] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_edges(spec, ready.set_result))
    running = await asyncio.wait_for(ready, 20)
    port = running.ports["near"]
    yield Edge(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", running)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 15
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_requests_go_to_the_nearest_region_with_its_latency(edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=edge.url) as client:
        await client.post("/graphql", json={"query": "{ warm }"})
        started = time.perf_counter()
        response = await client.post(
            "/graphql?x=%41&q=%7B%20x%20%7D",
            json={"query": "{ region }"},
            headers={"authorization": "AWS4-HMAC-SHA256 signed", "host": "api.example.com"},
        )
        elapsed = time.perf_counter() - started
        asset = await client.get("/static/graphiql.js")
    assert response.status_code == 200
    assert response.headers["x-hemisphere-region"] == "near"
    answer = response.json()
    assert answer["data"] == {"region": "near"}
    assert answer["query"] == "x=%41&q=%7B%20x%20%7D"  # verbatim (SigV4 signs it)
    assert json.loads(answer["body"]) == {"query": "{ region }"}
    # SigV4 signs the Host the client used: it reaches the region unchanged.
    assert answer["host"] == "api.example.com"
    assert answer["authorization"] == "AWS4-HMAC-SHA256 signed"
    assert elapsed >= 0.038  # the location's 40 ms RTT, half each way
    assert asset.text == "asset /static/graphiql.js from near"
    assert asset.headers["x-hemisphere-region"] == "near"


async def test_failover_to_the_next_region_and_back(
    edge: Edge, regions: dict[str, TinyRegion]
) -> None:
    async with httpx.AsyncClient(base_url=edge.url) as client:

        async def served_by() -> str | None:
            response = await client.post("/graphql", json={"query": "{ region }"})
            if response.status_code == 503:
                error = response.json()["errors"][0]
                assert error["errorType"] == "ServiceUnavailable"
                assert error["errorInfo"] == {"retryable": True}
                return None
            return response.headers["x-hemisphere-region"]

        assert await served_by() == "near"
        killed_at = time.time()
        regions["near"].kill()
        seen: list[str | None] = []
        while not seen or seen[-1] != "far":
            seen.append(await served_by())
            assert len(seen) < 500, seen
        status = (await client.get("/edge/status")).json()
        assert status["choice"] == "far"
        assert status["regions"]["near"]["healthy"] is False
        went_down = status["regions"]["near"]["transitions"][-1]
        assert went_down["healthy"] is False
        # Route 53's model: not before `threshold` failed probes, one interval apart.
        assert went_down["at"] - killed_at >= INTERVAL * (THRESHOLD - 1)

        regions["near"].start()
        seen = []
        while not seen or seen[-1] != "near":
            seen.append(await served_by())
            assert len(seen) < 500, seen
        status = (await client.get("/edge/status")).json()
        assert [t["healthy"] for t in status["regions"]["near"]["transitions"]] == [
            True,
            False,
            True,
        ]


async def test_no_healthy_region_is_a_retryable_503(
    edge: Edge, regions: dict[str, TinyRegion]
) -> None:
    for region in regions.values():
        region.unready()
    await _until(lambda: not edge.running.health.healthy_regions())
    async with httpx.AsyncClient(base_url=edge.url) as client:
        response = await client.post("/graphql", json={"query": "{ region }"})
        status = (await client.get("/edge/status")).json()
    assert response.status_code == 503
    assert response.json()["errors"][0]["errorType"] == "ServiceUnavailable"
    assert status["choice"] is None
    with pytest.raises(InvalidStatus) as denied:
        async with websockets.connect(f"{edge.ws_url}/graphql"):
            pass
    assert denied.value.response.status_code == 503


async def test_requests_waiting_on_a_region_that_turns_unhealthy_get_a_503(
    edge: Edge, regions: dict[str, TinyRegion]
) -> None:
    async with httpx.AsyncClient(base_url=edge.url, timeout=60) as client:
        waiting = asyncio.create_task(client.post("/graphql?hang=1", json={"query": "{ x }"}))
        router = edge.running.routers[0]
        await _until(lambda: router.status()["regions"]["near"]["requests_in_flight"] == 1)
        regions["near"].unready()
        response = await waiting
        assert response.status_code == 503
        assert response.headers["x-hemisphere-region"] == "near"
        error = response.json()["errors"][0]
        assert error["errorType"] == "ServiceUnavailable"
        assert "failed its health checks" in error["message"]
        after = await client.post("/graphql", json={"query": "{ region }"})
        assert after.headers["x-hemisphere-region"] == "far"


async def test_a_region_dying_before_it_answers_is_a_retryable_503(edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=edge.url, timeout=60) as client:
        before = await client.post("/graphql?die=before", json={"query": "{ x }"})
        assert before.status_code == 503
        assert before.json()["errors"][0]["errorType"] == "ServiceUnavailable"
        assert "did not answer" in before.json()["errors"][0]["message"]


async def test_a_region_dying_mid_answer_cuts_the_response(edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=edge.url, timeout=60) as client:
        with pytest.raises(httpx.TransportError):
            response = await client.post("/graphql?die=during", json={"query": "{ x }"})
            response.raise_for_status()


def _appsync_subprotocols() -> list[Subprotocol]:
    header = base64.urlsafe_b64encode(b'{"host":"edge","x-api-key":"k"}').decode().rstrip("=")
    return [Subprotocol("graphql-ws"), Subprotocol(f"header-{header}")]


async def test_appsync_realtime_upgrade_passes_through_and_echoes(edge: Edge) -> None:
    query = "header=eyJob3N0IjoiZWRnZSJ9&payload=e30="
    async with websockets.connect(
        f"{edge.ws_url}/graphql/realtime?{query}",
        subprotocols=_appsync_subprotocols(),
        additional_headers={"x-api-key": "da2-key"},
    ) as socket:
        assert socket.subprotocol == "graphql-ws"
        assert socket.response is not None
        assert socket.response.headers["x-hemisphere-region"] == "near"
        greeting = json.loads(await socket.recv())
        assert greeting["region"] == "near"
        assert greeting["offered"] == _appsync_subprotocols()
        assert greeting["query"] == query
        assert greeting["api_key"] == "da2-key"
        started = time.perf_counter()
        await socket.send('{"type":"connection_init"}')
        assert await socket.recv() == '{"type":"connection_init"}'
        assert time.perf_counter() - started >= 0.038
        for index in range(100):
            await socket.send(str(index))
        assert [await socket.recv() for _ in range(100)] == [str(i) for i in range(100)]


async def test_graphql_transport_ws_and_close_codes_pass_through(edge: Edge) -> None:
    async with websockets.connect(
        f"{edge.ws_url}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as socket:
        assert socket.subprotocol == "graphql-transport-ws"
        await socket.recv()
        await socket.send("close-4000")
        with pytest.raises(ConnectionClosed):
            await socket.recv()
    assert socket.close_code == 4000
    with pytest.raises(InvalidStatus) as denied:
        async with websockets.connect(f"{edge.ws_url}/graphql?deny=1"):
            pass
    assert denied.value.response.status_code == 403


async def _connect_when_possible(url: str) -> websockets.ClientConnection:
    deadline = time.monotonic() + 15
    while True:
        try:
            return await websockets.connect(url, subprotocols=[Subprotocol("graphql-ws")])
        except InvalidStatus:  # 503 while the region's loss is being detected
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_a_lost_region_closes_websockets_and_they_reconnect_elsewhere(
    edge: Edge, regions: dict[str, TinyRegion]
) -> None:
    socket = await _connect_when_possible(f"{edge.ws_url}/graphql/realtime")
    assert json.loads(await socket.recv())["region"] == "near"
    regions["near"].kill()
    with pytest.raises(ConnectionClosed):
        await socket.recv()
    assert socket.close_code == 1012
    socket = await _connect_when_possible(f"{edge.ws_url}/graphql/realtime")
    assert json.loads(await socket.recv())["region"] == "far"
    await socket.close()


async def test_a_region_failing_its_health_check_gets_its_websockets_closed(
    edge: Edge, regions: dict[str, TinyRegion]
) -> None:
    # The region still holds the connection open: the health check is what moves it.
    socket = await _connect_when_possible(f"{edge.ws_url}/graphql")
    assert json.loads(await socket.recv())["region"] == "near"
    regions["near"].unready()
    with pytest.raises(ConnectionClosed):
        await socket.recv()
    assert socket.close_code == 1012
    socket = await _connect_when_possible(f"{edge.ws_url}/graphql")
    assert json.loads(await socket.recv())["region"] == "far"
    await socket.close()
