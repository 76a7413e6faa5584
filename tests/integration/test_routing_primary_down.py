"""Read local, write global, with a real Step Functions client: a secondary starts the saga in
the primary region, and is read-only, within seconds, when the primary is down."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from adapters.dynamodb.client import is_unavailable
from adapters.stepfunctions import StepFunctionsEndpoint
from domain.commands import CancelOrder, Checkout, CheckoutLine
from domain.errors import BackendUnavailableError, ReadOnlyRegionError
from domain.saga import (
    cancel_execution_name,
    cancel_input,
    checkout_execution_name,
    checkout_input,
    order_id_for,
)
from hemisphere.localstack import free_port
from hemisphere.settings import Settings
from hemisphere.write_path import primary_client, write_endpoints
from regions.routing import RoutedOrderWorkflows, write_target
from regions.write_availability import PrimaryProbe, WriteAvailability
from tests.support.routing import from_secondary, secondary_fence

pytestmark = pytest.mark.integration

CHECKOUT = Checkout("c-0001", (CheckoutLine("p-0001", 2),), "tok_visa", "key-1")


def secondary_settings(primary_endpoint: str) -> Settings:
    return Settings(
        region="eu-west-1",
        primary_region="us-east-1",
        primary_aws_endpoint_url=primary_endpoint,
        aws_endpoint_url="http://127.0.0.1:9",  # this region's own: never used for writes
        aws_access_key_id="hemisphere-local",
        aws_secret_access_key="hemisphere-local",
    )


class StartsExecutions:
    """A minimal OrderWorkflows over a Step Functions client, standing in for
    adapters/stepfunctions.StepFunctionsOrderWorkflows: it translates an unreachable
    endpoint into BackendUnavailableError as that adapter does."""

    def __init__(self, sfn: Any, state_machine_arn: str) -> None:
        self.sfn = sfn
        self.arn = state_machine_arn
        self.started: list[str] = []

    async def _start(self, name: str, payload: str) -> None:
        try:
            answer = await self.sfn.start_execution(
                stateMachineArn=self.arn, name=name, input=payload
            )
        except Exception as error:
            if is_unavailable(error):
                raise BackendUnavailableError(f"Step Functions unreachable: {error}") from error
            raise
        self.started.append(answer["executionArn"])

    async def start_checkout(self, command: Checkout, placed_in: str) -> bool:
        order_id = order_id_for(command.customer_id, command.idempotency_key)
        await self._start(checkout_execution_name(order_id), checkout_input(command, placed_in))
        return False

    async def start_cancellation(self, command: CancelOrder) -> None:
        name = cancel_execution_name(command.order_id, command.idempotency_key)
        await self._start(name, cancel_input(command))


ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:checkout"


async def read_only_within(workflows: RoutedOrderWorkflows, seconds: float) -> ReadOnlyRegionError:
    started = time.monotonic()
    async with asyncio.timeout(seconds + 10):  # a hang fails the test instead of blocking it
        with pytest.raises(ReadOnlyRegionError) as raised:
            await workflows.start_checkout(CHECKOUT, placed_in="eu-west-1")
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"took {elapsed:.2f}s"
    return raised.value


async def test_a_primary_that_is_down_makes_the_secondary_read_only_within_seconds() -> None:
    settings = secondary_settings(f"http://127.0.0.1:{free_port()}")  # nobody listens
    async with primary_client("stepfunctions", settings) as sfn:
        inner = StartsExecutions(sfn, ARN)
        workflows = from_secondary(
            inner, region=settings.region, primary_region=settings.primary_region
        )
        error = await read_only_within(workflows, 3.0)

    assert error.error_type == "ReadOnlyRegion"
    assert "primary region us-east-1" in error.message
    assert isinstance(error.__cause__, BackendUnavailableError)
    assert not inner.started


@pytest.fixture
def unresponsive_primary() -> Iterator[str]:
    """A port whose accept queue is full and never drained: further connection attempts get
    no answer at all, as when a region's network is gone."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the accept queue (its exact size varies)
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        yield f"http://127.0.0.1:{port}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_a_primary_that_never_answers_is_read_only_at_the_deadline(
    unresponsive_primary: str,
) -> None:
    settings = secondary_settings(unresponsive_primary)
    async with primary_client("stepfunctions", settings) as sfn:
        workflows = from_secondary(StartsExecutions(sfn, ARN))
        error = await read_only_within(workflows, 4.0)
    assert "us-east-1" in error.message


@pytest.fixture
async def primary_state_machine(aws_endpoint: str) -> AsyncIterator[tuple[Settings, str]]:
    settings = secondary_settings(aws_endpoint)
    async with primary_client("stepfunctions", settings) as sfn:
        created = await sfn.create_state_machine(
            name=f"checkout-{uuid.uuid4().hex[:8]}",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/hemisphere-sagas",
        )
        yield settings, created["stateMachineArn"]


async def test_a_secondary_starts_the_saga_in_the_primary_region(
    primary_state_machine: tuple[Settings, str],
) -> None:
    settings, arn = primary_state_machine
    assert write_target(write_endpoints(settings)).is_remote
    assert arn.split(":")[3] == "us-east-1"

    async with primary_client("stepfunctions", settings) as sfn:
        inner = StartsExecutions(sfn, arn)
        workflows = from_secondary(inner)
        await workflows.start_checkout(CHECKOUT, placed_in="eu-west-1")
        [execution] = inner.started
        assert execution.split(":")[3] == "us-east-1"
        described = await sfn.describe_execution(executionArn=execution)
    order_id = order_id_for("c-0001", "key-1")
    assert described["name"] == checkout_execution_name(order_id)
    assert json.loads(described["input"])["placedIn"] == "eu-west-1"


async def test_the_probe_tells_a_live_primary_from_a_dead_or_silent_one(
    aws_endpoint: str, unresponsive_primary: str
) -> None:
    """`region { readOnly }` between writes: the secondary's probe of the primary's Step
    Functions, through the client its writes use, against a live endpoint, a closed port and
    one that never answers."""
    fence = secondary_fence("eu-west-1", "us-east-1")
    for endpoint, reachable in (
        (aws_endpoint, True),
        (f"http://127.0.0.1:{free_port()}", False),
        (unresponsive_primary, False),
    ):
        availability = WriteAvailability(fence, failures_to_unreachable=1)
        async with primary_client("stepfunctions", secondary_settings(endpoint)) as sfn:
            probe = PrimaryProbe(availability, fence, {"us-east-1": StepFunctionsEndpoint(sfn)})
            started = time.monotonic()
            await probe.probe_once()
        assert time.monotonic() - started < 1.5  # the probe's own timeout bounds it
        assert (availability.read_only_reason() is None) is reachable, endpoint
