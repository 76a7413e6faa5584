"""Field-level authorization as AppSync does it: a field's own `aws_*` directives name the modes
that may read it; one field refused does not fail the rest of the request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension

from domain.auth import AuthMode
from domain.errors import ForbiddenFieldError
from schema.directives import auth_directives


class RequireAuthModes(FieldExtension):
    def __init__(self, modes: frozenset[AuthMode]) -> None:
        self.modes = modes

    def _check(self, info: strawberry.Info) -> None:
        if info.context.caller.mode not in self.modes:
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


def field_auth(*modes: AuthMode) -> FieldAuth:
    return FieldAuth(auth_directives(*modes), [RequireAuthModes(frozenset(modes))])
