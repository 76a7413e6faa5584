"""Admission on the local endpoint's SQS: the task queue's depth counts the messages waiting
and those a worker holds (received, not deleted), so the sagas in flight are bounded whether
their step waits or runs; a checkout past the limit is refused until the workers delete."""

from __future__ import annotations

import uuid

import pytest

from adapters.sqs import SqsQueueDepth, SqsTaskQueue, ensure_task_queue
from adapters.sqs import create_client as sqs_client
from domain.errors import ThrottledError
from tests.support.saga_stack import LOCAL, REGION
from workflows.admission import AdmissionLimits, SagaAdmission


async def test_the_queue_depth_bounds_the_sagas_in_flight(aws_endpoint: str) -> None:
    async with sqs_client(aws_endpoint, REGION, LOCAL) as sqs:
        url = await ensure_task_queue(sqs, f"adm-{uuid.uuid4().hex[:8]}", visibility_timeout=30)
        queue = SqsTaskQueue(sqs, url, wait_seconds=0)
        depth = SqsQueueDepth(sqs, url)
        for n in range(3):
            await sqs.send_message(QueueUrl=url, MessageBody=f'{{"n": {n}}}')
        received = await queue.receive(2)
        assert len(received) == 2
        assert await depth() == 3  # one waiting, two held by a worker

        limits = AdmissionLimits(max_in_flight=3, refresh_seconds=1e-9)
        admission = SagaAdmission(depth, limits)
        with pytest.raises(ThrottledError):
            await admission.admit()
        for task in received:
            await queue.delete(task)
        assert await depth() == 1
        await admission.admit()  # room again once the workers deleted theirs


async def test_no_queue_is_refused(aws_endpoint: str) -> None:
    with pytest.raises(ValueError, match="at least one queue"):
        async with sqs_client(aws_endpoint, REGION, LOCAL) as sqs:
            SqsQueueDepth(sqs)
