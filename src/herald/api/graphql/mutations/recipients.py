"""Upsert and delete recipients, their push tokens and preferences: decode, call, encode."""

from __future__ import annotations

import re

import strawberry

from herald.api.graphql.context import Info
from herald.api.graphql.errors import with_fields
from herald.api.graphql.types.recipient import (
    Preferences,
    PreferencesInput,
    Recipient,
    RecipientInput,
)
from herald.errors import FieldProblem, HeraldError

_SNAKE = re.compile(r"_([a-z])")


def argument(problem: FieldProblem) -> str:
    """A domain field as this API's argument path: `email` -> `input.email`."""
    field = problem.field
    if field == "recipient_id":
        return "id"
    if field == "token" or field.startswith("input"):
        return field
    return "input." + _SNAKE.sub(lambda m: m.group(1).upper(), field)


@strawberry.type
class RecipientMutationMixin:
    @strawberry.mutation(
        description="Create or replace a recipient (push tokens and preferences are kept)."
    )
    async def upsert_recipient(self, info: Info, id: str, input: RecipientInput) -> Recipient:
        try:
            done = await info.context.recipients.upsert_recipient(
                await info.context.principal(), id, input.to_domain("input")
            )
        except HeraldError as exc:
            raise with_fields(exc, argument) from exc
        return Recipient.from_domain(done.recipient)

    @strawberry.mutation(
        description="Erase a recipient: its addresses, data, tokens and preferences; its "
        "notifications keep only masked addresses. True when done (NOT_FOUND otherwise)."
    )
    async def delete_recipient(self, info: Info, id: str) -> bool:
        await info.context.recipients.delete_recipient(await info.context.principal(), id)
        return True

    @strawberry.mutation(description="Add an FCM registration token (the newest 20 are kept).")
    async def add_push_token(self, info: Info, recipient_id: str, token: str) -> Recipient:
        try:
            recipient = await info.context.recipients.add_push_token(
                await info.context.principal(), recipient_id, token
            )
        except HeraldError as exc:
            raise with_fields(exc, argument) from exc
        return Recipient.from_domain(recipient)

    @strawberry.mutation(description="Remove a push token. True when done (NOT_FOUND otherwise).")
    async def remove_push_token(self, info: Info, recipient_id: str, token: str) -> bool:
        await info.context.recipients.remove_push_token(
            await info.context.principal(), recipient_id, token
        )
        return True

    @strawberry.mutation(description="Replace a recipient's preferences as a whole.")
    async def set_preferences(
        self, info: Info, recipient_id: str, input: PreferencesInput
    ) -> Preferences:
        try:
            preferences = await info.context.recipients.set_preferences(
                await info.context.principal(), recipient_id, input.to_domain("input")
            )
        except HeraldError as exc:
            raise with_fields(exc, argument) from exc
        return Preferences.from_domain(preferences)
