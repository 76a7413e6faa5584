"""Step Functions: the aioboto3 client (failing fast like the DynamoDB one), the sagas' state
machines created or updated at start, and the adapters of three ports over them:

    StepFunctionsOrderWorkflows   resolvers.ports.OrderWorkflows  (start a saga)
    StepFunctionsTaskAnswers      workflows.ports.TaskAnswers     (SendTaskSuccess / Failure)
    StepFunctionsSagaEngine       workflows.ports.SagaEngine      (the reconciler's re-runs)

Executions are always started with a name (moto needs one, and the name is what makes a
retried checkout start nothing new): Step Functions keeps a name for 90 days per machine.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from botocore.config import Config
from botocore.exceptions import ClientError

from adapters.aws import (
    StaticCredentials,
    aws_client,
    error_code,
    is_unavailable,
    translate_unavailable,
)
from adapters.sqs import SqsClient, ensure_task_queue
from adapters.tracing import without_trace_context
from domain.commands import CancelOrder, Checkout
from domain.errors import BackendUnavailableError, IdempotencyConflictError, ThrottledError
from domain.saga import (
    CANCEL,
    CHECKOUT,
    cancel_execution_name,
    cancel_input,
    checkout_execution_name,
    checkout_input,
    checkout_request,
    order_id_for,
)

log = logging.getLogger(__name__)

# aiobotocore's Step Functions client (no type stubs for it are installed).
SfnClient = Any

# The answers that mean "nobody waits for this token any more": the task timed out, the
# execution ended, or (moto) the token was never known. The answer is moot, not failed.
_MOOT_ANSWER_CODES: Final = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
# Execution names are domain.saga's: "checkout-<order>", "cancel-<order>-<digest>", and the
# reconciler's "-r<attempt>" re-runs of either. Order ids have no dash after "o-".
# StartExecution's refusals for load: retryable, nothing started.
_THROTTLED_CODES: Final = frozenset({"ThrottlingException", "ExecutionLimitExceeded"})
_THROTTLED_RETRY_SECONDS: Final = 1.0
_EXECUTION_ORDER: Final = re.compile(r"^(?:checkout|cancel)-(o-[0-9A-Za-z]+)(?:-|$)")
_PLACEHOLDER: Final = re.compile(r"\$\{(\w+)\}")


class WorkflowEngineUnavailableError(BackendUnavailableError):
    """Step Functions could not be reached or refused for now; nothing was started."""


@contextlib.contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """An outage of Step Functions as WorkflowEngineUnavailableError (a secondary region's
    routing, regions/routing.py, turns that into ReadOnlyRegionError); any other error
    passes unchanged."""
    with translate_unavailable(
        what, WorkflowEngineUnavailableError, "retry later with the same idempotency key"
    ):
        yield


@contextlib.asynccontextmanager
async def create_client(
    endpoint_url: str | None,
    region: str,
    credentials: StaticCredentials | None = None,
    *,
    config: Config | None = None,
) -> AsyncIterator[SfnClient]:
    """A Step Functions client for the `async with` block. `endpoint_url` None means AWS's
    regional endpoint; the local stack passes its moto URL, a secondary region the primary's."""
    async with aws_client("stepfunctions", endpoint_url, region, credentials, config=config) as c:
        yield c


# -- the state machines -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SagaMachines:
    """Where the sagas run: both state machines and the queue their tasks go to."""

    checkout_arn: str
    cancel_arn: str
    queue_url: str

    def arn(self, saga: str) -> str:
        if saga == CHECKOUT:
            return self.checkout_arn
        if saga == CANCEL:
            return self.cancel_arn
        raise ValueError(f"no state machine for saga {saga!r}")

    def in_region(self, region: str) -> SagaMachines:
        """The same machines as deployed in `region` (every region deploys them, so that any
        can be promoted): where a secondary starts its sagas, known without asking the
        primary, which may be down. The queue URL stays this region's: only workers use it."""

        def moved(arn: str) -> str:
            parts = arn.split(":")  # arn:aws:states:<region>:<account>:stateMachine:<name>
            parts[3] = region
            return ":".join(parts)

        return replace(
            self, checkout_arn=moved(self.checkout_arn), cancel_arn=moved(self.cancel_arn)
        )


