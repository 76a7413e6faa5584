"""The simulated card provider: a small HTTP API with test tokens, run as a child process.

`hemisphere serve` starts it next to the API and the payment client reaches it over HTTP,
exactly as it would reach a real provider: the only difference is the base URL.

API (JSON; every POST needs an `Idempotency-Key` header):

    POST /v1/authorizations              {token, amount, currency}  -> 201 {id: "auth_..."}
    POST /v1/authorizations/{id}/capture                            -> 201 {id: "cap_..."}
    POST /v1/authorizations/{id}/void                               -> 200 {id, status}
    POST /v1/captures/{id}/refund                                   -> 201 {id: "re_..."}
    GET  /v1/ledger    every authorization, capture and refund (for tests' money checks)
    GET  /health

Errors are `{"error": {"code", "message"}}`: 402 card_declined / insufficient_funds (the
card cannot pay), 400 invalid_request, 404 not_found, 409 invalid_state or
idempotency_conflict, 503 processing_error (transient).

Idempotency: a key is scoped to the request's path (so one key may serve an authorization
and, later, its capture) and remembers the first *final* outcome, success or 4xx, which every
retry with the same key and body gets again. A 503 is not final: like a real provider's,
a retry may succeed. The same key with another body is a 409 idempotency_conflict.

Test tokens:
    tok_visa               succeeds
    tok_chargeDeclined     authorization declined (402 card_declined)
    tok_insufficientFunds  authorization succeeds, capture fails (402 insufficient_funds)
    tok_processingError    authorization answers 503 twice per key, then succeeds
    tok_timeout            authorization never answers (until the client hangs up)
Any other token is declined, as a real provider declines a card it does not know.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hemisphere.localstack import ChildService

TOKEN_VISA: Final = "tok_visa"
TOKEN_DECLINED: Final = "tok_chargeDeclined"
TOKEN_INSUFFICIENT_FUNDS: Final = "tok_insufficientFunds"
TOKEN_PROCESSING_ERROR: Final = "tok_processingError"
TOKEN_TIMEOUT: Final = "tok_timeout"

# How many attempts per key tok_processingError fails before it succeeds.
PROCESSING_ERROR_ATTEMPTS: Final = 2

_CURRENCY = re.compile(r"^[A-Z]{3}$")

Json: TypeAlias = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: Json

    @property
    def is_final(self) -> bool:
        """Whether a retry with the same key must see this outcome again (5xx: no)."""
        return self.status < 500


class Hang:
    """The outcome of tok_timeout: no answer at all."""


HANG: Final = Hang()

# One provider operation: (idempotency key, request body, attempt number) -> its outcome.
Operation: TypeAlias = Callable[[str, Json, int], Outcome | Hang]


def _error(status: int, code: str, message: str) -> Outcome:
    return Outcome(status, {"error": {"code": code, "message": message}})


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class SimulatedProvider:
    """The provider's state and rules, in memory; the HTTP layer only translates."""

    authorizations: dict[str, Json] = field(default_factory=dict)
    captures: dict[str, Json] = field(default_factory=dict)
    refunds: dict[str, Json] = field(default_factory=dict)
    # (scope, key) -> (fingerprint of the request, its first final outcome)
    _outcomes: dict[tuple[str, str], tuple[str, Outcome]] = field(default_factory=dict)
    _attempts: dict[tuple[str, str], int] = field(default_factory=dict)

    def handle(self, scope: str, key: str, body: Json, operation: Operation) -> Outcome | Hang:
        """Run `operation` until it reaches a final outcome for (scope, key), then replay
        that outcome. The operation learns which attempt this is (1, 2, ...)."""
        fingerprint = json.dumps(body, sort_keys=True)
        known = self._outcomes.get((scope, key))
        if known is not None:
            first_fingerprint, outcome = known
            if first_fingerprint != fingerprint:
                return _error(
                    409,
                    "idempotency_conflict",
                    f"Idempotency-Key {key!r} was used for another request to {scope}",
                )
            return outcome
        attempt = self._attempts[(scope, key)] = self._attempts.get((scope, key), 0) + 1
        result = operation(key, body, attempt)
        if isinstance(result, Outcome) and result.is_final:
            self._outcomes[(scope, key)] = (fingerprint, result)
        return result

    # -- operations (each runs at most once per key to a final outcome) -----------------

    def authorize(self, key: str, body: Json, attempt: int) -> Outcome | Hang:
        token, amount, currency = body.get("token"), body.get("amount"), body.get("currency")
        if not isinstance(token, str) or not token:
            return _error(400, "invalid_request", "token must be a non-empty string")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return _error(400, "invalid_request", "amount must be a positive integer")
        if not isinstance(currency, str) or not _CURRENCY.match(currency):
            return _error(400, "invalid_request", "currency must be an ISO 4217 code")
        if token == TOKEN_TIMEOUT:
            return HANG
        if token == TOKEN_PROCESSING_ERROR and attempt <= PROCESSING_ERROR_ATTEMPTS:
            return _error(503, "processing_error", "the card network did not answer; retry")
        if token == TOKEN_DECLINED:
            return _error(402, "card_declined", "the card was declined")
        if token not in (TOKEN_VISA, TOKEN_INSUFFICIENT_FUNDS, TOKEN_PROCESSING_ERROR):
            return _error(402, "card_declined", f"unknown test token {token!r}")
        authorization: Json = {
            "id": _new_id("auth"),
            "token": token,
            "amount": amount,
            "currency": currency,
            "status": "authorized",
            "idempotencyKey": key,
            "createdAt": _now(),
        }
        self.authorizations[authorization["id"]] = authorization
        return Outcome(201, dict(authorization))

    def capture(self, authorization_id: str) -> Operation:
        def run(key: str, body: Json, attempt: int) -> Outcome:
            authorization = self.authorizations.get(authorization_id)
            if authorization is None:
                return _error(404, "not_found", f"no authorization {authorization_id}")
            if authorization["status"] != "authorized":
                return _error(409, "invalid_state", f"authorization is {authorization['status']}")
            if authorization["token"] == TOKEN_INSUFFICIENT_FUNDS:
                return _error(402, "insufficient_funds", "the card has insufficient funds")
            authorization["status"] = "captured"
            capture: Json = {
                "id": _new_id("cap"),
                "authorizationId": authorization_id,
                "amount": authorization["amount"],
                "currency": authorization["currency"],
                "status": "captured",
                "idempotencyKey": key,
                "createdAt": _now(),
            }
            self.captures[capture["id"]] = capture
            return Outcome(201, dict(capture))

        return run

    def void(self, authorization_id: str) -> Operation:
        def run(key: str, body: Json, attempt: int) -> Outcome:
            authorization = self.authorizations.get(authorization_id)
            if authorization is None:
                return _error(404, "not_found", f"no authorization {authorization_id}")
            if authorization["status"] == "captured":
                return _error(409, "invalid_state", "a captured authorization cannot be voided")
            # Voiding a voided hold is harmless: a compensation re-run with a new key is fine.
            authorization["status"] = "voided"
            return Outcome(200, {"id": authorization_id, "status": "voided"})

        return run

    def refund(self, capture_id: str) -> Operation:
        def run(key: str, body: Json, attempt: int) -> Outcome:
            capture = self.captures.get(capture_id)
            if capture is None:
                return _error(404, "not_found", f"no capture {capture_id}")
            if capture["status"] != "captured":
                # Money: a second refund under another key is a bug worth a loud answer.
                return _error(409, "invalid_state", f"capture is {capture['status']}")
            capture["status"] = "refunded"
            refund: Json = {
                "id": _new_id("re"),
                "captureId": capture_id,
                "amount": capture["amount"],
                "currency": capture["currency"],
                "idempotencyKey": key,
                "createdAt": _now(),
            }
            self.refunds[refund["id"]] = refund
            return Outcome(201, dict(refund))

        return run

    def ledger(self) -> Json:
        return {
            "authorizations": list(self.authorizations.values()),
            "captures": list(self.captures.values()),
            "refunds": list(self.refunds.values()),
        }


