"""regions.write_availability: what `region { readOnly }` says, from the region's writes and
the probe of the primary's workflow endpoint."""

from __future__ import annotations

import asyncio

import pytest

from domain.commands import Checkout, CheckoutLine
from domain.errors import BackendUnavailableError, ReadOnlyRegionError
from domain.model import RegionControl
from regions.control import TopologyWatcher, WriteFence
from regions.routing import RoutedOrderWorkflows
from regions.write_availability import PrimaryProbe, WriteAvailability
from tests.support.routing import Recording, fence_with

US, EU = "us-east-1", "eu-west-1"
CHECKOUT = Checkout("c-0001", (CheckoutLine("p-0001", 1),), "tok_visa", "key-1")


class Endpoint:
    """A primary's endpoint whose answers the test sets: None answers, an exception is raised,
    "hang" never answers."""

    def __init__(self) -> None:
        self.answer: BaseException | str | None = None
        self.pings = 0

    async def ping(self) -> None:
        self.pings += 1
        if self.answer == "hang":
            await asyncio.sleep(3600)
        elif isinstance(self.answer, BaseException):
            raise self.answer


async def test_read_only_after_probes_in_a_row_fail_writable_when_one_answers() -> None:
    fence = await fence_with(EU, RegionControl(US, 1), None)
    availability = WriteAvailability(fence, failures_to_unreachable=2)
    endpoint = Endpoint()
    probe = PrimaryProbe(availability, fence, {US: endpoint}, timeout=0.05)
    await probe.probe_once()
    assert availability.read_only_reason() is None
    endpoint.answer = BackendUnavailableError("connection refused")
    await probe.probe_once()
    assert availability.read_only_reason() is None  # one lost probe is not an outage
    endpoint.answer = "hang"
    await probe.probe_once()  # the second in a row: no answer within the timeout
    reason = availability.read_only_reason()
    assert reason is not None and "cannot reach the primary region us-east-1" in reason
    endpoint.answer = None
    await probe.probe_once()
    assert availability.read_only_reason() is None


async def test_a_write_that_cannot_reach_the_primary_counts_at_once() -> None:
    fence = await fence_with(EU, RegionControl(US, 1), None)
    availability = WriteAvailability(fence, failures_to_unreachable=2)
    down = Recording(BackendUnavailableError("connection refused"))
    workflows = RoutedOrderWorkflows(fence, {US: down}, availability=availability)
    with pytest.raises(ReadOnlyRegionError):
        await workflows.start_checkout(CHECKOUT, EU)
    reason = availability.read_only_reason()
    assert reason is not None and "connection refused" in reason
    # The next start that goes through says it can write again.
    down.error = None
    await workflows.start_checkout(CHECKOUT, EU)
    assert availability.read_only_reason() is None


async def test_a_superseded_primary_is_read_only_and_a_primary_is_not_probed() -> None:
    endpoint = Endpoint()
    demoted = await fence_with(US, RegionControl(US, 1), RegionControl(EU, 2))
    reason = WriteAvailability(demoted).read_only_reason()
    assert reason is not None and "not the primary any more" in reason
    primary = await fence_with(US, RegionControl(US, 1), RegionControl(US, 1))
    availability = WriteAvailability(primary)
    await PrimaryProbe(availability, primary, {EU: endpoint, US: endpoint}).probe_once()
    assert endpoint.pings == 0 and availability.read_only_reason() is None


async def test_the_probe_follows_a_promotion() -> None:
    """After a promotion the probe asks the new primary, and what the old one did no longer
    counts."""
    us, eu = Endpoint(), Endpoint()
    us.answer = BackendUnavailableError("connection refused")
    known: list[RegionControl | None] = [None]

    async def read() -> RegionControl | None:
        return known[0]

    watcher = TopologyWatcher(read)
    fence = WriteFence("ap-southeast-2", RegionControl(US, 1), watcher)
    availability = WriteAvailability(fence, failures_to_unreachable=1)
    probe = PrimaryProbe(availability, fence, {US: us, EU: eu})
    await probe.probe_once()
    assert availability.read_only_reason() is not None
    known[0] = RegionControl(EU, 2)
    await watcher.refresh()
    assert availability.read_only_reason() is None  # EU: nothing failed there
    await probe.probe_once()
    assert (us.pings, eu.pings) == (1, 1) and availability.read_only_reason() is None