def substitute(template: str, values: Mapping[str, str]) -> str:
    """CloudFormation's DefinitionSubstitutions: `${Name}` becomes values[Name]. A
    placeholder without a value is an error (it would fail at the first execution)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ValueError(f"the state machine definition needs a value for ${{{name}}}")
        # The values land inside JSON strings: escape them as JSON would.
        return json.dumps(values[name])[1:-1]

    return _PLACEHOLDER.sub(replace, template)


async def ensure_state_machines(
    sfn: SfnClient,
    sqs: SqsClient,
    definitions: Mapping[str, str],
    *,
    prefix: str,
    role_arn: str,
    visibility_timeout: int = 20,
) -> SagaMachines:
    """Create or update the task queue `<prefix>-saga-tasks` and one state machine per saga,
    `<prefix>-<saga>`, from `definitions` (saga -> ASL text, see workflows.definitions) with
    `${TaskQueueUrl}` substituted. Idempotent: at every start, by every instance; a machine
    is updated only when its definition changed (running executions keep theirs)."""
    queue_url = await ensure_task_queue(
        sqs, f"{prefix}-saga-tasks", visibility_timeout=visibility_timeout
    )
    arns: dict[str, str] = {}
    with translate_errors("Step Functions"):
        existing = await _state_machines(sfn)
        for saga, template in definitions.items():
            definition = substitute(template, {"TaskQueueUrl": queue_url})
            name = f"{prefix}-{saga}"
            arn = existing.get(name)
            if arn is None:
                try:
                    created = await sfn.create_state_machine(
                        name=name, definition=definition, roleArn=role_arn, type="STANDARD"
                    )
                    arns[saga] = str(created["stateMachineArn"])
                    log.info("created state machine %s", name)
                    continue
                except ClientError as error:
                    # Another instance created it since we listed: update it instead.
                    if error_code(error) != "StateMachineAlreadyExists":
                        raise
                    arn = (await _state_machines(sfn))[name]
            described = await sfn.describe_state_machine(stateMachineArn=arn)
            if described["definition"] != definition or described["roleArn"] != role_arn:
                await sfn.update_state_machine(
                    stateMachineArn=arn, definition=definition, roleArn=role_arn
                )
                log.info("updated state machine %s", name)
            arns[saga] = arn
    return SagaMachines(arns[CHECKOUT], arns[CANCEL], queue_url)


async def _state_machines(sfn: SfnClient) -> dict[str, str]:
    """Name -> ARN of every state machine of the account and region."""
    found: dict[str, str] = {}
    kwargs: dict[str, Any] = {}
    while True:
        page = await sfn.list_state_machines(**kwargs)
        for machine in page.get("stateMachines", []):
            found[str(machine["name"])] = str(machine["stateMachineArn"])
        if not page.get("nextToken"):
            return found
        kwargs = {"nextToken": page["nextToken"]}


def _execution_arn(machine_arn: str, name: str) -> str:
    """arn:…:stateMachine:<machine> -> arn:…:execution:<machine>:<name>."""
    return machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


# -- starting sagas ---------------------------------------------------------------------------


class StepFunctionsOrderWorkflows:
    """resolvers.ports.OrderWorkflows. In a secondary region, give it a client of the
    primary's Step Functions and `machines.in_region(primary)`, wrapped in
    regions.routing.RoutedOrderWorkflows."""

    def __init__(self, sfn: SfnClient, machines: SagaMachines) -> None:
        self._sfn = sfn
        self._machines = machines

    async def start_checkout(self, command: Checkout, placed_in: str) -> bool:
        """Never known to be the first: StartExecution answers a repeat of a running
        execution (same name, same input) as it answers a new one."""
        order_id = order_id_for(command.customer_id, command.idempotency_key)
        machine = self._machines.checkout_arn
        name = checkout_execution_name(order_id)
        existing = await self._start(machine, name, checkout_input(command, placed_in))
        if existing is None:
            return False
        # Same request (even placed in another region): it is the same order, nothing new.
        if json.loads(existing).get("request") != checkout_request(command):
            raise IdempotencyConflictError(
                f"idempotencyKey {command.idempotency_key!r} was used for another checkout"
            )
        return False

    async def start_cancellation(self, command: CancelOrder) -> None:
        name = cancel_execution_name(command.order_id, command.idempotency_key)
        execution_input = cancel_input(command)
        existing = await self._start(self._machines.cancel_arn, name, execution_input)
        # The name is derived from both fields of the input: a different input under the
        # same name would take a digest collision.
        # The first start's input may carry its trace context (adapters.tracing): not a
        # difference of the cancellation.
        original = without_trace_context(json.loads(existing)) if existing is not None else None
        if original is not None and original != json.loads(execution_input):
            raise IdempotencyConflictError(
                f"idempotencyKey {command.idempotency_key!r} was used for another cancellation"
            )

    async def _start(self, machine_arn: str, name: str, execution_input: str) -> str | None:
        """Start the execution; None if it started (or was running with this input), else
        the input of the execution that already has this name."""
        with translate_errors("Step Functions"):
            try:
                await self._sfn.start_execution(
                    stateMachineArn=machine_arn, name=name, input=execution_input
                )
                return None
            except ClientError as error:
                code = error_code(error)
                if code in _THROTTLED_CODES:
                    # Step Functions' own admission control (its StartExecution rate, the
                    # account's open executions): the same answer as our own gate's.
                    raise ThrottledError(
                        f"Step Functions refused a new execution for now ({code}): nothing "
                        "was started; retry with the same idempotencyKey",
                        _THROTTLED_RETRY_SECONDS,
                    ) from None
                if code != "ExecutionAlreadyExists":
                    raise
            # A finished execution, or a running one with another input.
            described = await self._sfn.describe_execution(
                executionArn=_execution_arn(machine_arn, name)
            )
        return str(described["input"])


class StepFunctionsSagaEngine:
    """workflows.ports.SagaEngine: what the reconciler sees of and starts in Step Functions."""

    def __init__(self, sfn: SfnClient, machines: SagaMachines) -> None:
        self._sfn = sfn
        self._machines = machines

    async def running_order_ids(self) -> set[str]:
        orders: set[str] = set()
        with translate_errors("Step Functions"):
            for machine in (self._machines.checkout_arn, self._machines.cancel_arn):
                kwargs: dict[str, Any] = {"stateMachineArn": machine, "statusFilter": "RUNNING"}
                while True:
                    page = await self._sfn.list_executions(**kwargs)
                    for execution in page.get("executions", []):
                        match = _EXECUTION_ORDER.match(str(execution["name"]))
                        if match:
                            orders.add(match.group(1))
                    if not page.get("nextToken"):
                        break
                    kwargs["nextToken"] = page["nextToken"]
        return orders

    async def start(self, saga: str, name: str, execution_input: str) -> None:
        with translate_errors("Step Functions"):
            try:
                await self._sfn.start_execution(
                    stateMachineArn=self._machines.arn(saga), name=name, input=execution_input
                )
            except ClientError as error:
                if error_code(error) != "ExecutionAlreadyExists":
                    raise
                log.info("execution %s already exists; left as it is", name)


class StepFunctionsTaskAnswers:
    """workflows.ports.TaskAnswers: the callback pattern's answers."""

    def __init__(self, sfn: SfnClient) -> None:
        self._sfn = sfn

    async def succeed(self, token: str, output: str) -> bool:
        try:
            with translate_errors("Step Functions"):
                await self._sfn.send_task_success(taskToken=token, output=output)
        except ClientError as error:
            return _moot(error)
        return True

    async def fail(self, token: str, error: str, cause: str) -> bool:
        try:
            with translate_errors("Step Functions"):
                await self._sfn.send_task_failure(taskToken=token, error=error, cause=cause)
        except ClientError as refusal:
            return _moot(refusal)
        return True


def _moot(error: ClientError) -> bool:
    """False for an answer nobody waits for any more; any other refusal is raised."""
    if error_code(error) in _MOOT_ANSWER_CODES:
        return False
    raise error


class StepFunctionsEndpoint:
    """regions.write_availability.PrimaryEndpoint: a region's Step Functions, asked for the
    smallest answer it gives (one state machine of its list). A throttle or a refusal is an
    answer: the endpoint is there; an outage is WorkflowEngineUnavailableError."""

    def __init__(self, sfn: Any) -> None:
        self._sfn = sfn

    async def ping(self) -> None:
        with translate_errors("Step Functions"):
            try:
                await self._sfn.list_state_machines(maxResults=1)
            except ClientError as error:
                # An answer, even "not so fast" or "not you": only an outage goes on.
                if error_code(error) in _THROTTLED_CODES or not is_unavailable(error):
                    return
                raise
