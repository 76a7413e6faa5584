"""What the running app holds: the ports the resolvers use, wired by bootstrap, and what the
process watches and serves besides."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client.registry import Collector

from hemisphere.readiness import Probe
from projections.read_cache import ReadCache
from resolvers.context import Ports

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Runtime:
    # What the resolvers use: every request's Context holds these, as they are.
    ports: Ports
    # The regional read cache (None: off, or no change feed to keep it exact); the reader
    # already answers through it, the HTTP endpoint keeps whole responses in it.
    read_cache: ReadCache | None = None
    # What /readyz checks in the background (backends, projections caught up).
    probes: tuple[Probe, ...] = ()
    # Recreates what the AWS endpoint held (table, control item, state machines, queues,
    # event route, projection items): for a local endpoint that restarted empty.
    restore_aws: Callable[[], Awaitable[None]] | None = None
    # What the app's /metrics serves besides its own (hemisphere.runtime_metrics).
    collectors: tuple[Collector, ...] = ()


@dataclass(frozen=True)
class StartupOptions:
    """What `hemisphere serve` adds to a plain start: demo data and a projection rebuild
    (the local AWS endpoint keeps nothing between runs)."""

    seed_demo_data: bool = False
    rebuild_projections: bool = False
    rebuild_progress: Progress | None = None
    # Whether this process serves the API (its subscribers): then the stream's publication
    # start is settled before it listens (subscriptions.stream_publisher). A worker must not
    # claim it: an API that rebuilds after the worker's claim would publish its rebuild.
    serves_api: bool = True
