"""`herald.v1.TemplateService`: decode the request, call one template use case, encode it.

Messages map to the same wire structs REST decodes (`herald.messages.template_input`), so
the rules, limits and errors are the use cases' own; errors become statuses in
`herald.api.grpc.status`.
"""

from __future__ import annotations

from typing import Any

import grpc
import msgspec

from herald.api.grpc import convert
from herald.api.grpc import status as rpc
from herald.api.grpc.servicer import Context
from herald.api.grpc.v1 import notifications_pb2
from herald.api.grpc.v1 import templates_pb2 as pb
from herald.auth.keys import Principal
from herald.errors import FieldProblem, InvalidInput
from herald.messages.template_input import PreviewInput, PreviewOut, TemplateInput
from herald.messages.templates import TemplateVersion
from herald.resources import Resources

TEMPLATE_SERVICE_NAME = pb.DESCRIPTOR.services_by_name["TemplateService"].full_name
_OPTIONAL = {"subject", "text", "html", "title", "body"}


def _content(message: Any) -> dict[str, Any]:
    """One channel's content message as the wire dict (unset optionals left out)."""
    found: dict[str, Any] = {}
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            found[descriptor.name] = dict(value)
        elif descriptor.message_type is not None:
            found[descriptor.name] = _content(value)
        elif descriptor.is_repeated:
            found[descriptor.name] = list(value)
        else:
            found[descriptor.name] = value
    for descriptor in message.DESCRIPTOR.fields:  # plain (required) strings, even empty
        plain = descriptor.type == descriptor.TYPE_STRING and not descriptor.has_presence
        if plain and not descriptor.is_repeated:
            found.setdefault(descriptor.name, getattr(message, descriptor.name))
    return found


def _decode(value: dict[str, Any], kind: type[Any], field: str) -> Any:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"{field}: {exc}", problems=[FieldProblem(field, str(exc))]) from None


def template_input(message: pb.TemplateInput) -> TemplateInput:
    value: dict[str, Any] = {
        "default_locale": message.default_locale,
        "locales": {locale: _content(content) for locale, content in message.locales.items()},
        "critical": message.critical,
    }
    if message.HasField("category"):
        value["category"] = message.category
    return _decode(value, TemplateInput, "template")  # type: ignore[no-any-return]


def _locale_content(value: dict[str, Any]) -> pb.LocaleContent:
    message = pb.LocaleContent()
    for channel, content in value.items():
        target = getattr(message, channel)
        for name, field in content.items():
            if name == "data":
                target.data.update(field)
            elif name == "template":
                target.template.CopyFrom(pb.WhatsAppTemplateContent(**field))
            else:
                setattr(target, name, field)
    return message


def template(value: TemplateVersion) -> pb.Template:
    message = pb.Template(
        key=value.key,
        version=value.version,
        critical=value.critical,
        default_locale=value.default_locale,
        created_at=convert.timestamp(value.created_at),
    )
    if value.category is not None:
        message.category = value.category
    for locale, content in value.locales.items():
        message.locales[locale].CopyFrom(_locale_content(content))
    return message


def preview_input(request: pb.PreviewTemplateRequest) -> PreviewInput:
    value: dict[str, Any] = {"data": convert.struct_to_dict(request.data, "data")}
    if request.HasField("recipient"):
        recipient = _content(request.recipient)
        recipient["data"] = convert.struct_to_dict(request.recipient.data, "recipient.data")
        value["recipient"] = recipient
    if request.HasField("recipient_id"):
        if "recipient" in value:
            message = "give recipient or recipient_id, not both"
            raise InvalidInput(message, problems=[FieldProblem("recipient_id", message)])
        value["recipient"] = request.recipient_id
    if request.HasField("locale"):
        value["locale"] = request.locale
    if request.channels:
        value["channels"] = [
            convert._enum_value(convert.CHANNEL_FROM_PROTO, c, unspecified="<unspecified>")
            for c in request.channels
        ]
    if request.HasField("version"):
        value["version"] = request.version
    return _decode(value, PreviewInput, "preview")  # type: ignore[no-any-return]


def preview(value: PreviewOut) -> pb.PreviewTemplateResponse:
    response = pb.PreviewTemplateResponse(
        key=value.key, version=value.version, locale_used=value.locale_used
    )
    for rendered in value.channels:
        item = response.channels.add(channel=convert.CHANNEL_TO_PROTO[rendered.channel])  # type: ignore[index]
        for name in ("subject", "body", "html"):
            if getattr(rendered, name) is not None:
                setattr(item, name, getattr(rendered, name))
        item.data.update(rendered.data or {})
        if rendered.template is not None:
            spec = rendered.template
            item.template.CopyFrom(
                notifications_pb2.WhatsAppTemplate(
                    name=spec.name, language=spec.language, parameters=spec.parameters
                )
            )
    return response


class TemplateService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._use_cases = resources.templates

    async def _principal(self, context: Context) -> Principal:
        return await self._resources.authenticator.authenticate(
            rpc.metadata(context, "authorization")
        )

    async def save_template(self, request: pb.SaveTemplateRequest, context: Context) -> pb.Template:
        principal = await self._principal(context)
        saved = await self._use_cases.save_template(
            principal, request.key, template_input(request.template)
        )
        return template(saved)

    async def get_template(self, request: pb.GetTemplateRequest, context: Context) -> pb.Template:
        principal = await self._principal(context)
        version = request.version if request.HasField("version") else None
        return template(await self._use_cases.get_template(principal, request.key, version))

    async def list_templates(
        self, request: pb.ListTemplatesRequest, context: Context
    ) -> pb.ListTemplatesResponse:
        principal = await self._principal(context)
        page = await self._use_cases.list_templates(
            principal, limit=request.limit or convert.DEFAULT_PAGE, cursor=request.cursor or None
        )
        return pb.ListTemplatesResponse(
            templates=[template(t) for t in page.items], next_cursor=page.next_cursor or ""
        )

    async def delete_template(
        self, request: pb.DeleteTemplateRequest, context: Context
    ) -> pb.DeleteTemplateResponse:
        principal = await self._principal(context)
        await self._use_cases.delete_template(principal, request.key)
        return pb.DeleteTemplateResponse()

    async def preview_template(
        self, request: pb.PreviewTemplateRequest, context: Context
    ) -> pb.PreviewTemplateResponse:
        principal = await self._principal(context)
        rendered = await self._use_cases.preview_template(
            principal, request.key, preview_input(request)
        )
        return preview(rendered)

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        """The service's methods, with requests that fail to decode answered INVALID_ARGUMENT."""
        unary: dict[str, tuple[Any, Any, Any]] = {
            "SaveTemplate": (self.save_template, pb.SaveTemplateRequest, pb.Template),
            "GetTemplate": (self.get_template, pb.GetTemplateRequest, pb.Template),
            "ListTemplates": (
                self.list_templates,
                pb.ListTemplatesRequest,
                pb.ListTemplatesResponse,
            ),
            "DeleteTemplate": (
                self.delete_template,
                pb.DeleteTemplateRequest,
                pb.DeleteTemplateResponse,
            ),
            "PreviewTemplate": (
                self.preview_template,
                pb.PreviewTemplateRequest,
                pb.PreviewTemplateResponse,
            ),
        }
        methods = rpc.unary_methods(unary)
        return grpc.method_handlers_generic_handler(TEMPLATE_SERVICE_NAME, methods)
