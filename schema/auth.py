"""Field-level authorization as AppSync does it: a field's own `aws_*` directives name the modes
that may read it; one field refused does not fail the rest of the request.

Part of the contract, beside the directives it enforces: the Query and Mutation fields
(resolvers/) and the Subscription fields (subscriptions/) declare their auth here, and
subscriptions/ must not import resolvers/ (docs/decisions.md, 2026-12-03)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension

from domain.auth import AuthMode, Caller, in_groups, may_act_for
from domain.errors import ForbiddenFieldError
from schema.directives import AwsCognitoUserPools, auth_directives


class RequireAuthModes(FieldExtension):
    """`cognito_groups`: a Cognito caller must be in one of them (AppSync's
    `@aws_cognito_user_pools(cognito_groups: [...])`); None: any Cognito caller."""

    def __init__(
        self, modes: frozenset[AuthMode], cognito_groups: frozenset[str] | None = None
    ) -> None:
        self.modes = modes
        self.cognito_groups = cognito_groups

    def allows(self, caller: Caller) -> bool:
        if caller.mode not in self.modes:
            return False
        if caller.mode is AuthMode.AMAZON_COGNITO_USER_POOLS and self.cognito_groups is not None:
            return in_groups(caller, self.cognito_groups)
        return True

    def _check(self, info: strawberry.Info) -> None:
        if not self.allows(info.context.caller):
            raise ForbiddenFieldError(info.field_name, info._raw_info.parent_type.name)

    def resolve(
        self, next_: Callable[..., Any], source: Any, info: strawberry.Info, **kwargs: Any
    ) -> Any:
        self._check(info)
        return next_(source, info, **kwargs)

    async def resolve_async(
        self,
        next_: Callable[..., Awaitable[Any]],
        source: Any,
        info: strawberry.Info,
        **kwargs: Any,
    ) -> Any:
        self._check(info)
        result = next_(source, info, **kwargs)
        # Subscription resolvers return async generators; others return awaitables.
        if isinstance(result, AsyncIterator):
            return result
        return await result


@dataclass(frozen=True)
class FieldAuth:
    """The `directives` and `extensions` of a field readable only by some modes: one
    declaration gives both the SDL the contract shows and the check that enforces it."""

    directives: list[object]
    extensions: list[FieldExtension]


def field_auth(*modes: AuthMode, cognito_groups: tuple[str, ...] | None = None) -> FieldAuth:
    directives = auth_directives(*modes)
    if cognito_groups is not None:
        directives = [
            AwsCognitoUserPools(cognito_groups=list(cognito_groups))
            if isinstance(d, AwsCognitoUserPools)
            else d
            for d in directives
        ]
    groups = None if cognito_groups is None else frozenset(cognito_groups)
    return FieldAuth(directives, [RequireAuthModes(frozenset(modes), groups)])


def require_owner(info: strawberry.Info, customer_id: str | None) -> None:
    """Contract v2: a token caller reads and acts only on its own customer (IAM on any).
    Refused as AppSync's resolvers refuse (`util.unauthorized()`): the field is null with an
    Unauthorized error, and nothing is read or written for it."""
    if not may_act_for(info.context.caller, customer_id):
        raise ForbiddenFieldError(info.field_name, info._raw_info.parent_type.name)
