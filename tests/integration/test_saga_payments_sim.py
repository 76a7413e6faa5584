"""The card scenarios end to end with the real pieces: moto runs the state machines, the
worker runs the steps on PostgreSQL, and payments go over HTTP to the simulated provider
(the same client a real provider gets). The provider's own ledger then shows money taken
exactly for the confirmed orders, and no hold left behind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from adapters.payments import HttpPaymentProvider
from domain.saga import checkout_execution_name
from hemisphere.payments_sim import PaymentsSimulator
from tests.support.payments_sim import ledger
from tests.support.saga import Scenario, baseline, check_invariants, load_scenarios, order_row
from tests.support.saga_stack import Stack, execution_arn, finished, outcome, saga_stack

pytestmark = pytest.mark.integration

CARDS = ("visa", "charge-declined", "insufficient-funds", "processing-error", "timeout")
SCENARIOS = [s for s in load_scenarios() if s.name in CARDS]


@pytest.fixture(scope="module")
def simulator() -> Iterator[PaymentsSimulator]:
    with PaymentsSimulator() as running:
        yield running


@pytest.fixture
async def stack(
    pg_dsn: str, aws_endpoint: str, simulator: PaymentsSimulator
) -> AsyncIterator[Stack]:
    # tok_timeout never answers: a short client timeout keeps the retries short.
    async with (
        HttpPaymentProvider(simulator.url, timeout_seconds=0.3) as provider,
        saga_stack(pg_dsn, aws_endpoint, provider) as running,
    ):
        yield running


async def test_card_scenarios_through_the_simulated_provider(
    stack: Stack, simulator: PaymentsSimulator
) -> None:
    assert {s.name for s in SCENARIOS} == set(CARDS)
    # One shop for all (the files share it), with stock enough for the two that buy.
    await SCENARIOS[0].stock(stack.pool)
    before = await baseline(stack.pool)
    for scenario in SCENARIOS:
        await run(stack, scenario)
    await check_invariants(stack.pool, before)

    entries = await ledger(simulator.url)
    ours = {scenario.order_id: scenario for scenario in SCENARIOS}
    authorizations = {
        a["id"]: a for a in entries["authorizations"] if a["idempotencyKey"].split(":")[0] in ours
    }
    taken: dict[str, int] = {}
    for capture in entries["captures"]:
        authorization = authorizations.get(capture["authorizationId"])
        if authorization is not None and capture["status"] == "captured":
            order_id = authorization["idempotencyKey"].split(":")[0]
            taken[order_id] = taken.get(order_id, 0) + capture["amount"]
    assert taken == {
        order_id: scenario.expect["moneyTaken"]
        for order_id, scenario in ours.items()
        if scenario.expect["moneyTaken"]
    }
    assert [a for a in authorizations.values() if a["status"] == "authorized"] == []


async def run(stack: Stack, scenario: Scenario) -> None:
    await stack.workflows.start_checkout(scenario.command, scenario.placed_in)
    name = checkout_execution_name(scenario.order_id)
    checkout = await finished(stack, execution_arn(stack.machines.checkout_arn, name))
    assert outcome(checkout) == scenario.expect["checkout"], scenario.name
    assert await order_row(stack.pool, scenario.order_id) == scenario.expect["order"]
