"""The port between AWS_LAMBDA authorization and whoever runs the authorizer: an AWS Lambda
function in production (adapters/lambda_authorizer.py, through aiobotocore), any HTTP endpoint
receiving the same JSON locally. Both get AppSync's request object and return the authorizer's
answer as decoded JSON; hemisphere/http/lambda_authorizer.py checks, normalizes and caches it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from domain.errors import UnauthorizedError


class LambdaAuthorizerError(UnauthorizedError):
    """The authorizer failed: unreachable, an error, no answer in time, or an answer that is not
    AppSync's response shape. The request is refused (401 UnauthorizedException, as AppSync
    refuses it) with a message that says so; `detail` (for the log, never the client) says
    what happened."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


class AuthorizerTransport(Protocol):
    async def invoke(self, request: Mapping[str, Any]) -> object:
        """The authorizer's decoded JSON answer to `request`; LambdaAuthorizerError when
        there is none."""
        ...

    async def aclose(self) -> None: ...
