"""The single-region baseline: every location served by the primary region alone.

What a user of location L would see without Hemisphere's regions is the primary's API at the
RTT between L and the primary. The drill builds that path with the same part the edges and
every cross-region link use: a delay proxy (regions/delay_proxy.py) per location, in front of
the primary's own API, adding half of RTT(L, primary) in each direction. In the `before` phase
the drill's readers take this path for a stretch instead of their edges, with the same reads,
while the shoppers, probes and subscribers go on: both paths are measured under the same load
on the same machine."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

from hemisphere.drill.topology import Topology


@contextlib.asynccontextmanager
async def baseline_urls(topology: Topology, primary: str) -> AsyncIterator[dict[str, str]]:
    """{location: a GraphQL URL that reaches `primary`'s API at RTT(location, primary)}."""
    from regions.delay_proxy import DelayProxy, ProxySpec

    target = urlsplit(topology.regions[primary].graphql)
    async with contextlib.AsyncExitStack() as stack:
        urls: dict[str, str] = {}
        for location in topology.locations:
            spec = ProxySpec(
                listen_host="127.0.0.1",
                listen_port=0,
                target_host=target.hostname or "127.0.0.1",
                target_port=target.port or 80,
                one_way_seconds=topology.latency.one_way_seconds(location, primary),
                name=f"baseline {location}→{primary}",
            )
            proxy = await stack.enter_async_context(DelayProxy(spec))
            netloc = f"127.0.0.1:{proxy.port}"
            urls[location] = urlunsplit(target._replace(netloc=netloc))
        yield urls
