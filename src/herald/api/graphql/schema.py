"""The strawberry schema: queries, mutations, the subscription, the limits, the error mapping."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from herald.api.graphql.errors import translate_all
from herald.api.graphql.message_queries import MessageQuery
from herald.api.graphql.metrics import OperationMetrics
from herald.api.graphql.mutations import Mutation
from herald.api.graphql.queries import Query
from herald.api.graphql.subscriptions import Subscription
from herald.api.graphql.types.scalars import JSON, JSON_SCALAR

# The defaults of GRAPHQL_MAX_DEPTH, GRAPHQL_MAX_TOKENS and GRAPHQL_MAX_ALIASES.
MAX_DEPTH = 10
MAX_TOKENS = 2000
MAX_ALIASES = 15

# Each feature's queries, one type (mutations combine as mixins in `mutations`).
RootQuery = merge_types("Query", (Query, MessageQuery))


class HeraldSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: Any | None = None
    ) -> None:
        """Every error as the client reads it (`herald.api.graphql.errors`), in place: the
        result's list is this list, for queries, mutations and each subscription event."""
        errors[:] = translate_all(errors)


def build_schema(
    max_depth: int = MAX_DEPTH, max_tokens: int = MAX_TOKENS, max_aliases: int = MAX_ALIASES
) -> HeraldSchema:
    return HeraldSchema(
        query=RootQuery,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            # Factories: strawberry makes fresh extensions for each operation.
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            lambda: QueryDepthLimiter(max_depth=max_depth),
            lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
            OperationMetrics,
        ],
        config=StrawberryConfig(disable_field_suggestions=True, scalar_map={JSON: JSON_SCALAR}),
    )


def sdl() -> str:
    """The schema in SDL, as committed in `schema.graphql`."""
    return build_schema().as_str() + "\n"
