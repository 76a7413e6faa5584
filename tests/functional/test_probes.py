"""/healthz and /readyz over a fake runtime: alive, ready, unready with the failing check,
draining; unauthenticated; answered from cached results, not a backend call per probe."""

from __future__ import annotations

from dataclasses import replace

from starlette.applications import Starlette

from hemisphere.app import create_app
from hemisphere.readiness import Probe, Readiness
from tests.support.app import SETTINGS, client_for, fake_runtime, runtime_factory
from tests.support.fakes import InMemoryReader


class Backend:
    def __init__(self) -> None:
        self.calls = 0
        self.down: str | None = None

    async def check(self) -> None:
        self.calls += 1
        if self.down is not None:
            raise ConnectionRefusedError(self.down)


def app_with(backend: Backend, readiness: Readiness, *, region: str = "us-east-1") -> Starlette:
    runtime = replace(
        fake_runtime(InMemoryReader()), probes=(Probe("postgres", "PostgreSQL", backend.check),)
    )
    settings = replace(SETTINGS, region=region)
    return create_app(settings, runtime_factory=runtime_factory(runtime), readiness=readiness)


async def test_alive_and_ready_without_credentials() -> None:
    backend = Backend()
    app = app_with(backend, Readiness())
    async with client_for(app) as client:
        alive = await client.get("/healthz")
        ready = await client.get("/readyz")
        alias = await client.get("/health")
    assert alive.status_code == 200 and alive.json() == {"status": "alive"}
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "region": "us-east-1",
        "role": "primary",
        "checks": {"postgres": "ok"},
    }
    assert alias.status_code == 200 and alias.json() == ready.json()


async def test_a_failing_backend_fails_readiness_with_its_reason_but_no_address() -> None:
    backend = Backend()
    readiness = Readiness()
    app = app_with(backend, readiness, region="eu-west-1")
    async with client_for(app) as client:
        backend.down = "Connect call failed ('10.1.2.3', 5432)"
        await readiness.refresh()
        unready = await client.get("/readyz")
        alive = await client.get("/healthz")
        backend.down = None
        await readiness.refresh()
        again = await client.get("/readyz")
    assert unready.status_code == 503
    body = unready.json()
    assert body["status"] == "unready" and body["role"] == "secondary"
    assert body["checks"]["postgres"].startswith("ConnectionRefusedError")
    assert "10.1.2.3" not in unready.text and "5432" not in unready.text
    assert alive.status_code == 200  # alive, only not ready: no restart for a backend outage
    assert again.status_code == 200


async def test_probes_answer_from_cached_results() -> None:
    backend = Backend()
    app = app_with(backend, Readiness(interval=3600))
    async with client_for(app) as client:
        for _ in range(20):
            assert (await client.get("/readyz")).status_code == 200
    assert backend.calls == 1  # the start-up refresh only


async def test_draining_is_not_ready() -> None:
    readiness = Readiness()
    app = app_with(Backend(), readiness)
    async with client_for(app) as client:
        readiness.draining = True
        draining = await client.get("/readyz")
    assert draining.status_code == 503
    assert draining.json()["checks"]["draining"] == "shutting down"


async def test_a_check_that_hangs_counts_as_failed() -> None:
    import asyncio

    async def hangs() -> None:
        await asyncio.sleep(3600)

    readiness = Readiness(timeout=0.05)
    readiness.watch([Probe("dynamodb", "DynamoDB", hangs)])
    report = await readiness.refresh()
    assert not report.ready and report.checks["dynamodb"] == "no answer within 0.05s"
