"""Where /metrics is served: on the API's own port (a route, no API key: scrapers carry
none, and the figures name no customer), on a port of its own (HEMISPHERE_METRICS=PORT,
to keep it off a public listener), or nowhere (HEMISPHERE_METRICS=off)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from prometheus_client import start_http_server
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hemisphere.metrics import CONTENT_TYPE, ApiMetrics
from hemisphere.runtime import Runtime
from hemisphere.settings import Settings, SettingsError


def metrics_routes(settings: Settings, metrics: ApiMetrics | None) -> list[Route]:
    if metrics is None or settings.metrics_port is not None:
        return []

    async def scrape(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return [Route("/metrics", scrape, methods=["GET"])]


@contextlib.asynccontextmanager
async def serving_metrics(
    settings: Settings, metrics: ApiMetrics | None, runtime: Runtime
) -> AsyncIterator[None]:
    """While the app runs: its runtime's collectors served too, and the port of its own
    listening when one is configured."""
    if metrics is None:
        yield
        return
    metrics.attach(runtime.collectors)
    server = None
    try:
        if settings.metrics_port is not None:
            try:
                server, _ = start_http_server(settings.metrics_port, registry=metrics.registry)
            except OSError as error:
                raise SettingsError(
                    f"HEMISPHERE_METRICS={settings.metrics_port}: cannot listen there ({error})"
                ) from None
        yield
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        metrics.detach()
