"""The payment client against the simulated provider running as a child process: every test
token, idempotent retries, and a timeout that fires when the provider never answers."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from adapters.payments import HttpPaymentProvider
from domain.model import Money
from domain.payments import (
    PaymentDeclinedError,
    PaymentError,
    PaymentInsufficientFundsError,
    PaymentProviderUnavailableError,
    PaymentTimeoutError,
)
from domain.saga import StepError
from domain.saga_errors import step_error_name
from hemisphere.localstack import free_port
from hemisphere.payments_sim import PaymentsSimulator
from tests.support.payments_sim import by_key, ledger

pytestmark = pytest.mark.integration

TEN_EUROS = Money(1000, "EUR")


@pytest.fixture(scope="module")
def simulator() -> Iterator[PaymentsSimulator]:
    with PaymentsSimulator() as running:
        yield running


@pytest.fixture
async def provider(simulator: PaymentsSimulator) -> AsyncIterator[HttpPaymentProvider]:
    async with HttpPaymentProvider(simulator.url, timeout_seconds=2.0) as client:
        yield client


def new_key(step: str = "authorize") -> str:
    """Each test its own keys: the simulator is shared by the module."""
    return f"o-{uuid.uuid4().hex[:12]}:{step}"


async def test_visa_authorizes_captures_and_refunds(
    provider: HttpPaymentProvider, simulator: PaymentsSimulator
) -> None:
    key = new_key()
    authorization = await provider.authorize(
        token="tok_visa", amount=TEN_EUROS, idempotency_key=key
    )
    capture = await provider.capture(authorization_id=authorization, idempotency_key=key)
    refund = await provider.refund(capture_id=capture, idempotency_key=key)

    assert authorization.startswith("auth_")
    assert capture.startswith("cap_")
    assert refund.startswith("re_")
    book = await ledger(simulator.url)
    [held] = by_key(book["authorizations"], key)
    [taken] = by_key(book["captures"], key)
    [given_back] = by_key(book["refunds"], key)
    assert (held["id"], held["status"], held["amount"], held["currency"]) == (
        authorization,
        "captured",
        1000,
        "EUR",
    )
    assert (taken["authorizationId"], taken["status"], taken["amount"]) == (
        authorization,
        "refunded",
        1000,
    )
    assert (given_back["captureId"], given_back["amount"]) == (capture, 1000)


async def test_a_voided_authorization_cannot_be_captured(
    provider: HttpPaymentProvider, simulator: PaymentsSimulator
) -> None:
    key = new_key()
    authorization = await provider.authorize(
        token="tok_visa", amount=TEN_EUROS, idempotency_key=key
    )
    await provider.void(authorization_id=authorization, idempotency_key=key)
    # A re-run compensation under another key is harmless.
    await provider.void(authorization_id=authorization, idempotency_key=new_key("void"))

    with pytest.raises(PaymentError) as raised:
        await provider.capture(authorization_id=authorization, idempotency_key=key)
    assert type(raised.value) is PaymentError
    assert "invalid_state" in raised.value.message
    [held] = by_key((await ledger(simulator.url))["authorizations"], key)
    assert held["status"] == "voided"
    assert not by_key((await ledger(simulator.url))["captures"], key)


async def test_declined_card(provider: HttpPaymentProvider, simulator: PaymentsSimulator) -> None:
    key = new_key()
    with pytest.raises(PaymentDeclinedError) as raised:
        await provider.authorize(token="tok_chargeDeclined", amount=TEN_EUROS, idempotency_key=key)
    assert step_error_name(raised.value) == StepError.PAYMENT_DECLINED
    assert "card_declined" in raised.value.message
    # The same key gives the same answer, and nothing was held.
    with pytest.raises(PaymentDeclinedError):
        await provider.authorize(token="tok_chargeDeclined", amount=TEN_EUROS, idempotency_key=key)
    assert not by_key((await ledger(simulator.url))["authorizations"], key)


async def test_unknown_token_is_declined(provider: HttpPaymentProvider) -> None:
    with pytest.raises(PaymentDeclinedError):
        await provider.authorize(token="tok_nope", amount=TEN_EUROS, idempotency_key=new_key())


async def test_insufficient_funds_fails_the_capture_and_leaves_a_hold_to_void(
    provider: HttpPaymentProvider, simulator: PaymentsSimulator
) -> None:
    key = new_key()
    authorization = await provider.authorize(
        token="tok_insufficientFunds", amount=TEN_EUROS, idempotency_key=key
    )
    for _ in range(2):  # a retried capture learns the same outcome
        with pytest.raises(PaymentInsufficientFundsError) as raised:
            await provider.capture(authorization_id=authorization, idempotency_key=key)
        assert step_error_name(raised.value) == StepError.PAYMENT_INSUFFICIENT_FUNDS
    await provider.void(authorization_id=authorization, idempotency_key=key)

    book = await ledger(simulator.url)
    [held] = by_key(book["authorizations"], key)
    assert held["status"] == "voided"
    assert not by_key(book["captures"], key)


async def test_processing_error_fails_twice_then_succeeds_once(
    provider: HttpPaymentProvider, simulator: PaymentsSimulator
) -> None:
    key = new_key()
    for _ in range(2):
        with pytest.raises(PaymentProviderUnavailableError) as raised:
            await provider.authorize(
                token="tok_processingError", amount=TEN_EUROS, idempotency_key=key
            )
        assert step_error_name(raised.value) == StepError.PAYMENT_UNAVAILABLE
        assert "503" in raised.value.message
    first = await provider.authorize(
        token="tok_processingError", amount=TEN_EUROS, idempotency_key=key
    )
    again = await provider.authorize(
        token="tok_processingError", amount=TEN_EUROS, idempotency_key=key
    )

    assert first == again
    assert [a["id"] for a in by_key((await ledger(simulator.url))["authorizations"], key)] == [
        first
    ]
    # Another key starts its own count.
    with pytest.raises(PaymentProviderUnavailableError):
        await provider.authorize(
            token="tok_processingError", amount=TEN_EUROS, idempotency_key=new_key()
        )


async def test_timeout_fires_within_the_configured_timeout(
    simulator: PaymentsSimulator,
) -> None:
    key = new_key()
    async with HttpPaymentProvider(simulator.url, timeout_seconds=0.5) as provider:
        started = time.monotonic()
        with pytest.raises(PaymentTimeoutError) as raised:
            await provider.authorize(token="tok_timeout", amount=TEN_EUROS, idempotency_key=key)
        elapsed = time.monotonic() - started
        assert 0.45 <= elapsed < 0.9, f"took {elapsed:.2f}s"
        assert step_error_name(raised.value) == StepError.PAYMENT_TIMEOUT
        assert "0.5s" in raised.value.message

        # The hung request holds nothing up: the provider answers the next one at once.
        started = time.monotonic()
        await provider.authorize(token="tok_visa", amount=TEN_EUROS, idempotency_key=new_key())
        assert time.monotonic() - started < 0.4
    assert not by_key((await ledger(simulator.url))["authorizations"], key)


async def test_every_operation_is_idempotent_per_key(
    provider: HttpPaymentProvider, simulator: PaymentsSimulator
) -> None:
    key = new_key()
    authorizations = {
        await provider.authorize(token="tok_visa", amount=TEN_EUROS, idempotency_key=key)
        for _ in range(3)
    }
    [authorization] = authorizations
    captures = {
        await provider.capture(authorization_id=authorization, idempotency_key=key)
        for _ in range(3)
    }
    [capture] = captures
    refunds = {await provider.refund(capture_id=capture, idempotency_key=key) for _ in range(3)}
    assert len(refunds) == 1

    book = await ledger(simulator.url)
    assert len(by_key(book["authorizations"], key)) == 1
    assert len(by_key(book["captures"], key)) == 1
    assert len(by_key(book["refunds"], key)) == 1


async def test_money_moves_once_even_under_another_key(
    provider: HttpPaymentProvider,
) -> None:
    """A second capture or refund under a new key is refused, not charged again."""
    key = new_key()
    authorization = await provider.authorize(
        token="tok_visa", amount=TEN_EUROS, idempotency_key=key
    )
    capture = await provider.capture(authorization_id=authorization, idempotency_key=key)
    with pytest.raises(PaymentError, match="invalid_state"):
        await provider.capture(authorization_id=authorization, idempotency_key=new_key())
    with pytest.raises(PaymentError, match="invalid_state"):
        await provider.void(authorization_id=authorization, idempotency_key=new_key())
    await provider.refund(capture_id=capture, idempotency_key=key)
    with pytest.raises(PaymentError, match="invalid_state"):
        await provider.refund(capture_id=capture, idempotency_key=new_key())


async def test_a_key_reused_for_another_request_is_a_conflict(
    provider: HttpPaymentProvider,
) -> None:
    key = new_key()
    await provider.authorize(token="tok_visa", amount=TEN_EUROS, idempotency_key=key)
    with pytest.raises(PaymentError, match="idempotency_conflict") as raised:
        await provider.authorize(token="tok_visa", amount=Money(999, "EUR"), idempotency_key=key)
    assert type(raised.value) is PaymentError


async def test_unknown_ids_are_refused(provider: HttpPaymentProvider) -> None:
    with pytest.raises(PaymentError, match="not_found"):
        await provider.capture(authorization_id="auth_missing", idempotency_key=new_key())
    # An id is one path segment: a '/' in it cannot reach another resource.
    with pytest.raises(PaymentError, match="not_found"):
        await provider.capture(authorization_id="x/../../ledger", idempotency_key=new_key())
    with pytest.raises(PaymentError, match="not_found"):
        await provider.refund(capture_id="cap_missing", idempotency_key=new_key())


async def test_a_provider_that_is_down_is_unavailable_at_once() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with HttpPaymentProvider(url, timeout_seconds=2.0) as provider:
        started = time.monotonic()
        with pytest.raises(PaymentProviderUnavailableError) as raised:
            await provider.authorize(token="tok_visa", amount=TEN_EUROS, idempotency_key="k")
    assert time.monotonic() - started < 1.0
    assert url in raised.value.message


def test_stop_ends_the_child_process() -> None:
    simulator = PaymentsSimulator()
    simulator.start()
    process = simulator._process
    assert process is not None and process.poll() is None
    simulator.stop()
    assert process.poll() is not None
    simulator.stop()  # twice is harmless
