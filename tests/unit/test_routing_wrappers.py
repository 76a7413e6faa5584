"""Write routing without sockets: where writes go, and how an unreachable primary reads."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from domain.commands import CancelOrder, Checkout, CheckoutLine, UpdateCustomerProfile
from domain.errors import (
    BackendUnavailableError,
    IdempotencyConflictError,
    ProjectionStoreUnavailableError,
    ReadOnlyRegionError,
)
from hemisphere.settings import Settings
from hemisphere.write_path import write_endpoints
from regions.routing import RoutedOrderWorkflows, WriteEndpoints, WriteTarget, write_target
from tests.support.routing import from_secondary, profiles_from_secondary

CHECKOUT = Checkout("c-0001", (CheckoutLine("p-0001", 1),), "tok_visa", "key-1")
CANCEL = CancelOrder("o-1", "key-2")
PROFILE = UpdateCustomerProfile("c-0001", "Ada", None, "key-3")


def test_the_primary_writes_to_its_own_endpoint() -> None:
    settings = Settings(
        region="us-east-1",
        primary_region="us-east-1",
        aws_endpoint_url="http://local:5000",
        primary_aws_endpoint_url="http://elsewhere:5000",
    )
    target = write_target(write_endpoints(settings))
    assert target == WriteTarget("us-east-1", "us-east-1", "http://local:5000")
    assert not target.is_remote


@pytest.mark.parametrize(
    ("aws_endpoint", "primary_endpoint", "expected"),
    [
        ("http://local:5000", "http://primary:5000", "http://primary:5000"),
        # One local endpoint serving every region.
        ("http://local:5000", None, "http://local:5000"),
        # On AWS: the primary's regional endpoint, chosen by botocore from the region name.
        (None, None, None),
    ],
)
def test_a_secondary_writes_to_the_primary(
    aws_endpoint: str | None, primary_endpoint: str | None, expected: str | None
) -> None:
    settings = Settings(
        region="eu-west-1",
        primary_region="us-east-1",
        aws_endpoint_url=aws_endpoint,
        primary_aws_endpoint_url=primary_endpoint,
    )
    target = write_target(write_endpoints(settings))
    assert target == WriteTarget("eu-west-1", "us-east-1", expected)
    assert target.is_remote


def test_the_settings_name_every_endpoint_routing_decides_from() -> None:
    settings = Settings(
        region="eu-west-1",
        primary_region="us-east-1",
        aws_endpoint_url="http://eu:1",
        primary_aws_endpoint_url="http://us-direct:1",
        region_endpoints={"us-east-1": "http://us:1"},
    )
    assert write_endpoints(settings) == WriteEndpoints(
        "eu-west-1", "us-east-1", "http://eu:1", "http://us-direct:1", {"us-east-1": "http://us:1"}
    )


class FakeWorkflows:
    def __init__(self, error: BaseException | None = None, hang: bool = False) -> None:
        self.error = error
        self.hang = hang
        self.calls: list[object] = []

    async def _act(self, call: object) -> None:
        self.calls.append(call)
        if self.hang:
            await asyncio.sleep(3600)
        if self.error is not None:
            raise self.error

    async def start_checkout(self, command: Checkout, placed_in: str) -> bool:
        await self._act((command, placed_in))
        return False

    async def start_cancellation(self, command: CancelOrder) -> None:
        await self._act(command)


def secondary(inner: FakeWorkflows, deadline: float = 3.0) -> RoutedOrderWorkflows:
    return from_secondary(inner, deadline_seconds=deadline)


async def test_a_reachable_primary_is_called_once_through() -> None:
    inner = FakeWorkflows()
    await secondary(inner).start_checkout(CHECKOUT, "eu-west-1")
    await secondary(inner).start_cancellation(CANCEL)
    assert inner.calls == [(CHECKOUT, "eu-west-1"), CANCEL]


@pytest.mark.parametrize(
    "outage",
    [
        BackendUnavailableError("connection refused by http://127.0.0.1:1"),
        ProjectionStoreUnavailableError("any BackendUnavailableError subclass"),
    ],
)
async def test_an_unreachable_primary_makes_the_region_read_only(
    outage: BackendUnavailableError,
) -> None:
    inner = FakeWorkflows(error=outage)
    for call in (
        secondary(inner).start_checkout(CHECKOUT, "eu-west-1"),
        secondary(inner).start_cancellation(CANCEL),
    ):
        with pytest.raises(ReadOnlyRegionError) as raised:
            await call
        assert raised.value.error_type == "ReadOnlyRegion"
        assert "us-east-1" in raised.value.message
        assert "eu-west-1" in raised.value.message
        assert outage.message in raised.value.message
        assert raised.value.__cause__ is outage
    assert len(inner.calls) == 2  # no retries of its own


async def test_a_hung_primary_is_read_only_at_the_deadline() -> None:
    inner = FakeWorkflows(hang=True)
    started = time.monotonic()
    with pytest.raises(ReadOnlyRegionError, match=r"no answer within 0\.2s"):
        await secondary(inner, deadline=0.2).start_checkout(CHECKOUT, "eu-west-1")
    assert time.monotonic() - started < 0.5


async def test_answers_of_the_primary_pass_unchanged() -> None:
    conflict = IdempotencyConflictError("key-1 was used for another checkout")
    with pytest.raises(IdempotencyConflictError):
        await secondary(FakeWorkflows(error=conflict)).start_checkout(CHECKOUT, "eu-west-1")


class FakeProfiles:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error

    async def submit(self, command: UpdateCustomerProfile) -> tuple[str, datetime]:
        if self.error is not None:
            raise self.error
        return "pu-1", datetime(2026, 1, 1, tzinfo=UTC)


async def test_profile_updates_to_an_unreachable_bus_are_read_only() -> None:
    assert (await profiles_from_secondary(FakeProfiles()).submit(PROFILE))[0] == "pu-1"
    with pytest.raises(ReadOnlyRegionError, match="us-east-1"):
        down = FakeProfiles(BackendUnavailableError("bus down"))
        await profiles_from_secondary(down).submit(PROFILE)
