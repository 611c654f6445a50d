"""`/v1/recipients`: upsert, read and erase recipients, their push tokens and preferences.

Each handler decodes the request, calls one use case (`RecipientUseCases`) and encodes its
result; errors are domain errors, rendered in one place (`herald.api.rest.problems`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, PathParameter

from herald.api.rest.notifications import provide_principal, require_json
from herald.api.rest.problems import responses
from herald.auth.keys import Principal
from herald.messages.recipient_input import (
    PreferencesInput,
    RecipientInput,
    preferences_input,
)
from herald.messages.recipient_use_cases import RecipientUseCases
from herald.messages.recipients import Recipient
from herald.resources import Resources


class PushTokenIn(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(description="FCM registration token.")]


class RecipientOut(msgspec.Struct):
    """A recipient as stored: addresses, locale, timezone, data, tokens and preferences."""

    id: str
    email: str | None
    phone: str | None
    whatsapp: str | None
    locale: str | None
    timezone: str | None
    data: dict[str, Any]
    push_tokens: list[str]
    preferences: PreferencesInput
    created_at: datetime
    updated_at: datetime


def recipient_out(recipient: Recipient) -> RecipientOut:
    return RecipientOut(
        id=recipient.id,
        email=recipient.email,
        phone=recipient.phone,
        whatsapp=recipient.whatsapp,
        locale=recipient.locale,
        timezone=recipient.timezone,
        data=recipient.data,
        push_tokens=recipient.push_tokens,
        preferences=preferences_input(recipient.preferences),
        created_at=recipient.created_at,
        updated_at=recipient.updated_at,
    )


def use_cases(state: State) -> RecipientUseCases:
    resources: Resources = state.resources
    return resources.recipients


RecipientId = Annotated[
    str,
    PathParameter(
        description="Your own id for the recipient: 1 to 255 of A-Z a-z 0-9 . _ ~ : @ + = -."
    ),
]


class RecipientController(Controller):
    path = "/v1/recipients"
    tags = ["recipients"]
    security = [{"bearer": []}]
    dependencies = {"principal": Provide(provide_principal)}

    @put(
        "/{recipient_id:str}",
        summary="Create or replace a recipient",
        before_request=require_json(envelope=1),
        responses=responses(400, 401, 413, 415, 422, 503),
    )
    async def upsert(
        self,
        state: State,
        principal: NamedDependency[Principal],
        recipient_id: FromPath[RecipientId],
        data: JSONBody[RecipientInput],
    ) -> Response[RecipientOut]:
        """201 when new, 200 when replaced; a field left out is cleared (push tokens and
        preferences are kept)."""
        done = await use_cases(state).upsert_recipient(principal, recipient_id, data)
        return Response(recipient_out(done.recipient), status_code=201 if done.created else 200)

    @get("/{recipient_id:str}", summary="Read a recipient", responses=responses(401, 404, 503))
    async def read(
        self, state: State, principal: NamedDependency[Principal], recipient_id: FromPath[str]
    ) -> RecipientOut:
        return recipient_out(await use_cases(state).get_recipient(principal, recipient_id))

    @delete(
        "/{recipient_id:str}",
        summary="Delete a recipient, erasing its addresses",
        responses=responses(401, 404, 503),
    )
    async def erase(
        self, state: State, principal: NamedDependency[Principal], recipient_id: FromPath[str]
    ) -> None:
        """Erases the addresses, custom data, push tokens and preferences; the recipient's
        notifications keep only masked addresses, and those not yet sent are cancelled."""
        await use_cases(state).delete_recipient(principal, recipient_id)

    @post(
        "/{recipient_id:str}/push-tokens",
        status_code=201,
        summary="Add a push token",
        before_request=require_json(envelope=1),
        responses=responses(400, 401, 404, 413, 415, 422, 503),
    )
    async def add_push_token(
        self,
        state: State,
        principal: NamedDependency[Principal],
        recipient_id: FromPath[str],
        data: JSONBody[PushTokenIn],
    ) -> RecipientOut:
        """Adding a token it has refreshes it; a token of another recipient moves here; the
        newest 20 are kept. A token FCM reports UNREGISTERED is removed by itself."""
        recipient = await use_cases(state).add_push_token(principal, recipient_id, data.token)
        return recipient_out(recipient)

    @delete(
        "/{recipient_id:str}/push-tokens/{token:str}",
        summary="Remove a push token",
        responses=responses(401, 404, 503),
    )
    async def remove_push_token(
        self,
        state: State,
        principal: NamedDependency[Principal],
        recipient_id: FromPath[str],
        token: FromPath[str],
    ) -> None:
        await use_cases(state).remove_push_token(principal, recipient_id, token)

    @get(
        "/{recipient_id:str}/preferences",
        summary="Read a recipient's preferences",
        responses=responses(401, 404, 503),
    )
    async def read_preferences(
        self, state: State, principal: NamedDependency[Principal], recipient_id: FromPath[str]
    ) -> PreferencesInput:
        preferences = await use_cases(state).get_preferences(principal, recipient_id)
        return preferences_input(preferences)

    @put(
        "/{recipient_id:str}/preferences",
        summary="Replace a recipient's preferences",
        before_request=require_json(envelope=2),
        responses=responses(400, 401, 404, 413, 415, 422, 503),
    )
    async def set_preferences(
        self,
        state: State,
        principal: NamedDependency[Principal],
        recipient_id: FromPath[str],
        data: JSONBody[PreferencesInput],
    ) -> PreferencesInput:
        """Opt-outs per channel and per category, and quiet hours in the recipient's
        timezone (UTC when it has none)."""
        preferences = await use_cases(state).set_preferences(principal, recipient_id, data)
        return preferences_input(preferences)
