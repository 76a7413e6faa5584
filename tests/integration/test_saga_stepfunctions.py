"""The sagas on the local AWS endpoint (moto runs the ASL files, tasks go through SQS), with
the real worker, real PostgreSQL and the fake card provider: every scenario file ends as it
says; a retried checkout starts nothing new; a worker that dies is covered by the queue's
redelivery; an execution that is lost is finished by the reconciler; the projections show
the outcome and equal a rebuild."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.dynamodb.client import create_client as dynamodb_client
from adapters.dynamodb.reader import DynamoProjectionReader
from adapters.dynamodb.table import ensure_table
from adapters.dynamodb.writer import DynamoProjectionWriter
from adapters.postgres.outbox import PostgresOutbox
from adapters.postgres.snapshots import PostgresSnapshotSource
from adapters.stepfunctions import (
    StepFunctionsOrderWorkflows,
    WorkflowEngineUnavailableError,
    ensure_state_machines,
)
from adapters.stepfunctions import create_client as sfn_client
from domain.errors import IdempotencyConflictError
from domain.saga import cancel_execution_name, checkout_execution_name
from hemisphere.localstack import free_port
from projections.projector import Projector
from projections.rebuild import rebuild
from projections.relay import OutboxRelay
from tests.support.payments import FakePaymentProvider
from tests.support.saga import (
    FAST_TIMING,
    Scenario,
    baseline,
    check_invariants,
    checkout_command,
    load_scenarios,
    order_row,
)
from tests.support.saga_engine import Crash
from tests.support.saga_stack import (
    LOCAL,
    REGION,
    ROLE,
    Stack,
    execution_arn,
    finished,
    outcome,
    saga_stack,
)
from workflows.definitions import definitions

pytestmark = pytest.mark.integration

SCENARIOS = load_scenarios()


@pytest.fixture
def provider() -> FakePaymentProvider:
    return FakePaymentProvider(timeout_seconds=0.2)


@pytest.fixture
async def stack(
    pg_dsn: str, aws_endpoint: str, provider: FakePaymentProvider
) -> AsyncIterator[Stack]:
    async with saga_stack(pg_dsn, aws_endpoint, provider) as running:
        yield running


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario_on_step_functions(
    stack: Stack, provider: FakePaymentProvider, scenario: Scenario
) -> None:
    await scenario.stock(stack.pool)
    before = await baseline(stack.pool)

    await stack.workflows.start_checkout(scenario.command, scenario.placed_in)
    name = checkout_execution_name(scenario.order_id)
    checkout = await finished(stack, execution_arn(stack.machines.checkout_arn, name))
    assert outcome(checkout) == scenario.expect["checkout"]

    if scenario.cancel is not None:
        await stack.workflows.start_cancellation(scenario.cancel)
        name = cancel_execution_name(scenario.order_id, scenario.cancel.idempotency_key)
        cancellation = await finished(stack, execution_arn(stack.machines.cancel_arn, name))
        assert outcome(cancellation) == scenario.expect["cancel"]

    assert await order_row(stack.pool, scenario.order_id) == scenario.expect["order"]
    assert provider.money_taken().get(scenario.order_id, 0) == scenario.expect["moneyTaken"]
    await check_invariants(stack.pool, before, provider)


async def test_state_machines_are_ensured_idempotently(stack: Stack) -> None:
    prefix = stack.machines.checkout_arn.rsplit(":", 1)[1].removesuffix("-checkout")
    again = await ensure_state_machines(
        stack.sfn, stack.sqs, definitions(FAST_TIMING), prefix=prefix, role_arn=ROLE,
        visibility_timeout=2,
    )  # fmt: skip
    assert again == stack.machines
    # A changed definition (here, the production budget) updates the machines in place.
    updated = await ensure_state_machines(
        stack.sfn, stack.sqs, definitions(), prefix=prefix, role_arn=ROLE, visibility_timeout=2
    )
    assert updated == stack.machines
    described = await stack.sfn.describe_state_machine(stateMachineArn=updated.checkout_arn)
    definition = json.loads(described["definition"])
    assert definition["TimeoutSeconds"] == 3600
    assert definition["States"]["CreateOrder"]["Parameters"]["QueueUrl"] == updated.queue_url


async def test_a_retried_checkout_starts_nothing_new_and_a_reused_key_conflicts(
    stack: Stack,
) -> None:
    scenario = next(s for s in SCENARIOS if s.name == "visa")
    await scenario.stock(stack.pool)
    await stack.workflows.start_checkout(scenario.command, scenario.placed_in)
    # The client retries while it runs, then after it ended, even from another region.
    await stack.workflows.start_checkout(scenario.command, scenario.placed_in)
    await finished(
        stack,
        execution_arn(stack.machines.checkout_arn, checkout_execution_name(scenario.order_id)),
    )
    await stack.workflows.start_checkout(scenario.command, "ap-southeast-2")

    listed = await stack.sfn.list_executions(stateMachineArn=stack.machines.checkout_arn)
    assert len(listed["executions"]) == 1
    other = checkout_command({**scenario.data["checkout"]["request"], "paymentToken": "tok_other"})
    with pytest.raises(IdempotencyConflictError):
        await stack.workflows.start_checkout(other, scenario.placed_in)


@pytest.mark.parametrize("point", ["ReserveInventory:answer", "CapturePayment:provider"])
async def test_a_worker_that_dies_is_covered_by_the_redelivery(
    stack: Stack, provider: FakePaymentProvider, point: str
) -> None:
    scenario = next(s for s in SCENARIOS if s.name == "visa")
    await scenario.stock(stack.pool)
    before = await baseline(stack.pool)
    stack.faults.at(point, Crash)

    await stack.workflows.start_checkout(scenario.command, scenario.placed_in)
    name = checkout_execution_name(scenario.order_id)
    checkout = await finished(stack, execution_arn(stack.machines.checkout_arn, name))

    assert point not in stack.faults.plan
    assert outcome(checkout) == scenario.expect["checkout"]
    await check_invariants(stack.pool, before, provider)


async def test_a_lost_execution_is_finished_by_the_reconciler(
    stack: Stack, provider: FakePaymentProvider
) -> None:
    scenario = next(s for s in SCENARIOS if s.name == "visa")
    await scenario.stock(stack.pool)
    before = await baseline(stack.pool)
    name = checkout_execution_name(scenario.order_id)
    arn = execution_arn(stack.machines.checkout_arn, name)
    stopping: list[asyncio.Task[Any]] = []

    def lose_the_execution() -> BaseException:
        # AuthorizePayment committed; its worker dies, and Step Functions loses the execution.
        stopping.append(asyncio.create_task(stack.sfn.stop_execution(executionArn=arn)))
        return Crash()

    stack.faults.at("AuthorizePayment:answer", lose_the_execution)
    await stack.workflows.start_checkout(scenario.command, scenario.placed_in)
    assert (await finished(stack, arn))["status"] == "ABORTED"
    assert (await order_row(stack.pool, scenario.order_id))["status"] == "AUTHORIZED"

    [rerun] = await stack.reconciler.run_once()

    assert rerun == f"{name}-r1"
    described = await finished(stack, execution_arn(stack.machines.checkout_arn, rerun))
    assert described["status"] == "SUCCEEDED"
    assert await order_row(stack.pool, scenario.order_id) == scenario.expect["order"]
    assert await stack.reconciler.run_once() == []
    await check_invariants(stack.pool, before, provider)


async def test_the_projections_show_the_outcome_and_equal_a_rebuild(
    stack: Stack, pg_dsn: str, aws_endpoint: str
) -> None:
    scenario = next(s for s in SCENARIOS if s.name == "cancel")
    await scenario.stock(stack.pool)
    await stack.workflows.start_checkout(scenario.command, scenario.placed_in)
    name = checkout_execution_name(scenario.order_id)
    await finished(stack, execution_arn(stack.machines.checkout_arn, name))
    tables = (
        f"hemisphere-saga-{uuid.uuid4().hex[:8]}",
        f"hemisphere-rebuilt-{uuid.uuid4().hex[:8]}",
    )

    async with dynamodb_client(aws_endpoint, REGION, LOCAL) as dynamodb:
        for table in tables:
            await ensure_table(dynamodb, table)
        projected = DynamoProjectionWriter(dynamodb, tables[0])
        outbox = PostgresOutbox(stack.pool, pg_dsn)
        relay = OutboxRelay(outbox, Projector(projected))
        await relay.drain_all()
        reader = DynamoProjectionReader(dynamodb, tables[0])
        order = (await reader.orders_by_id([scenario.order_id]))[scenario.order_id]
        assert order.status.value == "CONFIRMED"
        assert [change.status.value for change in order.history] == [
            "PENDING", "RESERVED", "AUTHORIZED", "CAPTURED", "CONFIRMED"
        ]  # fmt: skip
        assert (await reader.products_by_id(["p-0001"]))["p-0001"].available == 3
        assert (await reader.customers_by_id(["c-0001"]))["c-0001"].loyalty_points == 7 + 29

        assert scenario.cancel is not None
        await stack.workflows.start_cancellation(scenario.cancel)
        name = cancel_execution_name(scenario.order_id, scenario.cancel.idempotency_key)
        await finished(stack, execution_arn(stack.machines.cancel_arn, name))
        await relay.drain_all()
        order = (await reader.orders_by_id([scenario.order_id]))[scenario.order_id]
        assert (order.status.value, order.failure_reason) == ("CANCELLED", "CANCELLED_BY_CUSTOMER")

        await rebuild(
            PostgresSnapshotSource(stack.pool), DynamoProjectionWriter(dynamodb, tables[1])
        )
        items = [
            sorted([item async for item in DynamoProjectionWriter(dynamodb, t).scan_all()], key=str)
            for t in tables
        ]
        assert items[0] == items[1]
        await outbox.aclose()


async def test_an_unreachable_engine_starts_nothing_and_says_so(stack: Stack) -> None:
    scenario = next(s for s in SCENARIOS if s.name == "visa")
    dead = f"http://127.0.0.1:{free_port()}"
    async with sfn_client(dead, REGION, LOCAL) as sfn:
        with pytest.raises(WorkflowEngineUnavailableError):
            await StepFunctionsOrderWorkflows(sfn, stack.machines).start_checkout(
                scenario.command, scenario.placed_in
            )
    listed = await stack.sfn.list_executions(stateMachineArn=stack.machines.checkout_arn)
    assert listed["executions"] == []
