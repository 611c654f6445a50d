"""`Mutation`: one mixin per domain, combined here (as Phoenix does)."""

from __future__ import annotations

import strawberry

from herald.api.graphql.mutations.messages import MessageMutationMixin
from herald.api.graphql.mutations.notifications import NotificationMutationMixin
from herald.api.graphql.mutations.recipients import RecipientMutationMixin
from herald.api.graphql.mutations.templates import TemplateMutationMixin


@strawberry.type
class Mutation(
    NotificationMutationMixin,
    RecipientMutationMixin,
    TemplateMutationMixin,
    MessageMutationMixin,
):
    pass
