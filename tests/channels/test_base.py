"""The log provider, the error types and `open_providers`."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import herald.channels.log as log_module
from herald.channels import (
    Message,
    PermanentError,
    ProviderError,
    TransientError,
    open_providers,
)
from herald.channels.email import SmtpProvider
from herald.channels.log import LogProvider
from herald.channels.push import FcmProvider
from herald.channels.sms import TwilioProvider
from herald.channels.whatsapp import WhatsAppCloudProvider
from herald.config import Settings, SettingsError


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


async def test_log_provider_logs_a_masked_summary_never_the_content(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = Message(
        "0b8e4c1a-0000-4000-8000-000000000001",
        "email",
        "jane.doe@example.org",
        subject="Secret subject",
        body="Secret body text",
        html="<p>Secret html</p>",
    )
    with structlog.testing.capture_logs() as logs:
        # A fresh logger, so a cached one configured by an earlier test cannot bypass capture.
        monkeypatch.setattr(log_module, "log", structlog.get_logger())
        result = await LogProvider("email").send(message)

    assert result.provider_message_id == "log-0b8e4c1a-0000-4000-8000-000000000001"
    assert len(logs) == 1
    line = logs[0]
    assert line["event"] == "channel.logged"
    assert line["channel"] == "email"
    assert line["notification_id"] == message.notification_id
    assert line["to"] == "j***@example.org"
    assert (line["subject_length"], line["body_length"], line["html_length"]) == (14, 16, 18)
    rendered = json.dumps(line)
    for secret in ("Secret", "jane.doe"):
        assert secret not in rendered


def test_errors_carry_reason_and_retry_after_through_pickle() -> None:
    transient = pickle.loads(pickle.dumps(TransientError("twilio 20429: slow down", 7.0)))
    permanent = pickle.loads(pickle.dumps(PermanentError("twilio 21211: invalid To")))

    assert isinstance(transient, TransientError)
    assert (transient.reason, transient.retry_after) == ("twilio 20429: slow down", 7.0)
    assert str(transient) == "twilio 20429: slow down"
    assert isinstance(permanent, ProviderError)
    assert permanent.reason == "twilio 21211: invalid To"


async def test_open_providers_defaults_to_log_for_every_channel() -> None:
    async with open_providers(settings()) as providers:
        assert set(providers) == {"email", "sms", "push", "whatsapp"}
        for channel, provider in providers.items():
            assert isinstance(provider, LogProvider)
            assert (provider.name, provider.channel) == ("log", channel)


def _service_account_file(tmp_path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = tmp_path / "service-account.json"
    info = {"type": "service_account", "client_email": "h@p.iam", "private_key": pem}
    path.write_text(json.dumps(info))
    return path


async def test_open_providers_builds_the_configured_ones_and_closes_the_client(
    tmp_path: Path,
) -> None:
    configured = settings(
        email_provider="smtp",
        smtp_host="127.0.0.1",
        sms_provider="twilio",
        twilio_account_sid="AC123",
        twilio_auth_token="token",
        twilio_from="+15550001111",
        push_provider="fcm",
        fcm_project_id="proj",
        fcm_credentials_file=str(_service_account_file(tmp_path)),
        whatsapp_provider="meta",
        whatsapp_phone_number_id="1234",
        whatsapp_access_token="wa-token",
        provider_timeout_seconds=3,
    )
    async with open_providers(configured) as providers:
        email, sms = providers["email"], providers["sms"]
        push, whatsapp = providers["push"], providers["whatsapp"]
        assert isinstance(email, SmtpProvider)
        assert isinstance(sms, TwilioProvider)
        assert isinstance(push, FcmProvider)
        assert isinstance(whatsapp, WhatsAppCloudProvider)
        assert [p.name for p in (email, sms, push, whatsapp)] == ["smtp", "twilio", "fcm", "meta"]
        assert sms.client is push.client is whatsapp.client
        assert sms.client.timeout.read == 3
        assert email.timeout == 3
        assert push.url == "https://fcm.googleapis.com/v1/projects/proj/messages:send"
    assert sms.client.is_closed


@pytest.mark.parametrize("content", [None, "not json", json.dumps({"client_email": "x"})])
async def test_unusable_fcm_credentials_name_the_setting(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "key.json"
    if content is not None:
        path.write_text(content)
    configured = settings(
        push_provider="fcm", fcm_project_id="proj", fcm_credentials_file=str(path)
    )

    with pytest.raises(SettingsError, match="FCM_CREDENTIALS_FILE"):
        async with open_providers(configured):
            pass
