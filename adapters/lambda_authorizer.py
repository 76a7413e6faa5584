"""The two transports of the AWS_LAMBDA authorizer port (hemisphere/http/
lambda_authorizer_ports.py): the production one invokes an AWS Lambda function through
aiobotocore, as AppSync does (RequestResponse, the request object as the payload); the local
one POSTs the same JSON to an HTTP endpoint. Either answers with the decoded JSON or raises
LambdaAuthorizerError; neither retries (AppSync does not: a retried authorizer would double a
10 s budget).

Clients are made on first use and closed by `aclose` (the app's lifespan), never at import.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import httpx
import orjson
from botocore.exceptions import BotoCoreError, ClientError

from adapters.aws import StaticCredentials, aws_client, client_config
from hemisphere.http.lambda_authorizer_ports import LambdaAuthorizerError

FAILED = "The Lambda authorizer failed."
MALFORMED = "The Lambda authorizer's response is malformed."
# An authorizer's answer is small; AppSync caps the resolver context at 5 MB.
MAX_RESPONSE_BYTES = 5 * 1024 * 1024


def decode_answer(payload: bytes) -> object:
    if len(payload) > MAX_RESPONSE_BYTES:
        raise LambdaAuthorizerError(MALFORMED, f"a response of {len(payload)} bytes")
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise LambdaAuthorizerError(MALFORMED, f"not JSON: {payload[:200]!r}") from None


class LambdaFunctionTransport:
    """Invokes `function_arn` (its region is the ARN's). `endpoint_url`: None for AWS's own
    endpoint; a local AWS endpoint otherwise (the code path is the same)."""

    def __init__(
        self,
        function_arn: str,
        *,
        endpoint_url: str | None,
        credentials: StaticCredentials | None,
        timeout_seconds: float,
    ) -> None:
        self._arn = function_arn
        self._region = function_arn.split(":")[3]
        self._endpoint_url = endpoint_url
        self._credentials = credentials
        self._timeout = timeout_seconds
        self._client: Any = None
        self._clients = contextlib.AsyncExitStack()
        self._opening = asyncio.Lock()

    async def _lambda(self) -> Any:
        async with self._opening:
            if self._client is None:
                config = client_config(
                    connect_timeout=min(self._timeout, 3.0),
                    read_timeout=self._timeout,
                    max_attempts=1,
                )
                self._client = await self._clients.enter_async_context(
                    aws_client(
                        "lambda", self._endpoint_url, self._region, self._credentials, config=config
                    )
                )
        return self._client

    async def invoke(self, request: Mapping[str, Any]) -> object:
        client = await self._lambda()
        try:
            response = await client.invoke(
                FunctionName=self._arn,
                InvocationType="RequestResponse",
                Payload=orjson.dumps(request),
            )
            payload: bytes = await response["Payload"].read()
        except (BotoCoreError, ClientError) as exc:
            raise LambdaAuthorizerError(FAILED, f"Invoke {self._arn}: {exc}") from exc
        if response.get("FunctionError"):
            # The function raised (or timed out inside Lambda): its payload says how.
            detail = f"{response['FunctionError']} error in {self._arn}: {payload[:500]!r}"
            raise LambdaAuthorizerError(FAILED, detail)
        return decode_answer(payload)

    async def aclose(self) -> None:
        await self._clients.aclose()
        self._client = None


class HttpAuthorizerTransport:
    """POSTs the request object as JSON to `url`; a 200 with the answer as JSON is expected."""

    def __init__(self, url: str, *, timeout_seconds: float) -> None:
        self._url = url
        self._timeout = timeout_seconds
        self._http: httpx.AsyncClient | None = None

    async def invoke(self, request: Mapping[str, Any]) -> object:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout)
        try:
            response = await self._http.post(
                self._url,
                content=orjson.dumps(request),
                headers={"content-type": "application/json"},
            )
        except httpx.HTTPError as exc:
            detail = f"POST {self._url}: {type(exc).__name__} {exc}"
            raise LambdaAuthorizerError(FAILED, detail) from exc
        if response.status_code != 200:
            detail = f"POST {self._url}: HTTP {response.status_code} {response.text[:500]!r}"
            raise LambdaAuthorizerError(FAILED, detail)
        return decode_answer(response.content)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
