"""`Query.recipient`: one of your recipients, with its push tokens and preferences."""

from __future__ import annotations

import strawberry

from herald.api.graphql.context import Info
from herald.api.graphql.types.recipient import Recipient


@strawberry.type
class RecipientQueryMixin:
    @strawberry.field(description="One of your recipients, by your own id (NOT_FOUND otherwise).")
    async def recipient(self, info: Info, id: str) -> Recipient:
        found = await info.context.recipients.get_recipient(await info.context.principal(), id)
        return Recipient.from_domain(found)
