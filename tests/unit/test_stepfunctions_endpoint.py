"""adapters.stepfunctions.StepFunctionsEndpoint: what the primary probe counts as an answer
(anything the service says, a throttle or a refusal included) and as an outage."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from adapters.stepfunctions import StepFunctionsEndpoint, WorkflowEngineUnavailableError


class Sfn:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    async def list_state_machines(self, **kwargs: Any) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return {"stateMachines": []}


def _client_error(code: str, status: int) -> ClientError:
    answer: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(answer, "ListStateMachines")


@pytest.mark.parametrize(
    "error",
    [
        None,
        _client_error("ThrottlingException", 400),
        _client_error("AccessDeniedException", 400),
    ],
)
async def test_an_answer_is_an_answer(error: BaseException | None) -> None:
    await StepFunctionsEndpoint(Sfn(error)).ping()


@pytest.mark.parametrize(
    "error",
    [
        _client_error("ServiceUnavailable", 503),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
    ],
)
async def test_an_outage_is_named(error: BaseException) -> None:
    with pytest.raises(WorkflowEngineUnavailableError):
        await StepFunctionsEndpoint(Sfn(error)).ping()
