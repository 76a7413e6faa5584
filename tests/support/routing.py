"""A secondary region's routed write ports, as bootstrap wires them (regions.routing), around
one primary's ports: what the tests of "the primary cannot be reached" go through."""

from __future__ import annotations

from domain.model import RegionControl
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
