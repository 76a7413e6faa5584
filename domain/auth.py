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
    # AWS_LAMBDA: what the authorizer returned for the resolvers (`resolverContext`), and the
    # fields it denied (`deniedFields`, as "Type.field"): those resolve to null with an error.
    resolver_context: tuple[tuple[str, str], ...] = ()
    denied_fields: frozenset[str] = frozenset()


# The modes whose caller is a person with a customer id (a token); AWS_IAM callers are
# services and operators, API keys are public.
TOKEN_MODES = frozenset(
    {AuthMode.OPENID_CONNECT, AuthMode.AMAZON_COGNITO_USER_POOLS, AuthMode.AWS_LAMBDA}
)


def may_act_for(caller: Caller, customer_id: str | None) -> bool:
    """Contract v2's ownership rule: an IAM caller acts on any customer; a token caller only
    on its own (the customer id its token carries); an API key on none."""
    if caller.mode is AuthMode.AWS_IAM:
        return True
    if caller.mode not in TOKEN_MODES:
        return False
    return caller.customer_id is not None and caller.customer_id == customer_id


def in_groups(caller: Caller, groups: frozenset[str]) -> bool:
    """A Cognito caller in one of `groups` (AppSync's `cognito_groups`)."""
    return caller.mode is AuthMode.AMAZON_COGNITO_USER_POOLS and not groups.isdisjoint(
        caller.groups
    )


def read_scope(caller: Caller) -> tuple[object, ...]:
    """Everything of a caller that what a query answers may depend on: callers with the same
    scope get the same answer to the same request (what a shared response cache is keyed
    by). The principal is not in it (every API key reads the same); a token's customer,
    its groups and a Lambda authorizer's decision are."""
    return (
        caller.mode,
        caller.customer_id if caller.mode in TOKEN_MODES else None,
        caller.groups,
        caller.resolver_context,
        caller.denied_fields,
        caller.stream_publisher,
    )
