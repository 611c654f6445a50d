"""`Mutation`: one mixin per domain, combined here (as Phoenix does)."""

from __future__ import annotations

import strawberry

from herald.api.graphql.mutations.notifications import NotificationMutationMixin
from herald.api.graphql.mutations.recipients import RecipientMutationMixin


@strawberry.type
class Mutation(NotificationMutationMixin, RecipientMutationMixin):
    pass
