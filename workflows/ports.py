"""What the workers need from the outside: a card provider, the relational model (one
transaction per saga step, adapters/postgres/saga.py; profile updates,
adapters/postgres/profiles.py), the queues and the workflow engine (Step Functions,
adapters/stepfunctions.py and adapters/sqs.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol

from domain.commands import Checkout, UpdateCustomerProfile
from domain.model import Money
from domain.saga import StepResult as StepResult  # the domain's: re-exported for the steps' callers
from domain.saga_decisions import StepRule


class PaymentProvider(Protocol):
    """A card provider's API. Every call carries an idempotency key: the same key returns the
    first call's outcome, so a retried step is never charged twice. Failures raise the
    domain.payments errors."""

    async def authorize(self, *, token: str, amount: Money, idempotency_key: str) -> str:
        """Holds `amount` on the card; returns the authorization id."""
        ...

    async def capture(self, *, authorization_id: str, idempotency_key: str) -> str:
        """Takes the held amount; returns the capture id."""
        ...

    async def void(self, *, authorization_id: str, idempotency_key: str) -> None:
        """Releases a hold that was not captured."""
        ...

    async def refund(self, *, capture_id: str, idempotency_key: str) -> str:
        """Gives a captured amount back; returns the refund id."""
        ...


# -- the steps' relational side --------------------------------------------------------------


class SagaStore(Protocol):
    """The steps' transactions on the relational model, each idempotent per (order, step):
    once a step succeeded, running it again answers the recorded result and changes nothing.

    `run_step` runs any step that is one transaction: the store locks the order's saga,
    loads its state, and writes what the domain's rule decides (domain.saga_forward,
    domain.saga_compensations). The other methods are the steps that do more: CreateOrder
    prices the order from the catalog, and the payment steps call the PaymentProvider
    between two transactions. Compensations take the failure reason to record if they are
    the first to abort the saga.

    Failures raise the domain's named errors (domain.saga_errors names each for the state
    machine), BackendUnavailableError when PostgreSQL cannot be reached or a race was lost.
    """

    async def run_step(self, order_id: str, rule: StepRule) -> StepResult: ...

    async def create_order(
        self, order_id: str, placed_in: str, command: Checkout, execution_input: Mapping[str, Any]
    ) -> StepResult: ...

    async def authorize_payment(self, order_id: str) -> StepResult: ...

    async def capture_payment(self, order_id: str) -> StepResult: ...

    async def refund_payment(self, order_id: str, reason: str) -> StepResult: ...

    async def void_authorization(self, order_id: str, reason: str) -> StepResult: ...


# -- the queues (workflows.queue_worker) and the answers to the state machine ----------------


class QueuedTask(Protocol):
    """A message as the queue delivered it: a saga's task, a profile update."""

    @property
    def body(self) -> str: ...

    @property
    def receipt(self) -> str:
        """What deleting this delivery takes (SQS's receipt handle)."""
        ...


class TaskQueue(Protocol):
    async def receive(self, max_messages: int) -> Sequence[QueuedTask]:
        """Up to `max_messages` messages, waiting a while (long polling) if there are none."""
        ...

    async def delete(self, task: QueuedTask) -> None: ...


class TaskAnswers(Protocol):
    """SendTaskSuccess / SendTaskFailure. Both return False when the state machine no longer
    waits for this token (the task timed out, or the execution ended): the answer is moot.
    Both raise BackendUnavailableError when the engine cannot be reached."""

    async def succeed(self, token: str, output: str) -> bool: ...

    async def fail(self, token: str, error: str, cause: str) -> bool: ...


# -- what the profile update worker needs (besides its queue) --------------------------------


class ProfileStore(Protocol):
    async def apply_profile_update(self, request_id: str, command: UpdateCustomerProfile) -> str:
        """Apply the request unless its (customer, key) was seen; returns the outcome's name.
        Raises BackendUnavailableError when the store cannot be reached (nothing applied)."""
        ...


# -- what the reconciler needs ---------------------------------------------------------------


class StalledSaga(Protocol):
    @property
    def order_id(self) -> str: ...

    @property
    def saga(self) -> str:
        """domain.saga.CHECKOUT or domain.saga.CANCEL."""
        ...

    @property
    def execution_input(self) -> str:
        """The input its executions were started with (canonical JSON)."""
        ...


class SagaLedger(Protocol):
    async def stalled(self, idle_for: timedelta, limit: int) -> Sequence[StalledSaga]:
        """Unfinished sagas whose order has not changed for `idle_for`, idlest first."""
        ...

    async def claim_rerun(self, order_id: str, idle_for: timedelta) -> int | None:
        """Take the next re-run of this saga: returns its attempt number (1, 2, ...), or None
        if the saga moved or another reconciler claimed it meanwhile."""
        ...


class SagaEngine(Protocol):
    async def running_order_ids(self) -> set[str]:
        """Orders that have an execution running now (of either saga)."""
        ...

    async def start(self, saga: str, name: str, execution_input: str) -> None:
        """Start an execution; one that already exists under `name` is left as it is."""
        ...
