"""The production transport of the AWS_LAMBDA authorizer: aiobotocore's lambda client calling
Invoke, as it would call AWS, pointed at a server that speaks the Lambda Invoke API
(POST /2015-03-31/functions/NAME/invocations) and runs the authorizer in process. moto's
Lambda runs functions only in Docker, which this machine lacks; only the endpoint differs."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote

import pytest

from adapters.aws import StaticCredentials
from adapters.lambda_authorizer import LambdaFunctionTransport
from hemisphere.app import create_app
from hemisphere.http.lambda_authorizer_ports import LambdaAuthorizerError
from hemisphere.localstack import free_port
from tests.support.app import client_for, fake_runtime, runtime_factory, with_settings
from tests.support.fakes import InMemoryReader
from tests.support.lambda_authorizer import CRASH, GARBAGE, StandIn, running_authorizer

FUNCTION = "arn:aws:lambda:eu-west-1:123456789012:function:authorizer"
CREDENTIALS = StaticCredentials("AKIDLOCAL", "local-secret")


@pytest.fixture(scope="module")
def authorizer() -> Iterator[StandIn]:
    answers = {"ok": {"isAuthorized": True}, "crash": CRASH, "garbage": GARBAGE}
    with running_authorizer(answers) as stand_in:
        yield stand_in


def transport(endpoint: str) -> LambdaFunctionTransport:
    return LambdaFunctionTransport(
        FUNCTION, endpoint_url=endpoint, credentials=CREDENTIALS, timeout_seconds=2
    )


async def test_invoke_sends_the_request_and_reads_the_answer(authorizer: StandIn) -> None:
    lambda_ = transport(authorizer.endpoint)
    try:
        answer = await lambda_.invoke({"authorizationToken": "ok", "requestContext": {}})
    finally:
        await lambda_.aclose()
    assert answer == {"isAuthorized": True}
    assert authorizer.requests[-1] == {"authorizationToken": "ok", "requestContext": {}}


@pytest.mark.parametrize(
    ("token", "message"),
    [("crash", "failed"), ("garbage", "malformed")],
)
async def test_a_function_error_or_garbage_is_the_named_error(
    authorizer: StandIn, token: str, message: str
) -> None:
    lambda_ = transport(authorizer.endpoint)
    try:
        with pytest.raises(LambdaAuthorizerError, match=message) as failed:
            await lambda_.invoke({"authorizationToken": token})
    finally:
        await lambda_.aclose()
    if token == "crash":
        assert "Unhandled" in failed.value.detail and "boom" in failed.value.detail


async def test_an_unreachable_endpoint_is_the_named_error() -> None:
    lambda_ = transport(f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(LambdaAuthorizerError, match="failed") as failed:
            await lambda_.invoke({"authorizationToken": "ok"})
    finally:
        await lambda_.aclose()
    assert FUNCTION in failed.value.detail


async def test_the_app_authorizes_through_the_function(authorizer: StandIn) -> None:
    settings = with_settings(
        lambda_authorizer_arn=FUNCTION,
        aws_endpoint_url=authorizer.endpoint,
        aws_access_key_id=CREDENTIALS.access_key_id,
        aws_secret_access_key=CREDENTIALS.secret_access_key,
    )
    app = create_app(settings, runtime_factory=runtime_factory(fake_runtime(InMemoryReader())))
    async with client_for(app) as client:
        ok = await client.post(
            "/graphql", json={"query": "{ region { region } }"}, headers={"authorization": "ok"}
        )
        crash = await client.post(
            "/graphql", json={"query": "{ region { region } }"}, headers={"authorization": "crash"}
        )
    assert ok.status_code == 200 and ok.json()["data"] == {"region": {"region": "us-east-1"}}
    assert crash.status_code == 401
    assert crash.json()["errors"][0]["message"] == "The Lambda authorizer failed."
    context = authorizer.requests[-2]["requestContext"]
    # The account is the function's; Invoke named the function by its ARN.
    assert context["accountId"] == "123456789012"
    assert unquote(authorizer.invoked[-1]) == f"/2015-03-31/functions/{FUNCTION}/invocations"
