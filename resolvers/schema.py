"""The executable schema: the contract's roots, with the caches that make it fast."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from resolvers.mutations import Mutation
from resolvers.queries import Query
from schema.errors import is_unexpected
from schema.scalars import SCALAR_MAP
from subscriptions.fields import Subscription


class AppSyncSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Named errors (a bad token, a refused field) are answers, not incidents: log only
        # the unexpected ones, with their traceback.
        unexpected = [e for e in errors if is_unexpected(e)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def build_schema() -> strawberry.Schema:
    return AppSyncSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        # Parsing and validating a document costs about 1 ms; clients send the same few
        # documents over and over, so both are cached by document text.
        extensions=[lambda: ParserCache(maxsize=1024), lambda: ValidationCache(maxsize=1024)],
    )
