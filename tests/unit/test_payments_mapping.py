"""The payment client's mapping of HTTP answers to named errors, and the simulator's rules,
without sockets."""

from __future__ import annotations

import json

import httpx
import pytest

from adapters.payments import HttpPaymentProvider, error_for
from domain.model import Money
from domain.payments import (
    PaymentDeclinedError,
    PaymentError,
    PaymentInsufficientFundsError,
    PaymentProviderUnavailableError,
)
from hemisphere.payments_sim import HANG, Outcome, SimulatedProvider


def body(code: str, message: str = "m") -> dict[str, object]:
    return {"error": {"code": code, "message": message}}


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        (402, body("card_declined"), PaymentDeclinedError),
        (402, body("insufficient_funds"), PaymentInsufficientFundsError),
        (402, body("expired_card"), PaymentDeclinedError),
        (402, "not json", PaymentDeclinedError),
        (500, body("internal"), PaymentProviderUnavailableError),
        (502, None, PaymentProviderUnavailableError),
        (503, body("processing_error"), PaymentProviderUnavailableError),
        (429, body("rate_limited"), PaymentProviderUnavailableError),
        (400, body("invalid_request"), PaymentError),
        (404, body("not_found"), PaymentError),
        (409, body("invalid_state"), PaymentError),
    ],
)
def test_status_maps_to_a_named_error(
    status: int, answer: object, expected: type[PaymentError]
) -> None:
    error = error_for(status, answer)
    assert type(error) is expected
    assert str(status) in error.message


@pytest.mark.parametrize("status", [200, 201, 204])
def test_success_is_no_error(status: int) -> None:
    assert error_for(status, {"id": "auth_1"}) is None


def test_the_message_carries_the_provider_code_and_message() -> None:
    error = error_for(402, body("card_declined", "the card was declined"))
    assert error is not None
    assert error.message == "payment provider answered 402 card_declined: the card was declined"


async def test_the_client_sends_the_idempotency_key_and_amount_in_minor_units() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "auth_1"})

    async with HttpPaymentProvider(
        "http://provider.test/", 1.0, transport=httpx.MockTransport(answer)
    ) as provider:
        assert (
            await provider.authorize(
                token="tok_visa", amount=Money(1999, "USD"), idempotency_key="k1"
            )
            == "auth_1"
        )
    [request] = seen
    assert request.url == "http://provider.test/v1/authorizations"
    assert request.headers["Idempotency-Key"] == "k1"
    assert json.loads(request.content) == {"token": "tok_visa", "amount": 1999, "currency": "USD"}


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(201, json={"no": "id"}),
        httpx.Response(200, text="<html>proxy</html>"),
        httpx.Response(503, text="<html>down</html>"),
    ],
)
async def test_an_answer_we_cannot_use_is_a_transient_failure(response: httpx.Response) -> None:
    async with HttpPaymentProvider(
        "http://provider.test", 1.0, transport=httpx.MockTransport(lambda _: response)
    ) as provider:
        with pytest.raises(PaymentProviderUnavailableError):
            await provider.capture(authorization_id="auth_1", idempotency_key="k")


async def test_a_dropped_connection_is_unavailable() -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    async with HttpPaymentProvider(
        "http://provider.test", 1.0, transport=httpx.MockTransport(drop)
    ) as provider:
        with pytest.raises(PaymentProviderUnavailableError, match="peer closed"):
            await provider.refund(capture_id="cap_1", idempotency_key="k")


def authorize(provider: SimulatedProvider, key: str, token: str) -> Outcome:
    body = {"token": token, "amount": 500, "currency": "EUR"}
    result = provider.handle("/v1/authorizations", key, body, provider.authorize)
    assert isinstance(result, Outcome)
    return result


def test_simulator_counts_processing_errors_per_key() -> None:
    provider = SimulatedProvider()
    assert [authorize(provider, "a", "tok_processingError").status for _ in range(4)] == [
        503,
        503,
        201,
        201,
    ]
    assert authorize(provider, "b", "tok_processingError").status == 503
    assert len(provider.authorizations) == 1


def test_simulator_hangs_on_tok_timeout_and_remembers_nothing() -> None:
    provider = SimulatedProvider()
    body = {"token": "tok_timeout", "amount": 500, "currency": "EUR"}
    assert provider.handle("/v1/authorizations", "k", body, provider.authorize) is HANG
    assert provider.ledger() == {"authorizations": [], "captures": [], "refunds": []}


@pytest.mark.parametrize(
    "bad",
    [
        {"token": "", "amount": 1, "currency": "EUR"},
        {"token": "tok_visa", "amount": 0, "currency": "EUR"},
        {"token": "tok_visa", "amount": True, "currency": "EUR"},
        {"token": "tok_visa", "amount": 1, "currency": "eur"},
    ],
)
def test_simulator_refuses_malformed_authorizations(bad: dict[str, object]) -> None:
    provider = SimulatedProvider()
    result = provider.handle("/v1/authorizations", "k", bad, provider.authorize)
    assert isinstance(result, Outcome)
    assert result.status == 400
