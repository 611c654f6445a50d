"""GraphQL enums: Herald's vocabulary itself, registered with strawberry (never respelled)."""

from __future__ import annotations

import strawberry

from herald.vocabulary import Channel, Priority, Routing, SkipReason, Status

# strawberry.enum annotates the class in place and returns it: the GraphQL enums are the
# vocabulary's, value for value.
strawberry.enum(Channel, description="How a notification travels.")
strawberry.enum(Status, description="Where a notification is in its life.")
strawberry.enum(Priority, description="High overtakes normal, then low.")
strawberry.enum(Routing, description="Every allowed channel at once, or one after another.")
strawberry.enum(SkipReason, description="Why a message did not use a channel.")

__all__ = ["Channel", "Priority", "Routing", "SkipReason", "Status"]
