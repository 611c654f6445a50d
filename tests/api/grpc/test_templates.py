"""`herald.v1.TemplateService`: the same template operations, rules and errors as REST."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct

from herald.api.grpc.v1 import notifications_pb2 as npb
from herald.api.grpc.v1 import templates_pb2 as pb
from herald.api.grpc.v1.templates_pb2_grpc import TemplateServiceStub
from tests.api.grpc.conftest import GrpcApp, key_metadata
from tests.api.grpc.test_service import violations
from tests.notifications.conftest import new_key

WELCOME = pb.TemplateInput(
    default_locale="en",
    category="account",
    locales={
        "en": pb.LocaleContent(
            email=pb.EmailContent(
                subject="Welcome, {{ name }}",
                text="Hi {{ name }}",
                html="<p>Hi <b>{{ name }}</b></p>",
            ),
            push=pb.PushContent(title="Welcome", body="Hi {{ name }}", data={"who": "{{ name }}"}),
        ),
        "de": pb.LocaleContent(
            whatsapp=pb.WhatsAppContent(
                template=pb.WhatsAppTemplateContent(
                    name="welcome", language="de", parameters=["{{ recipient.id }}"]
                )
            )
        ),
    },
)


def data(**values: str) -> Struct:
    struct = Struct()
    struct.update(values)
    return struct


async def test_save_get_list_preview_and_delete(grpc_app: GrpcApp) -> None:
    stub = TemplateServiceStub(grpc_app.channel)
    meta = key_metadata(await new_key("grpc-templates"))
    first = await stub.SaveTemplate(
        pb.SaveTemplateRequest(key="welcome", template=WELCOME), metadata=meta
    )
    second = await stub.SaveTemplate(
        pb.SaveTemplateRequest(key="welcome", template=WELCOME), metadata=meta
    )
    assert (first.version, second.version) == (1, 2)
    got = await stub.GetTemplate(pb.GetTemplateRequest(key="welcome", version=1), metadata=meta)
    assert got.locales["en"].email.subject == "Welcome, {{ name }}"
    assert got.locales["de"].whatsapp.template.parameters == ["{{ recipient.id }}"]
    assert got.category == "account"
    listed = await stub.ListTemplates(pb.ListTemplatesRequest(), metadata=meta)
    assert [(t.key, t.version) for t in listed.templates] == [("welcome", 2)]

    english = await stub.PreviewTemplate(
        pb.PreviewTemplateRequest(key="welcome", data=data(name="<Jane>")), metadata=meta
    )
    assert english.locale_used == "en"
    email, push = english.channels
    assert (email.channel, email.subject, email.body) == (
        npb.CHANNEL_EMAIL,
        "Welcome, <Jane>",
        "Hi <Jane>",
    )
    assert email.html == "<p>Hi <b>&lt;Jane&gt;</b></p>"
    assert dict(push.data) == {"who": "<Jane>"}
    german = await stub.PreviewTemplate(
        pb.PreviewTemplateRequest(
            key="welcome",
            recipient=pb.PreviewRecipient(id="user-42", locale="de-AT"),
            channels=[npb.CHANNEL_WHATSAPP],
        ),
        metadata=meta,
    )
    assert german.locale_used == "de"
    assert german.channels[0].template.parameters == ["user-42"]

    await stub.DeleteTemplate(pb.DeleteTemplateRequest(key="welcome"), metadata=meta)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetTemplate(pb.GetTemplateRequest(key="welcome"), metadata=meta)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_preview_with_a_recipient_id_no_recipient_can_have_is_invalid(
    grpc_app: GrpcApp,
) -> None:
    stub = TemplateServiceStub(grpc_app.channel)
    meta = key_metadata(await new_key("grpc-templates"))
    await stub.SaveTemplate(pb.SaveTemplateRequest(key="welcome", template=WELCOME), metadata=meta)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.PreviewTemplate(
            pb.PreviewTemplateRequest(key="welcome", data=data(name="x"), recipient_id="a\x00b"),
            metadata=meta,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "recipient" in (caught.value.details() or "")


async def test_syntax_errors_and_missing_variables_name_the_field(grpc_app: GrpcApp) -> None:
    stub = TemplateServiceStub(grpc_app.channel)
    meta = key_metadata(await new_key("grpc-templates"))
    broken = pb.TemplateInput(
        default_locale="en",
        locales={"en": pb.LocaleContent(sms=pb.SmsContent(body="Hi\n{{ name }"))},
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SaveTemplate(pb.SaveTemplateRequest(key="t", template=broken), metadata=meta)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value)["locales.en.sms.body"].startswith("line 2:")

    await stub.SaveTemplate(pb.SaveTemplateRequest(key="welcome", template=WELCOME), metadata=meta)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.PreviewTemplate(pb.PreviewTemplateRequest(key="welcome"), metadata=meta)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == {"data.name": "undefined variable 'name' in email.subject"}
