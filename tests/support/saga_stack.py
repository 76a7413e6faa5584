"""The sagas deployed on the local AWS endpoint for a test: both state machines and their
task queue (under a prefix of the test's own), a worker running the activities over real
PostgreSQL, and helpers to follow executions."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from adapters.dynamodb.client import StaticCredentials
from adapters.postgres.pool import create_pool
from adapters.sqs import SqsTaskQueue
from adapters.sqs import create_client as sqs_client
from adapters.stepfunctions import (
    SagaMachines,
    StepFunctionsOrderWorkflows,
    StepFunctionsSagaEngine,
    StepFunctionsTaskAnswers,
    ensure_state_machines,
)
from adapters.stepfunctions import create_client as sfn_client
from tests.support.saga import FAST_TIMING, Faults, saga_activities
from workflows.definitions import definitions
from workflows.ports import PaymentProvider
from workflows.reconciler import Reconciler
from workflows.worker import run_worker

LOCAL = StaticCredentials("hemisphere-local", "hemisphere-local")
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/hemisphere-sagas"


@dataclass
class Stack:
    pool: asyncpg.Pool[Any]
    faults: Faults
    sfn: Any
    sqs: Any
    machines: SagaMachines
    workflows: StepFunctionsOrderWorkflows
    reconciler: Reconciler


@contextlib.asynccontextmanager
async def saga_stack(
    pg_dsn: str, aws_endpoint: str, provider: PaymentProvider
) -> AsyncIterator[Stack]:
    pool = await create_pool(pg_dsn, min_size=1, max_size=8)
    faults = Faults()
    store, activities = saga_activities(pool, pg_dsn, provider, faults)
    async with (
        sfn_client(aws_endpoint, REGION, LOCAL) as sfn,
        sqs_client(aws_endpoint, REGION, LOCAL) as sqs,
    ):
        machines = await ensure_state_machines(
            sfn,
            sqs,
            definitions(FAST_TIMING),
            prefix=f"t{uuid.uuid4().hex[:10]}",
            role_arn=ROLE,
            # Shorter than the tasks' HeartbeatSeconds (4): a redelivery beats the timeout.
            visibility_timeout=2,
        )
        worker = asyncio.create_task(
            run_worker(
                SqsTaskQueue(sqs, machines.queue_url, wait_seconds=1),
                StepFunctionsTaskAnswers(sfn),
                faults.wrap(activities.run),
            )
        )
        engine = StepFunctionsSagaEngine(sfn, machines)
        try:
            yield Stack(
                pool,
                faults,
                sfn,
                sqs,
                machines,
                StepFunctionsOrderWorkflows(sfn, machines),
                Reconciler(store, engine, idle_for=timedelta(0)),
            )
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            await pool.close()


def execution_arn(machine_arn: str, name: str) -> str:
    return machine_arn.replace(":stateMachine:", ":execution:") + ":" + name


async def finished(stack: Stack, arn: str, within: float = 60.0) -> dict[str, Any]:
    """The execution once it is no longer RUNNING, with the states it entered."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        described: dict[str, Any] = await stack.sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            break
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{arn} still running after {within}s")
        await asyncio.sleep(0.05)
    history = await stack.sfn.get_execution_history(executionArn=arn, maxResults=1000)
    described["states"] = [
        event["stateEnteredEventDetails"]["name"]
        for event in history["events"]
        if "stateEnteredEventDetails" in event
    ]
    return described


def outcome(described: dict[str, Any]) -> dict[str, Any]:
    """What a scenario file expects of an execution."""
    return {
        "execution": described["status"],
        "error": described.get("error"),
        "states": described["states"],
    }
