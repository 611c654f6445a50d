"""`Mutation`: one mixin per domain, combined here (as Phoenix does)."""

from __future__ import annotations

import strawberry

from herald.api.graphql.mutations.messages import MessageMutationMixin
from herald.api.graphql.mutations.notifications import NotificationMutationMixin


@strawberry.type
class Mutation(NotificationMutationMixin, MessageMutationMixin):
    pass