# -- HTTP -----------------------------------------------------------------------------------


async def _hang_until_disconnected(request: Request) -> Response:
    """tok_timeout: answer nothing, but free the task once the client has given up. The body
    was read, so the server's next message is the client's disconnect."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    return Response(status_code=499)


def create_app(provider: SimulatedProvider | None = None) -> Starlette:
    provider = provider or SimulatedProvider()

    def post(
        operation: Callable[[Request], Operation],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            key = request.headers.get("idempotency-key", "").strip()
            if not key:
                return _respond(_error(400, "invalid_request", "Idempotency-Key is required"))
            try:
                body = await request.json() if await request.body() else {}
            except ValueError:
                return _respond(_error(400, "invalid_request", "the body is not JSON"))
            if not isinstance(body, dict):
                return _respond(_error(400, "invalid_request", "the body must be an object"))
            result = provider.handle(request.url.path, key, body, operation(request))
            if isinstance(result, Hang):
                return await _hang_until_disconnected(request)
            return _respond(result)

        return endpoint

    async def ledger(request: Request) -> Response:
        return JSONResponse(provider.ledger())

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def no_route(request: Request, exc: Exception) -> Response:
        # Unknown paths answer in the API's error shape too, so a client reads one format.
        return _respond(_error(404, "not_found", f"no resource at {request.url.path}"))

    return Starlette(
        exception_handlers={404: no_route},
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/ledger", ledger, methods=["GET"]),
            Route(
                "/v1/authorizations",
                post(lambda request: provider.authorize),
                methods=["POST"],
            ),
            Route(
                "/v1/authorizations/{id}/capture",
                post(lambda request: provider.capture(request.path_params["id"])),
                methods=["POST"],
            ),
            Route(
                "/v1/authorizations/{id}/void",
                post(lambda request: provider.void(request.path_params["id"])),
                methods=["POST"],
            ),
            Route(
                "/v1/captures/{id}/refund",
                post(lambda request: provider.refund(request.path_params["id"])),
                methods=["POST"],
            ),
        ],
    )


def _respond(outcome: Outcome) -> Response:
    return JSONResponse(outcome.body, status_code=outcome.status)


# -- the child process ----------------------------------------------------------------------


class PaymentsSimulator(ChildService):
    """The simulated provider in a child process on 127.0.0.1:`port` (as MotoServer runs the
    local AWS endpoint): a hung tok_timeout request or a burst of test traffic never touches
    the API's event loop."""

    name = "simulated payment provider"
    health_path = "/health"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "hemisphere.payments_sim",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]


def main(argv: list[str] | None = None) -> None:
    import uvicorn  # only the child process serves

    parser = argparse.ArgumentParser(description="The simulated card payment provider.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    config = uvicorn.Config(
        create_app(),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # tok_timeout requests hang on purpose: do not let them hold up a stop.
        timeout_graceful_shutdown=1,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
