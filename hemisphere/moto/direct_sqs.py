"""The Step Functions emulator's SendMessage, made on moto's SQS backend directly.

A saga step is a Task state `sqs:sendMessage.waitForTaskToken`: moto's interpreter sends the
step's message through a boto3 client, which hemisphere.moto.server already serves in-process
(moto's request router, no HTTP). That is still botocore building and signing the request,
its event hooks, moto's dispatch parsing it and serializing an answer botocore parses back:
15 % of moto's CPU in the write benchmark (py-spy `--gil`), for a call whose outcome is one
`SQSBackend.send_message`. Here that call is made directly and answered as SendMessage
answers (MD5OfMessageBody, MessageId, SequenceNumber for FIFO), moto's errors as the
ClientError botocore would have raised. A request this does not model (message attributes,
system attributes) goes through the client as before. Imported only by the local endpoint's
process (hemisphere.moto.server), which has moto.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError
from moto.core.exceptions import ServiceException
from moto.sqs.models import sqs_backends

# SendMessage's parameters made directly; any other sends the request through the client.
DIRECT_PARAMETERS = frozenset(
    {"QueueUrl", "MessageBody", "DelaySeconds", "MessageDeduplicationId", "MessageGroupId"}
)


class DirectSqs:
    """A stand-in for the emulator's SQS client of `region`: `send_message` on the backend,
    everything else (and what it does not model) by `client`."""

    def __init__(self, region: str, client: Any) -> None:
        self._region = region
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def send_message(self, **parameters: Any) -> dict[str, Any]:
        body = parameters.get("MessageBody")
        if not parameters.keys() <= DIRECT_PARAMETERS or not isinstance(body, str):
            # Not modelled here (or invalid: the client's validation answers it).
            answer: dict[str, Any] = self._client.send_message(**parameters)
            return answer
        account, queue_name = _account_and_name(str(parameters.get("QueueUrl", "")))
        try:
            backend = sqs_backends[account][self._region]
            queue = backend.get_queue(queue_name)
            message = backend.send_message(
                queue_name,
                body,
                message_attributes={},
                delay_seconds=parameters.get("DelaySeconds"),
                deduplication_id=parameters.get("MessageDeduplicationId"),
                group_id=parameters.get("MessageGroupId"),
            )
        except ServiceException as error:
            raise ClientError(
                {"Error": {"Code": str(error.code), "Message": str(error.message)}},
                "SendMessage",
            ) from error
        answer = {"MD5OfMessageBody": message.body_md5, "MessageId": message.id}
        if queue.fifo_queue and message.sequence_number:
            answer["SequenceNumber"] = message.sequence_number
        return answer


def _account_and_name(queue_url: str) -> tuple[str, str]:
    """`https://host/<account>/<name>` -> (account, name), as moto names its queues."""
    parts = [part for part in urlsplit(queue_url).path.split("/") if part]
    if len(parts) != 2:
        raise ClientError(
            {"Error": {"Code": "InvalidAddress", "Message": f"not a queue URL: {queue_url}"}},
            "SendMessage",
        )
    return parts[0], parts[1]
