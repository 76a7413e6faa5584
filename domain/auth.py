"""Who is calling, and how they proved it: AppSync's authorization modes."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class AuthMode(enum.Enum):
    API_KEY = "API_KEY"
    AWS_IAM = "AWS_IAM"
    OPENID_CONNECT = "OPENID_CONNECT"
    AMAZON_COGNITO_USER_POOLS = "AMAZON_COGNITO_USER_POOLS"
    AWS_LAMBDA = "AWS_LAMBDA"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller. `principal` is the API key id, the IAM access key id or the
    token's subject; `customer_id` and `groups`: what a token says of its bearer (the claim
    configured for the customer id, Cognito's groups); `stream_publisher`: the region's own
    change-stream publisher (hemisphere's principal for it, not an operator's IAM key)."""

    mode: AuthMode
    principal: str
    stream_publisher: bool = False
    customer_id: str | None = None
    groups: tuple[str, ...] = ()
