"""Write routing: read local, write global.

Every region reads its own projections; every write goes to the primary region: sagas start
in the primary's Step Functions, profile updates go on the primary's event bus. From a
secondary that is a cross-region call, and when it cannot be made the region is read-only:
the mutation fails at once with errorType ReadOnlyRegion and nothing is started, rather than
hanging on a dead endpoint or answering a vague ServiceUnavailable.

This module decides where writes go (`write_target`; the composition root opens clients there
that fail fast) and wraps the write ports so that "the primary cannot be reached" and "this
region knows no way to the primary" read as ReadOnlyRegionError (`read_only`, the one place
that says it). The composition root always hands the resolvers write ports, wrapped here:
a region that cannot write has no missing port, only ports that answer ReadOnlyRegion.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from domain.commands import CancelOrder, Checkout, UpdateCustomerProfile, UpsertProduct
from domain.errors import BackendUnavailableError, ReadOnlyRegionError
from domain.model import Product, RegionControl
from regions.control import WriteFence
from regions.write_availability import WriteAvailability
from resolvers.ports import Catalog, OrderWorkflows, ProfileUpdates

P = TypeVar("P")  # one region's write ports

# The wrappers' own bound on one write call, whatever the client underneath is configured
# with: past it the primary counts as unreachable.
DEFAULT_DEADLINE_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class WriteEndpoints:
    """The AWS endpoints writes can go to, as configured: what `write_target` decides from.
    The composition root builds it from its settings (hemisphere.write_path.write_endpoints),
    which regions/ may not import."""

    region: str  # this instance's region
    primary_region: str  # the configured primary
    # This region's endpoint (AWS_ENDPOINT_URL); None means AWS's own.
    own: str | None = None
    # The configured primary's, as a secondary reaches it (HEMISPHERE_PRIMARY_AWS_ENDPOINT_URL).
    primary: str | None = None
    # Every region's, when they are named (HEMISPHERE_REGION_ENDPOINTS).
    by_region: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WriteTarget:
    """Where this region's writes go."""

    region: str  # this instance's region
    primary_region: str  # where the sagas run and the event bus lives
    # The primary's AWS endpoint; None means AWS's own endpoint for `primary_region`.
    endpoint_url: str | None

    @property
    def is_remote(self) -> bool:
        """Whether writes cross regions (this region is a secondary)."""
        return self.region != self.primary_region


def write_target(endpoints: WriteEndpoints, primary_region: str | None = None) -> WriteTarget:
    """Where writes go when `primary_region` (default: the configured one) is the primary.
    `by_region` names every region's endpoint when set. Otherwise, in the primary, writes
    stay in this region's endpoint; in a secondary they go to the configured primary's;
    without it, to this region's when set (one local endpoint serving every region), else to
    AWS's regional endpoint of the primary."""
    primary = primary_region or endpoints.primary_region
    if primary in endpoints.by_region:
        endpoint: str | None = endpoints.by_region[primary]
    elif endpoints.region == primary:
        endpoint = endpoints.own
    elif primary == endpoints.primary_region:
        endpoint = endpoints.primary or endpoints.own
    else:
        endpoint = None  # a promoted region nobody named an endpoint for: AWS's own
    return WriteTarget(endpoints.region, primary, endpoint)


def read_only(region: str, why: str) -> ReadOnlyRegionError:
    """The answer of every write this region cannot make now (the primary down or unknown
    here): nothing was written. A call that timed out may have reached the primary after all;
    the write's deterministic name (execution name, request id) makes a retry with the same
    idempotencyKey safe either way."""
    return ReadOnlyRegionError(
        f"region {region} {why}: it serves reads only until it can. "
        "Retry later with the same idempotencyKey."
    )


class _PrimaryGuard:
    """Turns "the primary cannot be reached" into ReadOnlyRegionError, and tells
    `availability` (when given) whether the call reached the primary."""

    def __init__(
        self,
        region: str,
        primary_region: str,
        deadline_seconds: float,
        availability: WriteAvailability | None = None,
    ) -> None:
        self.region = region
        self.primary_region = primary_region
        self.deadline_seconds = deadline_seconds
        self.availability = availability

    @contextlib.asynccontextmanager
    async def reachable(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.deadline_seconds):
                yield
        except BackendUnavailableError as exc:
            raise self._missed(exc.message) from exc
        except TimeoutError as exc:
            raise self._missed(f"no answer within {self.deadline_seconds:g}s") from exc
        if self.availability is not None:
            self.availability.reached(self.primary_region)

    def _missed(self, cause: str) -> ReadOnlyRegionError:
        if self.availability is not None:
            self.availability.missed(self.primary_region, cause, by_a_write=True)
        return self._read_only(cause)

    def _read_only(self, cause: str) -> ReadOnlyRegionError:
        return read_only(
            self.region, f"cannot reach the primary region {self.primary_region} ({cause})"
        )


# --- following the replicated topology --------------------------------------------------------


