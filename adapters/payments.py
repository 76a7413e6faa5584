"""The card provider's HTTP client: workflows.ports.PaymentProvider over httpx.

The same client talks to the simulated provider (hemisphere.payments_sim) and to a real one;
only the base URL differs. It never retries by itself: the saga's state machine retries the
transient errors (PaymentProviderUnavailableError, PaymentTimeoutError) with backoff and the
same idempotency key, so a retry cannot charge twice and the retry budget lives in one place.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx

from domain.model import Money
from domain.payments import (
    PaymentDeclinedError,
    PaymentError,
    PaymentInsufficientFundsError,
    PaymentProviderUnavailableError,
    PaymentTimeoutError,
)

# Statuses that mean "the provider cannot serve you now", worth a retry with the same key.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})


def error_for(status: int, body: object) -> PaymentError | None:
    """The named payment error an HTTP answer means, or None for a success (2xx).

    402 is the provider's "the card cannot pay": insufficient_funds has its own error (the
    saga reports it apart), any other 402 code is a decline. 5xx and the "slow down" 4xx are
    transient. Any other 4xx is a request the provider refuses (unknown authorization, a
    second capture): a bug or a state mix-up that a retry would not fix, so the base
    PaymentError, which the saga treats as a plain failure.
    """
    if 200 <= status < 300:
        return None
    code, message = _error_fields(body)
    detail = f"payment provider answered {status}{f' {code}' if code else ''}: {message}"
    if status == 402:
        if code == "insufficient_funds":
            return PaymentInsufficientFundsError(detail)
        return PaymentDeclinedError(detail)
    if status >= 500 or status in _TRANSIENT_STATUSES:
        return PaymentProviderUnavailableError(detail)
    return PaymentError(detail)


def _error_fields(body: object) -> tuple[str | None, str]:
    """(code, message) of a `{"error": {"code", "message"}}` body, as far as it has them."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, "no error details"
    code = error.get("code")
    message = error.get("message")
    return (
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else "no message",
    )


class HttpPaymentProvider:
    """PaymentProvider over the provider's JSON API.

    `timeout_seconds` bounds each call as a whole (connect, send, wait, read): a provider
    that never answers raises PaymentTimeoutError after that long, not after httpx's
    per-phase timeouts add up.
    """

    def __init__(
        self,
        base_url: str,
        timeout_seconds: float,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout_seconds
        self._client = httpx.AsyncClient(
            base_url=self._base_url,
            timeout=httpx.Timeout(timeout_seconds),
            headers={"User-Agent": "hemisphere-payments/1"},
            transport=transport,
        )

    async def authorize(self, *, token: str, amount: Money, idempotency_key: str) -> str:
        body = {"token": token, "amount": amount.amount, "currency": amount.currency}
        return await self._post_for_id("/v1/authorizations", body, idempotency_key)

    async def capture(self, *, authorization_id: str, idempotency_key: str) -> str:
        path = f"/v1/authorizations/{_segment(authorization_id)}/capture"
        return await self._post_for_id(path, {}, idempotency_key)

    async def void(self, *, authorization_id: str, idempotency_key: str) -> None:
        path = f"/v1/authorizations/{_segment(authorization_id)}/void"
        await self._post(path, {}, idempotency_key)

    async def refund(self, *, capture_id: str, idempotency_key: str) -> str:
        path = f"/v1/captures/{_segment(capture_id)}/refund"
        return await self._post_for_id(path, {}, idempotency_key)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpPaymentProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _post_for_id(self, path: str, body: dict[str, Any], idempotency_key: str) -> str:
        answer = await self._post(path, body, idempotency_key)
        identifier = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(identifier, str) or not identifier:
            # A success without an id is not a success we can build on (a proxy's page?).
            raise PaymentProviderUnavailableError(
                f"payment provider at {self._base_url} answered {path} without an id"
            )
        return identifier

    async def _post(self, path: str, body: dict[str, Any], idempotency_key: str) -> object:
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.post(
                    path, json=body, headers={"Idempotency-Key": idempotency_key}
                )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The request never left: nothing can have happened at the provider.
            raise PaymentProviderUnavailableError(
                f"payment provider at {self._base_url} cannot be reached: {_describe(exc)}"
            ) from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            # Sent, no answer: the outcome is unknown, and only a retry with the same key
            # learns it without charging twice.
            raise PaymentTimeoutError(
                f"payment provider at {self._base_url} did not answer {path} "
                f"within {self._timeout:g}s"
            ) from exc
        except httpx.TransportError as exc:
            raise PaymentProviderUnavailableError(
                f"payment provider at {self._base_url} failed on {path}: {_describe(exc)}"
            ) from exc
        try:
            answer: object = response.json()
        except ValueError:
            answer = None
        error = error_for(response.status_code, answer)
        if error is not None:
            raise error
        if answer is None:
            raise PaymentProviderUnavailableError(
                f"payment provider at {self._base_url} answered {path} with no JSON"
            )
        return answer


def _segment(identifier: str) -> str:
    """An id as one path segment: an id with a '/' must not reach another resource."""
    return quote(identifier, safe="")


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
