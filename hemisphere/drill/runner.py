"""The scenario runner: simulated users in every location, a region killed through the control
endpoint, the recovery driven and waited for, every observation recorded.

    before      users in every location (readers, a shopper, a probe, a subscriber) through
                their edges for `duration` seconds; then the readers, in turn, through the
                primary alone (the single-region baseline) and straight to each region's API
                (service time), `duration`/2 each, the rest of the users going on
    fault       stop a region (secondary-loss: a secondary; primary-loss: the primary, then
                promote the nearest secondary once every location has seen ReadOnlyRegion,
                or after --promote-after seconds); wait for traffic to move or for the first
                write accepted; `duration` seconds degraded
    restore     start the region; wait until its location is served by it again and /status
                says it is resynchronized; `duration` seconds
    end         users stop; every acknowledged order is read from the primary until it is
                final (up to 60 s after the promotion); every region's copy is compared

Waits are bounded (`settle_timeout`): a step that does not happen is missing from the
timeline, and the drill goes on.

It stays one module over 400 lines: the phases above are one scenario, sharing its users,
its clock and its timeline."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

import aiohttp

from hemisphere.drill.baseline import baseline_urls
from hemisphere.drill.conditions import all_healthy, read_only_everywhere, served, write_accepted
from hemisphere.drill.control import ControlClient, ControlError
from hemisphere.drill.finals import (
    FINAL_READ_TIMEOUT_S,
    OrderReader,
    compare_regions,
    settle_orders,
)
from hemisphere.drill.graphql import client
from hemisphere.drill.realtime import subscribe_forever
from hemisphere.drill.records import (
    Action,
    Clock,
    Json,
    Observations,
    Request,
    ResyncCheck,
    StatusPoll,
)
from hemisphere.drill.rpo import FINAL_WITHIN_S
from hemisphere.drill.tokens import CustomerTokens
from hemisphere.drill.topology import Topology
from hemisphere.drill.users import (
    SHOPPERS,
    Target,
    browse_everything,
    prober,
    reader,
    shopper,
)

Scenario = Literal["secondary-loss", "primary-loss", "both"]
STATUS_INTERVAL_S = 0.5
WAIT_STEP_S = 0.1
# The end: how long the last orders may take to become final (and projected) when there was
# no promotion; the returning region's check compares the latest RESYNC_ORDERS orders.
SETTLE_S = 30.0
# A promotion the control endpoint refused is tried again, a few times.
PROMOTE_ATTEMPTS = 3
PROMOTE_RETRY_S = 5.0
RESYNC_ORDERS = 20
# The baseline and service-time stretches: half of --duration, at least this long.
MIN_CALIBRATION_S = 2.0


@dataclass(frozen=True, slots=True)
class DrillOptions:
    scenario: Scenario
    users: int = 2  # readers per location
    duration: float = 20.0  # seconds of each steady stretch: before, degraded, after
    # Seconds of the same load before `before` is measured: a region just started (or `up`
    # just up) replays its stream and fills its caches; a warm stack is what is compared.
    warmup: float = 10.0
    checkout_interval: float = 3.0  # per location
    think: float = 0.2  # a reader's pause between reads
    secondary: str | None = None  # which secondary secondary-loss kills
    promote_after: float | None = None  # None: once every location saw ReadOnlyRegion
    settle_timeout: float = 60.0


@dataclass
class DrillRun:
    observations: Observations
    # The same reads during `before`: through the primary alone at each location's RTT to it
    # (keyed by location), and straight to each region's API without any delay (by region).
    baseline: list[Request]
    direct: list[Request]


class Drill:
    def __init__(
        self,
        topology: Topology,
        options: DrillOptions,
        control: ControlClient,
        tokens: CustomerTokens,
        log: Callable[[str], None] = print,
    ) -> None:
        """`tokens`: the customers' tokens (of the development issuer `up` runs)."""
        self.topology = topology
        self.options = options
        self.control = control
        self.tokens = tokens
        self.clock = Clock()
        self._log = log
        self.primary = topology.primary
        self.observations = Observations(
            started=self.clock(), locations=topology.locations, primary=topology.primary
        )
        self.baseline: list[Request] = []
        self.direct: list[Request] = []
        self._seeds = itertools.count(1)

    def log(self, message: str) -> None:
        self._log(f"[{self.clock() - self.observations.started:7.1f}s] {message}")

    async def run(self) -> DrillRun:
        status = await self.control.status()  # fails at once if `up` does not answer
        self.primary = str(status.get("primary") or self.topology.primary)
        self.observations.primary = self.primary
        async with self._http() as http, contextlib.AsyncExitStack() as background:
            tasks: list[asyncio.Task[None]] = [asyncio.create_task(self._poll_status())]
            await self._until(
                "every region healthy",
                lambda: all_healthy(self.observations, self.topology.regions),
            )
            tasks += self._users(http)
            background.callback(_cancel, tasks)
            where = ", ".join(self.topology.locations)
            self.log(f"users running in {where}; primary {self.primary}")
            tasks += await self._before(http)
            for scenario in self._scenarios():
                if scenario == "secondary-loss":
                    await self._secondary_loss(http["drill"])
                else:
                    await self._primary_loss(http["drill"])
            self.log("users stop")
            await _stop(tasks)
            await self._settle(http)
        self.observations.ended = self.clock()
        return DrillRun(self.observations, self.baseline, self.direct)

    def _scenarios(self) -> list[str]:
        if self.options.scenario == "both":
            return ["secondary-loss", "primary-loss"]
        return [self.options.scenario]

    @contextlib.asynccontextmanager
    async def _http(self) -> AsyncIterator[dict[str, aiohttp.ClientSession]]:
        """One HTTP client per location (and one for the end's reads)."""
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                name: await stack.enter_async_context(client(self.topology.api_key))
                for name in self.topology.locations
            }
            clients["drill"] = await stack.enter_async_context(
                client(self.topology.api_key, timeout=FINAL_READ_TIMEOUT_S)
            )
            yield clients

    def _target(self, http: aiohttp.ClientSession, location: str, url: str) -> Target:
        obs = self.observations
        return Target(location, url, http, self.clock, obs.requests, obs.acknowledged, self.tokens)

    def _users(self, http: dict[str, aiohttp.ClientSession]) -> list[asyncio.Task[None]]:
        """Per location: the probe, the shopper and the subscriber (readers apart)."""
        obs, options = self.observations, self.options
        tasks = []
        for location in self.topology.locations:
            target = self._target(http[location], location, self.topology.edges[location])
            tasks.append(asyncio.create_task(prober(target)))
            tasks.append(
                asyncio.create_task(shopper(target, next(self._seeds), options.checkout_interval))
            )
            tasks.append(
                asyncio.create_task(
                    subscribe_forever(
                        location,
                        self.topology.edge_realtime(location),
                        self.topology.api_key,
                        SHOPPERS,
                        self.tokens,
                        self.clock,
                        obs.deliveries,
                        obs.connections,
                    )
                )
            )
        return tasks

    def _readers(self, targets: list[Target]) -> list[asyncio.Task[None]]:
        """`users` readers on each target."""
        return [
            asyncio.create_task(reader(target, next(self._seeds), self.options.think))
            for target in targets
            for _ in range(self.options.users)
        ]

    async def _before(self, http: dict[str, aiohttp.ClientSession]) -> list[asyncio.Task[None]]:
        """The steady stretch through the edges, then the same readers, in turn, through the
        primary alone at each location's RTT to it (the baseline), then straight to each
        region's API (its service time). The shoppers, probes and subscribers go on all along,
        so the three are measured under the same load. Returns the edge readers, running."""
        edge = [
            self._target(http[location], location, self.topology.edges[location])
            for location in self.topology.locations
        ]
        # Every read once in every location first: each path is then measured on caches
        # that hold what a shop's visitors read (the edges' stretch came first, on colder
        # caches than the baseline's and the service time's that followed it).
        browsed = await asyncio.gather(*(browse_everything(target) for target in edge))
        failed = sum(1 for made in browsed for request in made if not request.ok)
        self.log(f"browsed: every read once in each location ({failed} failed)")
        readers = self._readers(edge)
        if self.options.warmup > 0:
            self.log(f"warm-up: {self.options.warmup:.0f} s, not measured")
            await asyncio.sleep(self.options.warmup)
        self.observations.steady_from = self.clock()
        self.log(f"before: {self.options.duration:.0f} s steady")
        await asyncio.sleep(self.options.duration)
        stretch = max(MIN_CALIBRATION_S, self.options.duration / 2)
        await _stop(readers)
        async with (
            baseline_urls(self.topology, self.primary) as urls,
            contextlib.AsyncExitStack() as stack,
        ):
            baseline = []
            for location, url in urls.items():
                base = await stack.enter_async_context(client(self.topology.api_key))
                baseline.append(
                    Target(location, url, base, self.clock, self.baseline, [], self.tokens)
                )
            self.log(
                f"baseline: {stretch:.0f} s of the same reads, every location on {self.primary}"
            )
            readers = self._readers(baseline)
            await asyncio.sleep(stretch)
            await _stop(readers)
            direct = []
            for region, urls_of in self.topology.regions.items():
                own = await stack.enter_async_context(client(self.topology.api_key))
                direct.append(
                    Target(region, urls_of.graphql, own, self.clock, self.direct, [], self.tokens)
                )
            self.log(f"service time: {stretch:.0f} s of the same reads, each region's API directly")
            readers = self._readers(direct)
            await asyncio.sleep(stretch)
            await _stop(readers)
        return self._readers(edge)

    async def _secondary_loss(self, http: aiohttp.ClientSession) -> None:
        secondaries = [r for r in self.topology.regions if r != self.primary]
        region = (
            self.options.secondary
            or self.topology.latency.nearest_first(self.primary, secondaries)[-1]
        )
        killed = await self._act("stop", region, "secondary-loss")
        await self._until(
            f"{region}'s users served elsewhere",
            lambda: served(self.observations, region, killed, lambda by: by != region),
        )
        await self._degraded()
        await self._restore(region, http)

    async def _primary_loss(self, http: aiohttp.ClientSession) -> None:
        old = self.primary
        killed = await self._act("stop", old, "primary-loss")
        if self.options.promote_after is None:
            await self._until(
                "every location read-only",
                lambda: read_only_everywhere(self.observations, killed),
                within=15.0,
            )
        else:
            await asyncio.sleep(self.options.promote_after)
        new = self.topology.nearest_secondary(old)
        for attempt in range(1, PROMOTE_ATTEMPTS + 1):
            promoted = await self._act("promote", new)
            if self.observations.actions[-1].ok or await self._primary_is(new):
                self.primary = new
                break
            if attempt < PROMOTE_ATTEMPTS:
                await asyncio.sleep(PROMOTE_RETRY_S)  # as an operator would: look, try again
        await self._until(
            "a write accepted",
            lambda: write_accepted(self.observations, promoted),
            within=30.0,
        )
        await self._degraded()
        await self._restore(old, http)

    async def _degraded(self) -> None:
        self.log(f"degraded: {self.options.duration:.0f} s")
        await asyncio.sleep(self.options.duration)

    async def _restore(self, region: str, http: aiohttp.ClientSession) -> None:
        started = await self._act("start", region)
        await self._until(
            f"{region} serving its users again",
            lambda: served(self.observations, region, started, region.__eq__),
        )
        await self._resync(region, http)
        self.log(f"after: {self.options.duration:.0f} s steady")
        await asyncio.sleep(self.options.duration)

    async def _act(
        self, name: Literal["stop", "start", "promote"], region: str, scenario: str = ""
    ) -> float:
        self.log(f"{name} {region}")
        requested = self.clock()
        try:
            answer: Json | None = await self.control.act(name, region)
            ok, detail = True, str(answer)
        except ControlError as error:
            answer, ok, detail = None, False, str(error)
        self.observations.actions.append(
            Action(name, region, requested, self.clock(), ok, detail[:300], answer, scenario)
        )
        self.log(f"{name} {region}: {'done' if ok else 'FAILED'} {detail[:200]}")
        return requested

    async def _until(
        self, what: str, condition: Callable[[], bool], within: float | None = None
    ) -> bool:
        deadline = self.clock() + (within or self.options.settle_timeout)
        while not condition():
            if self.clock() >= deadline:
                self.log(f"gave up waiting for: {what}")
                return False
            await asyncio.sleep(WAIT_STEP_S)
        self.log(what)
        return True

    async def _primary_is(self, region: str) -> bool:
        """Whether a promotion that answered an error happened all the same."""
        try:
            status = await self.control.status()
        except ControlError:
            return False
        if status.get("primary") == region:
            self.log(f"/status names {region} primary: the promotion went through")
            return True
        return False

    async def _resync(self, region: str, http: aiohttp.ClientSession) -> None:
        """Until `region` holds the latest acknowledged orders that are final in the primary as
        the primary does (or the settle timeout): a comparison a second, each recorded."""
        deadline = self.clock() + self.options.settle_timeout
        regions = self.topology.regions
        while True:
            verdict = await compare_regions(
                self._orders(http),
                regions[self.primary].graphql,
                {region: regions[region].graphql},
                [a.order_id for a in self.observations.acknowledged],
                deadline=0.0,  # one comparison: this loop retries
                clock=self.clock,
                latest=RESYNC_ORDERS,
            )
            equal = verdict[region] == "equal"
            self.observations.resync_checks.append(ResyncCheck(region, self.clock(), equal))
            if equal:
                self.log(f"{region} resynchronized: its copy of the latest orders is equal")
                return
            if self.clock() >= deadline:
                self.log(f"gave up waiting for: {region} resynchronized ({verdict[region]})")
                return
            await asyncio.sleep(1.0)

    def _orders(self, http: aiohttp.ClientSession) -> OrderReader:
        """Reads the acknowledged orders back, each as its customer."""
        return OrderReader.of(http, self.tokens, self.observations.acknowledged)

    async def _poll_status(self) -> None:
        while True:
            begun = self.clock()
            try:
                status: Json | None = await self.control.status()
            except ControlError:
                status = None
            self.observations.status.append(StatusPoll(self.clock(), status))
            self.observations.load.append((self.clock(), os.getloadavg()[0]))
            await asyncio.sleep(max(0.0, STATUS_INTERVAL_S - (self.clock() - begun)))

    async def _settle(self, http: dict[str, aiohttp.ClientSession]) -> None:
        order_ids = [a.order_id for a in self.observations.acknowledged]
        promotions = [a.answered for a in self.observations.actions if a.name == "promote"]
        deadline = max([self.clock() + SETTLE_S, *(t + FINAL_WITHIN_S for t in promotions)])
        primary_url = self.topology.regions[self.primary].graphql
        self.log(f"reading {len(order_ids)} acknowledged orders from {self.primary} until final")
        self.observations.final_orders = await settle_orders(
            self._orders(http["drill"]), primary_url, order_ids, deadline, self.clock
        )
        others = {r: u.graphql for r, u in self.topology.regions.items() if r != self.primary}
        self.observations.data_equal = dict(
            await compare_regions(
                self._orders(http["drill"]),
                primary_url,
                others,
                order_ids,
                self.clock() + 30.0,
                self.clock,
            )
        )
        self.log("done")


def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    _cancel(tasks)
    await asyncio.gather(*tasks, return_exceptions=True)