class _Router:
    """The fence at the mutation start, then the ports of the primary the newest topology
    record names: this region's own, or another region's behind the read-only guard.
    `setting`: what names every region's ports (said when the primary's is not known)."""

    def __init__(
        self,
        fence: WriteFence,
        deadline_seconds: float,
        setting: str = "HEMISPHERE_REGION_ENDPOINTS",
        availability: WriteAvailability | None = None,
    ) -> None:
        self.fence = fence
        self.deadline_seconds = deadline_seconds
        self.setting = setting
        self.availability = availability

    def primary(self, known: Mapping[str, object]) -> tuple[RegionControl, _PrimaryGuard | None]:
        """The primary (and its epoch) writes go to now, and the guard to call it through."""
        self.fence.check()
        primary = self.fence.primary()
        region = primary.primary_region
        if region not in known:
            raise read_only(
                self.fence.region,
                f"knows no endpoint of the primary region {region} ({self.setting})",
            )
        if region == self.fence.region:
            return primary, None
        guard = _PrimaryGuard(self.fence.region, region, self.deadline_seconds, self.availability)
        return primary, guard

    @contextlib.asynccontextmanager
    async def to_primary(self, known: Mapping[str, P]) -> AsyncIterator[tuple[RegionControl, P]]:
        """The primary now and its ports of `known`, to call within the block: another
        region's behind the guard (unreachable within the deadline: ReadOnlyRegion)."""
        primary, guard = self.primary(known)
        ports = known[primary.primary_region]
        if guard is None:
            yield primary, ports
            return
        async with guard.reachable():
            yield primary, ports


class RoutedOrderWorkflows:
    """OrderWorkflows that follow the primary: `by_region` holds each region's sagas (a
    client of its endpoint); every start is fenced first (a demoted primary answers
    ReadOnlyRegion) and goes to the primary known now."""

    def __init__(
        self,
        fence: WriteFence,
        by_region: Mapping[str, OrderWorkflows],
        *,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        availability: WriteAvailability | None = None,
    ) -> None:
        """`availability`: told whether each start reached the primary (the same endpoint
        its probe asks)."""
        self._router = _Router(fence, deadline_seconds, availability=availability)
        self._by_region = by_region

    async def start_checkout(self, command: Checkout, placed_in: str) -> bool:
        async with self._router.to_primary(self._by_region) as (_, workflows):
            first = await workflows.start_checkout(command, placed_in)
        return first

    async def start_cancellation(self, command: CancelOrder) -> None:
        async with self._router.to_primary(self._by_region) as (_, workflows):
            await workflows.start_cancellation(command)


class RoutedProfileUpdates:
    """ProfileUpdates that follow the primary's event bus, fenced like RoutedOrderWorkflows."""

    def __init__(
        self,
        fence: WriteFence,
        by_region: Mapping[str, ProfileUpdates],
        *,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        self._router = _Router(fence, deadline_seconds)
        self._by_region = by_region

    async def submit(self, command: UpdateCustomerProfile) -> tuple[str, datetime]:
        async with self._router.to_primary(self._by_region) as (_, profiles):
            return await profiles.submit(command)


class CatalogAt(Protocol):
    """Catalog writes in one region's relational model, under the primary and epoch given:
    its transaction checks that the database names the same (a write under a superseded
    epoch writes nothing)."""

    async def upsert_product(self, command: UpsertProduct, under: RegionControl) -> Product: ...


class RoutedCatalog:
    """Catalog writes that follow the primary, as RoutedOrderWorkflows do: a secondary sends
    them to the primary's relational model (the stand-in for Aurora's write forwarding from a
    secondary cluster), a promoted region writes its own at once (no restart), a demoted
    primary refuses them; a primary that cannot be reached is ReadOnlyRegion within the
    deadline."""

    def __init__(
        self,
        fence: WriteFence,
        by_region: Mapping[str, CatalogAt],
        *,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        self._router = _Router(fence, deadline_seconds, "HEMISPHERE_REGION_DATABASE_URLS")
        self._by_region = by_region

    async def upsert_product(self, command: UpsertProduct) -> Product:
        # Written under the primary and epoch it was routed by: one reading of the topology.
        async with self._router.to_primary(self._by_region) as (primary, database):
            return await database.upsert_product(command, primary)


class FencedCatalog:
    """The primary's catalog writes, refused at once by a demoted primary (its transaction
    checks the epoch again: adapters.postgres.topology.EpochFence)."""

    def __init__(self, inner: Catalog, fence: WriteFence) -> None:
        self._inner = inner
        self._fence = fence

    async def upsert_product(self, command: UpsertProduct) -> Product:
        self._fence.check()
        return await self._inner.upsert_product(command)


class CheckoutIntentsAt(Protocol):
    async def record(self, order_id: str, execution_input: str, under: RegionControl) -> bool:
        """Record the checkout's execution input in this region's database, written under
        the primary and epoch given (nothing written under a superseded one). True when
        the order's saga row is new: no step of its saga has run yet."""
        ...


class RoutedCheckoutIntents:
    """Intents recorded in the primary's database, fenced and routed as the catalog's
    writes are (regions.routing.RoutedCatalog)."""

    def __init__(
        self,
        fence: WriteFence,
        by_region: Mapping[str, CheckoutIntentsAt],
        *,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        self._router = _Router(fence, deadline_seconds, "HEMISPHERE_REGION_DATABASE_URLS")
        self._by_region = by_region

    async def record(self, order_id: str, execution_input: str) -> bool:
        async with self._router.to_primary(self._by_region) as (primary, database):
            new = await database.record(order_id, execution_input, primary)
        return new
