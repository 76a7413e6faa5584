"""Credentials of WebSocket clients, checked by the same Authenticator as HTTP requests.

AppSync clients send the headers they would send over HTTP as a JSON object (`host` plus
`x-api-key`, IAM's SigV4 headers, or `Authorization` with a token: a JWT for OIDC and Cognito,
anything else for the Lambda authorizer, which then gets these headers as `requestHeaders` and
the connection's payload or the start's `data` as its `requestContext`).

An IAM client signs a POST of the connection payload (`{}`) to https://<host>/graphql/connect
for the connection, and a POST of each subscription's `data` to https://<host>/graphql for a
`start` (gql's AppSyncIAMAuthentication and Amplify's awsRealTimeHeaderBasedAuth both do).
The scheme is not part of a SigV4 signature, so the plain-HTTP URL we rebuild verifies the
same."""

from __future__ import annotations

from collections.abc import Mapping

from domain.auth import Caller
from hemisphere.http.authn import Authenticator

CONNECT_PATH = "/graphql/connect"
GRAPHQL_PATH = "/graphql"


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


async def authenticate_connection(
    authenticator: Authenticator, headers: Mapping[str, str], payload: bytes
) -> Caller:
    """The caller of a connection; UnauthorizedError when its headers prove nothing."""
    lowered = _lower(headers)
    url = f"http://{lowered.get('host', '')}{CONNECT_PATH}"
    return await authenticator.authenticate(method="POST", url=url, headers=lowered, body=payload)


async def authenticate_start(
    authenticator: Authenticator, headers: Mapping[str, str], data: str
) -> Caller:
    """The caller of one subscription, from its `start` message's authorization headers."""
    lowered = _lower(headers)
    url = f"http://{lowered.get('host', '')}{GRAPHQL_PATH}"
    return await authenticator.authenticate(
        method="POST", url=url, headers=lowered, body=data.encode()
    )
