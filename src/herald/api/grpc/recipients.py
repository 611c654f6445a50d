"""`herald.v1.RecipientService`: decode the request, call one recipient use case, encode.

Errors are domain errors, turned into statuses in one place (`herald.api.grpc.status`);
the API key comes in `authorization: Bearer <key>` metadata, as for NotificationService.
"""

from __future__ import annotations

from typing import Any

import grpc

from herald.api.grpc import convert
from herald.api.grpc import status as rpc
from herald.api.grpc.v1 import recipients_pb2 as pb
from herald.auth.keys import Principal
from herald.errors import FieldProblem, HeraldError
from herald.messages import recipients as domain
from herald.messages.recipient_input import (
    PreferencesInput,
    QuietHoursInput,
    RecipientInput,
    preferences_input,
)
from herald.resources import Resources

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RecipientService"].full_name
Context = grpc.aio.ServicerContext[Any, Any]


def recipient(value: domain.Recipient) -> pb.Recipient:
    return pb.Recipient(
        id=value.id,
        email=value.email,
        phone=value.phone,
        whatsapp=value.whatsapp,
        locale=value.locale,
        timezone=value.timezone,
        data=convert.dict_to_struct(value.data),
        push_tokens=value.push_tokens,
        preferences=preferences(value.preferences),
        created_at=convert.timestamp(value.created_at),
        updated_at=convert.timestamp(value.updated_at),
    )


def preferences(value: domain.Preferences) -> pb.Preferences:
    wire = preferences_input(value)
    quiet = wire.quiet_hours
    return pb.Preferences(
        channels=wire.channels,
        categories=wire.categories,
        quiet_hours=None if quiet is None else pb.QuietHours(start=quiet.start, end=quiet.end),
    )


def _optional(message: Any, field: str) -> str | None:
    return getattr(message, field) if message.HasField(field) else None


class RecipientService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._use_cases = resources.recipients

    async def _principal(self, context: Context) -> Principal:
        return await self._resources.authenticator.authenticate(
            rpc.metadata(context, "authorization")
        )

    async def put_recipient(
        self, request: pb.PutRecipientRequest, context: Context
    ) -> pb.PutRecipientResponse:
        principal = await self._principal(context)
        item = RecipientInput(
            email=_optional(request, "email"),
            phone=_optional(request, "phone"),
            whatsapp=_optional(request, "whatsapp"),
            locale=_optional(request, "locale"),
            timezone=_optional(request, "timezone"),
            data=convert.struct_to_dict(request.data, "data") if request.HasField("data") else None,
        )
        done = await self._use_cases.upsert_recipient(principal, request.recipient_id, item)
        return pb.PutRecipientResponse(recipient=recipient(done.recipient), created=done.created)

    async def get_recipient(
        self, request: pb.GetRecipientRequest, context: Context
    ) -> pb.Recipient:
        found = await self._use_cases.get_recipient(
            await self._principal(context), request.recipient_id
        )
        return recipient(found)

    async def delete_recipient(
        self, request: pb.DeleteRecipientRequest, context: Context
    ) -> pb.DeleteRecipientResponse:
        await self._use_cases.delete_recipient(await self._principal(context), request.recipient_id)
        return pb.DeleteRecipientResponse()

    async def add_push_token(
        self, request: pb.AddPushTokenRequest, context: Context
    ) -> pb.Recipient:
        updated = await self._use_cases.add_push_token(
            await self._principal(context), request.recipient_id, request.token
        )
        return recipient(updated)

    async def remove_push_token(
        self, request: pb.RemovePushTokenRequest, context: Context
    ) -> pb.RemovePushTokenResponse:
        await self._use_cases.remove_push_token(
            await self._principal(context), request.recipient_id, request.token
        )
        return pb.RemovePushTokenResponse()

    async def get_preferences(
        self, request: pb.GetPreferencesRequest, context: Context
    ) -> pb.Preferences:
        found = await self._use_cases.get_preferences(
            await self._principal(context), request.recipient_id
        )
        return preferences(found)

    async def set_preferences(
        self, request: pb.SetPreferencesRequest, context: Context
    ) -> pb.Preferences:
        principal = await self._principal(context)
        wire = request.preferences
        quiet = wire.quiet_hours if wire.HasField("quiet_hours") else None
        item = PreferencesInput(
            channels=dict(wire.channels),
            categories=dict(wire.categories),
            quiet_hours=None if quiet is None else QuietHoursInput(quiet.start, quiet.end),
        )
        try:
            saved = await self._use_cases.set_preferences(principal, request.recipient_id, item)
        except HeraldError as exc:
            if not exc.problems:
                raise
            problems = [
                FieldProblem(
                    p.field if p.field == "recipient_id" else f"preferences.{p.field}", p.message
                )
                for p in exc.problems
            ]
            raise type(exc)(exc.detail, problems=problems) from exc
        return preferences(saved)

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        """The service's methods, with requests that fail to decode answered INVALID_ARGUMENT."""
        unary: dict[str, tuple[Any, Any, Any]] = {
            "PutRecipient": (self.put_recipient, pb.PutRecipientRequest, pb.PutRecipientResponse),
            "GetRecipient": (self.get_recipient, pb.GetRecipientRequest, pb.Recipient),
            "DeleteRecipient": (
                self.delete_recipient,
                pb.DeleteRecipientRequest,
                pb.DeleteRecipientResponse,
            ),
            "AddPushToken": (self.add_push_token, pb.AddPushTokenRequest, pb.Recipient),
            "RemovePushToken": (
                self.remove_push_token,
                pb.RemovePushTokenRequest,
                pb.RemovePushTokenResponse,
            ),
            "GetPreferences": (self.get_preferences, pb.GetPreferencesRequest, pb.Preferences),
            "SetPreferences": (self.set_preferences, pb.SetPreferencesRequest, pb.Preferences),
        }
        methods = rpc.unary_methods(unary)
        return grpc.method_handlers_generic_handler(SERVICE_NAME, methods)
