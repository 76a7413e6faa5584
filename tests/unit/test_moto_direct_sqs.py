"""hemisphere.moto.direct_sqs: the emulator's SendMessage made on moto's SQS backend, answered
as SendMessage answers; what it does not model goes through the client."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from hemisphere.moto.direct_sqs import DirectSqs

REGION = "eu-west-1"


class RecordingClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def send_message(self, **parameters: Any) -> dict[str, Any]:
        self.calls.append(("send_message", parameters))
        return {"MessageId": "through-the-client"}

    def delete_message(self, **parameters: Any) -> dict[str, Any]:
        self.calls.append(("delete_message", parameters))
        return {}


@pytest.fixture
def queue_url() -> Any:
    backend = sqs_backends[DEFAULT_ACCOUNT_ID][REGION]
    backend.create_queue("direct-steps")
    yield f"http://127.0.0.1:5000/{DEFAULT_ACCOUNT_ID}/direct-steps"
    backend.delete_queue("direct-steps")


def test_a_step_message_lands_in_the_queue_and_is_answered_as_send_message(
    queue_url: str,
) -> None:
    client = RecordingClient()
    answer = DirectSqs(REGION, client).send_message(
        QueueUrl=queue_url, MessageBody='{"taskToken": "t-1"}'
    )
    backend = sqs_backends[DEFAULT_ACCOUNT_ID][REGION]
    [message] = backend.get_queue("direct-steps").messages
    assert message.body == '{"taskToken": "t-1"}'
    assert answer == {"MD5OfMessageBody": message.body_md5, "MessageId": message.id}
    assert client.calls == []


def test_an_unknown_queue_is_the_client_error_botocore_would_raise() -> None:
    with pytest.raises(ClientError) as raised:
        DirectSqs(REGION, RecordingClient()).send_message(
            QueueUrl=f"http://127.0.0.1:5000/{DEFAULT_ACCOUNT_ID}/no-such-queue",
            MessageBody="{}",
        )
    assert raised.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


def test_what_it_does_not_model_goes_through_the_client(queue_url: str) -> None:
    client = RecordingClient()
    direct = DirectSqs(REGION, client)
    attributes = {"kind": {"DataType": "String", "StringValue": "step"}}
    assert direct.send_message(
        QueueUrl=queue_url, MessageBody="{}", MessageAttributes=attributes
    ) == {"MessageId": "through-the-client"}
    direct.delete_message(QueueUrl=queue_url, ReceiptHandle="r")
    assert [name for name, _ in client.calls] == ["send_message", "delete_message"]
