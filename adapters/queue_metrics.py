"""What /metrics reports of an SQS queue: its messages waiting and being worked on (SQS's
approximate counts, one GetQueueAttributes call)."""

from __future__ import annotations

from typing import Any, Final

from adapters.sqs import translate_errors

_STATES: Final = {
    "waiting": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
}


async def queue_messages(sqs: Any, queue_url: str) -> dict[str, int]:
    """{"waiting": n, "in_flight": n}; raises the queue's BackendUnavailableError."""
    with translate_errors(f"the queue {queue_url}"):
        answer = await sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=list(_STATES.values())
        )
    values = answer.get("Attributes", {})
    return {state: int(values.get(name, 0)) for state, name in _STATES.items()}
