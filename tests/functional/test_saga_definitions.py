"""The ASL files themselves: valid for Step Functions Standard as far as a test can tell
without AWS, written the saga sample's way (named errors caught into compensations named for
what they undo, retries of transient errors only, a budget written down), and routed as the
scenarios expect (the in-process interpreter runs them with scripted steps)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from domain.saga import CANCEL, CHECKOUT, Step, StepError
from tests.support.saga_engine import InProcessSagaEngine
from workflows.activities import Activities, StepFailure
from workflows.definitions import (
    QUEUE_URL_PLACEHOLDER,
    SAGAS,
    SagaTiming,
    definitions,
    load_definition,
    task_steps,
    with_timing,
)

CALLBACK = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
TIMEOUTS = {"States.Timeout", "States.HeartbeatTimeout"}
FORWARD = (
    Step.CREATE_ORDER,
    Step.RESERVE_INVENTORY,
    Step.AUTHORIZE_PAYMENT,
    Step.CAPTURE_PAYMENT,
    Step.UPDATE_CUSTOMER,
    Step.CONFIRM_ORDER,
)


def tasks(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in definition["States"].items() if s["Type"] == "Task"}


def targets(state: dict[str, Any]) -> list[str]:
    found = [c["Next"] for c in state.get("Catch", [])]
    return [*found, state["Next"]] if "Next" in state else found


@pytest.mark.parametrize("saga", SAGAS)
def test_every_state_is_reachable_and_every_path_ends(saga: str) -> None:
    definition = load_definition(saga)
    states = definition["States"]
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]  # a KeyError here is a dangling Next
        assert state["Type"] in ("Task", "Succeed", "Fail"), name
        if state["Type"] == "Task":
            assert "Next" in state or state.get("End") is True, name
        todo.extend(targets(state))
    assert seen == set(states), f"unreachable: {set(states) - seen}"
    for name, state in states.items():
        if state["Type"] == "Fail":
            assert state["Error"] and state["Cause"], name


@pytest.mark.parametrize("saga", SAGAS)
def test_the_budget_is_written_and_every_task_is_bounded(saga: str) -> None:
    definition = load_definition(saga)
    assert "TIMEOUT BUDGET" in definition["Comment"]
    assert definition["TimeoutSeconds"] >= 600
    for name, state in tasks(definition).items():
        # AWS: HeartbeatSeconds must be smaller than TimeoutSeconds.
        assert 0 < state["HeartbeatSeconds"] < state["TimeoutSeconds"], name
        assert f"HeartbeatSeconds {state['HeartbeatSeconds']}" in definition["Comment"]


@pytest.mark.parametrize("saga", SAGAS)
def test_tasks_use_the_callback_pattern_and_keep_each_result(saga: str) -> None:
    known = set(Activities(store=None).handlers)  # type: ignore[arg-type]
    for name, state in tasks(load_definition(saga)).items():
        assert state["Resource"] == CALLBACK
        body = state["Parameters"]["MessageBody"]
        assert state["Parameters"]["QueueUrl"] == QUEUE_URL_PLACEHOLDER
        assert body == {"step": body["step"], "input.$": "$", "taskToken.$": "$$.Task.Token"}
        assert body["step"] == name and name in known
        assert state["ResultPath"] == f"$.results.{name}"


@pytest.mark.parametrize("saga", SAGAS)
def test_only_transient_errors_are_retried_with_jitter_and_a_cap(saga: str) -> None:
    for name, state in tasks(load_definition(saga)).items():
        retried: set[str] = set()
        for retrier in state["Retry"]:
            retried |= set(retrier["ErrorEquals"])
            assert retrier["JitterStrategy"] == "FULL"
            assert retrier["IntervalSeconds"] >= 1 and retrier["BackoffRate"] >= 1
            assert 1 <= retrier["MaxAttempts"] <= 5
            assert retrier["MaxDelaySeconds"] >= retrier["IntervalSeconds"]
        assert retried == set(StepError.TRANSIENT) | TIMEOUTS, name


def test_forward_steps_catch_named_errors_into_compensations() -> None:
    states = load_definition(CHECKOUT)["States"]
    for step in FORWARD:
        catchers = states[step]["Catch"]
        named = [c for c in catchers if c["ErrorEquals"] != ["States.ALL"]]
        assert named, f"{step} catches only States.ALL"
        # States.ALL, if present, comes last and alone (AWS refuses it otherwise).
        for catcher in catchers[:-1]:
            assert "States.ALL" not in catcher["ErrorEquals"]
        assert all(c["ResultPath"] == "$.error" for c in catchers)
    chain = ["RevertLoyalty"]
    while states[chain[-1]]["Type"] == "Task":
        chain.append(states[chain[-1]]["Next"])
    assert chain == [
        "RevertLoyalty",
        "RefundPayment",
        "VoidAuthorization",
        "ReleaseInventory",
        "MarkOrderFailed",
        "CheckoutFailed",
    ]


def test_timing_changes_the_budget_and_nothing_else() -> None:
    timing = SagaTiming(4, 5, 1, 1, 300)
    original = load_definition(CHECKOUT)
    fast = with_timing(original, timing)
    assert fast["TimeoutSeconds"] == 300
    for name, state in tasks(fast).items():
        assert (state["HeartbeatSeconds"], state["TimeoutSeconds"]) == (4, 5)
        for retrier in state["Retry"]:
            assert (retrier["IntervalSeconds"], retrier["MaxDelaySeconds"]) == (1, 1)
        assert state["Catch"] == original["States"][name]["Catch"]
    assert load_definition(CHECKOUT) == original  # a copy was changed, not the file
    rendered = definitions(timing)
    assert json.loads(rendered[CANCEL])["TimeoutSeconds"] == 300
    assert QUEUE_URL_PLACEHOLDER in rendered[CHECKOUT]
    assert task_steps(fast)["CreateOrder"] == Step.CREATE_ORDER


def scripted(failures: Mapping[str, str]) -> Any:
    async def run(step: str, state: Mapping[str, Any]) -> dict[str, Any]:
        if step in failures:
            raise StepFailure(failures[step], "scripted")
        return {}

    return run


ROUTES = [
    (Step.CREATE_ORDER, StepError.ORDER_INVALID, ["MarkOrderFailed"]),
    (Step.CREATE_ORDER, StepError.ORDER_ABORTED, ["RevertLoyalty", "RefundPayment", "VoidAuthorization", "ReleaseInventory", "MarkOrderFailed"]),  # noqa: E501
    (Step.RESERVE_INVENTORY, StepError.INVENTORY_INSUFFICIENT, ["ReleaseInventory", "MarkOrderFailed"]),  # noqa: E501
    (Step.AUTHORIZE_PAYMENT, StepError.PAYMENT_DECLINED, ["VoidAuthorization", "ReleaseInventory", "MarkOrderFailed"]),  # noqa: E501
    (Step.AUTHORIZE_PAYMENT, StepError.PAYMENT_TIMEOUT, ["VoidAuthorization", "ReleaseInventory", "MarkOrderFailed"]),  # noqa: E501
    (Step.CAPTURE_PAYMENT, StepError.PAYMENT_INSUFFICIENT_FUNDS, ["RefundPayment", "VoidAuthorization", "ReleaseInventory", "MarkOrderFailed"]),  # noqa: E501
    (Step.UPDATE_CUSTOMER, "Step.InternalError", ["RevertLoyalty", "RefundPayment", "VoidAuthorization", "ReleaseInventory", "MarkOrderFailed"]),  # noqa: E501
    (Step.CONFIRM_ORDER, StepError.BACKEND_UNAVAILABLE, ["RevertLoyalty", "RefundPayment", "VoidAuthorization", "ReleaseInventory", "MarkOrderFailed"]),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(("step", "error", "compensations"), ROUTES)
async def test_a_failing_step_is_compensated_in_reverse(
    step: str, error: str, compensations: list[str]
) -> None:
    engine = InProcessSagaEngine(scripted({step: error}), time_scale=0)
    execution = await engine.run(CHECKOUT, "checkout-o-1", json.dumps({"orderId": "o-1"}))
    done = list(FORWARD[: FORWARD.index(step) + 1])
    assert execution.states == [*done, *compensations, "CheckoutFailed"]
    assert (execution.status, execution.error) == ("FAILED", "Checkout.Failed")


async def test_a_failing_compensation_leaves_the_saga_to_the_reconciler() -> None:
    failures = {Step.AUTHORIZE_PAYMENT: StepError.PAYMENT_DECLINED, Step.RELEASE_INVENTORY: "X"}
    engine = InProcessSagaEngine(scripted(failures), time_scale=0)
    execution = await engine.run(CHECKOUT, "checkout-o-1", json.dumps({"orderId": "o-1"}))
    assert execution.states[-2:] == ["ReleaseInventory", "CompensationIncomplete"]
    assert execution.error == "Checkout.CompensationIncomplete"


async def test_a_cancellation_of_an_order_that_cannot_be_cancelled_changes_nothing() -> None:
    failures = {Step.BEGIN_CANCELLATION: StepError.ORDER_NOT_CANCELLABLE}
    engine = InProcessSagaEngine(scripted(failures), time_scale=0)
    execution = await engine.run(CANCEL, "cancel-o-1-x", json.dumps({"orderId": "o-1"}))
    assert execution.states == ["BeginCancellation", "NotCancellable"]
    assert execution.error == StepError.ORDER_NOT_CANCELLABLE
