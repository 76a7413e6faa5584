"""A secondary region's routed write ports, as bootstrap wires them (regions.routing), around
one primary's ports: what the tests of "the primary cannot be reached" go through."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.commands import CancelOrder, Checkout, UpdateCustomerProfile, UpsertProduct
from domain.model import Product, RegionControl
from regions.control import TopologyWatcher, WriteFence
from regions.routing import DEFAULT_DEADLINE_SECONDS, RoutedOrderWorkflows, RoutedProfileUpdates
from resolvers.ports import OrderWorkflows, ProfileUpdates


async def _no_record() -> RegionControl | None:
    return None


def secondary_fence(region: str, primary_region: str) -> WriteFence:
    """The fence of `region`, a secondary of `primary_region` (epoch 1, nothing newer known)."""
    return WriteFence(region, RegionControl(primary_region, 1), TopologyWatcher(_no_record))


def from_secondary(
    primary_workflows: OrderWorkflows,
    *,
    region: str = "eu-west-1",
    primary_region: str = "us-east-1",
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
) -> RoutedOrderWorkflows:
    return RoutedOrderWorkflows(
        secondary_fence(region, primary_region),
        {primary_region: primary_workflows},
        deadline_seconds=deadline_seconds,
    )


def profiles_from_secondary(
    primary_profiles: ProfileUpdates,
    *,
    region: str = "eu-west-1",
    primary_region: str = "us-east-1",
) -> RoutedProfileUpdates:
    return RoutedProfileUpdates(
        secondary_fence(region, primary_region), {primary_region: primary_profiles}
    )


class Recording:
    """Every write port of one region: records each call, and raises `error` if set."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.calls: list[str] = []

    async def _act(self, call: str) -> None:
        self.calls.append(call)
        if self.error is not None:
            raise self.error

    async def start_checkout(self, command: Checkout, placed_in: str) -> bool:
        await self._act(f"checkout:{placed_in}")
        return False

    async def start_cancellation(self, command: CancelOrder) -> None:
        await self._act("cancel")

    async def submit(self, command: UpdateCustomerProfile) -> tuple[str, datetime]:
        await self._act("profile")
        return "request-1", datetime(2026, 1, 1, tzinfo=UTC)

    async def upsert_product(self, command: UpsertProduct) -> Product:
        await self._act("upsert")
        raise AssertionError("its answer is never read")


async def fence_with(
    region: str, configured: RegionControl, known: RegionControl | None
) -> WriteFence:
    """The fence of a process of `region` started as `configured`, that knows `known`."""

    async def read() -> RegionControl | None:
        return known

    watcher = TopologyWatcher(read)
    await watcher.refresh()
    return WriteFence(region, configured, watcher)
