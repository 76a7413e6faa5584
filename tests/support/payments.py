"""An in-memory card provider (workflows.ports.PaymentProvider) with the simulated provider's
test tokens and idempotency rules (hemisphere/payments_sim.py), plus faults a test can inject
and a ledger to check the money invariants against."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from domain.model import Money
from domain.payments import (
    PaymentDeclinedError,
    PaymentError,
    PaymentInsufficientFundsError,
    PaymentProviderUnavailableError,
    PaymentTimeoutError,
)

TOKEN_VISA = "tok_visa"
TOKEN_DECLINED = "tok_chargeDeclined"
TOKEN_INSUFFICIENT_FUNDS = "tok_insufficientFunds"
TOKEN_PROCESSING_ERROR = "tok_processingError"
TOKEN_TIMEOUT = "tok_timeout"
# tok_processingError fails this many attempts per key, then succeeds.
PROCESSING_ERROR_ATTEMPTS = 2


@dataclass
class Fault:
    """One injected misbehaviour of the next `times` calls of `operation`: raise `error`
    before doing anything, or (`after_effect`) do the operation and then raise it, as when
    the provider acted but its answer was lost."""

    operation: str
    error: Exception
    after_effect: bool = False
    times: int = 1


@dataclass
class FakePaymentProvider:
    # tok_timeout: how long the client waits before its timeout fires.
    timeout_seconds: float = 0.05
    authorizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    captures: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    _outcomes: dict[tuple[str, str, str], str | PaymentError] = field(default_factory=dict)
    _attempts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def inject(self, fault: Fault) -> None:
        self.faults.append(fault)

    # -- the port -----------------------------------------------------------------------------

    async def authorize(self, *, token: str, amount: Money, idempotency_key: str) -> str:
        def run(attempt: int) -> str:
            if token == TOKEN_PROCESSING_ERROR and attempt <= PROCESSING_ERROR_ATTEMPTS:
                raise PaymentProviderUnavailableError("processing_error: retry")
            if token == TOKEN_DECLINED or token not in (
                TOKEN_VISA,
                TOKEN_INSUFFICIENT_FUNDS,
                TOKEN_PROCESSING_ERROR,
            ):
                raise PaymentDeclinedError(f"card_declined ({token})")
            authorization_id = self._new_id("auth")
            self.authorizations[authorization_id] = {
                "token": token,
                "amount": amount,
                "status": "authorized",
                "key": idempotency_key,
            }
            return authorization_id

        if token == TOKEN_TIMEOUT:
            self.calls.append(("authorize", idempotency_key))
            await asyncio.sleep(self.timeout_seconds)
            raise PaymentTimeoutError("the provider did not answer (tok_timeout)")
        return await self._call("authorize", "", idempotency_key, run)

    async def capture(self, *, authorization_id: str, idempotency_key: str) -> str:
        def run(attempt: int) -> str:
            authorization = self._authorization(authorization_id)
            if authorization["status"] != "authorized":
                raise PaymentError(f"invalid_state: authorization is {authorization['status']}")
            if authorization["token"] == TOKEN_INSUFFICIENT_FUNDS:
                raise PaymentInsufficientFundsError("insufficient_funds")
            authorization["status"] = "captured"
            capture_id = self._new_id("cap")
            self.captures[capture_id] = {
                "authorization": authorization_id,
                "amount": authorization["amount"],
                "status": "captured",
            }
            return capture_id

        return await self._call("capture", authorization_id, idempotency_key, run)

    async def void(self, *, authorization_id: str, idempotency_key: str) -> None:
        def run(attempt: int) -> str:
            authorization = self._authorization(authorization_id)
            if authorization["status"] == "captured":
                raise PaymentError("invalid_state: a captured authorization cannot be voided")
            authorization["status"] = "voided"
            return authorization_id

        await self._call("void", authorization_id, idempotency_key, run)

    async def refund(self, *, capture_id: str, idempotency_key: str) -> str:
        def run(attempt: int) -> str:
            capture = self.captures.get(capture_id)
            if capture is None:
                raise PaymentError(f"not_found: no capture {capture_id}")
            if capture["status"] != "captured":
                raise PaymentError(f"invalid_state: capture is {capture['status']}")
            capture["status"] = "refunded"
            refund_id = self._new_id("re")
            self.refunds[refund_id] = {"capture": capture_id, "amount": capture["amount"]}
            return refund_id

        return await self._call("refund", capture_id, idempotency_key, run)

    # -- the ledger ---------------------------------------------------------------------------

    def order_of(self, authorization_id: str) -> str:
        """The order an authorization was made for (its key is '<order>:<step>')."""
        return str(self.authorizations[authorization_id]["key"]).split(":", 1)[0]

    def money_taken(self) -> dict[str, int]:
        """Order -> amount captured and not refunded."""
        taken: dict[str, int] = {}
        for capture in self.captures.values():
            if capture["status"] == "captured":
                order = self.order_of(capture["authorization"])
                taken[order] = taken.get(order, 0) + capture["amount"].amount
        return taken

    def holds(self) -> dict[str, int]:
        """Order -> authorizations still holding money (neither captured nor voided)."""
        held: dict[str, int] = {}
        for authorization_id, authorization in self.authorizations.items():
            if authorization["status"] == "authorized":
                order = self.order_of(authorization_id)
                held[order] = held.get(order, 0) + 1
        return held

    # -- idempotency, as the simulator does it ------------------------------------------------

    async def _call(self, operation: str, target: str, key: str, run: Any) -> Any:
        """The first final outcome (a success or a refusal) per (operation, target, key) is
        replayed to every later call; a transient failure is not final."""
        self.calls.append((operation, key))
        await asyncio.sleep(0)  # an await point, as a real call has
        fault = next((f for f in self.faults if f.operation == operation and f.times > 0), None)
        if fault is not None and not fault.after_effect:
            fault.times -= 1
            raise fault.error
        scope = (operation, target, key)
        outcome = self._outcomes.get(scope)
        if outcome is None:
            attempt = self._attempts[scope] = self._attempts.get(scope, 0) + 1
            try:
                outcome = run(attempt)
            except (PaymentProviderUnavailableError, PaymentTimeoutError):
                raise
            except PaymentError as refusal:
                outcome = refusal
            self._outcomes[scope] = outcome
        if fault is not None:
            fault.times -= 1
            raise fault.error
        if isinstance(outcome, PaymentError):
            raise outcome
        return outcome

    def _authorization(self, authorization_id: str) -> dict[str, Any]:
        authorization = self.authorizations.get(authorization_id)
        if authorization is None:
            raise PaymentError(f"not_found: no authorization {authorization_id}")
        return authorization

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"
