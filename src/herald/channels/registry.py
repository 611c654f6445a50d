"""`open_providers(settings)`: the provider of each channel, as the settings choose."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from herald import __version__
from herald.channels.base import Provider
from herald.channels.email import SmtpProvider
from herald.channels.log import LogProvider
from herald.channels.push import FcmProvider, ServiceAccount
from herald.channels.sms import TwilioProvider
from herald.channels.whatsapp import WhatsAppCloudProvider
from herald.config import Settings
from herald.vocabulary import CHANNELS


def http_client(settings: Settings) -> httpx.AsyncClient:
    """The HTTP client the providers share: bounded pool, every timeout the provider timeout."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.provider_timeout_seconds),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": f"herald/{__version__}"},
    )


def build_providers(settings: Settings, client: httpx.AsyncClient) -> dict[str, Provider]:
    """One provider per channel; `SettingsError` if the FCM key file cannot be used."""
    providers: dict[str, Provider] = {channel: LogProvider(channel) for channel in CHANNELS}
    if settings.email_provider == "smtp":
        providers["email"] = SmtpProvider(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.email_from,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value(),
            starttls=settings.smtp_starttls,
            implicit_tls=settings.smtp_implicit_tls,
            timeout=settings.provider_timeout_seconds,
            pool_size=settings.concurrency_for("email"),
        )
    if settings.sms_provider == "twilio":
        providers["sms"] = TwilioProvider(
            client,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            sender=settings.twilio_from,
            base_url=settings.twilio_base_url,
        )
    if settings.push_provider == "fcm":
        providers["push"] = FcmProvider(
            client,
            project_id=settings.fcm_project_id,
            credentials=ServiceAccount.from_file(settings.fcm_credentials_file),
            base_url=settings.fcm_base_url,
        )
    if settings.whatsapp_provider == "meta":
        providers["whatsapp"] = WhatsAppCloudProvider(
            client,
            phone_number_id=settings.whatsapp_phone_number_id,
            access_token=settings.whatsapp_access_token.get_secret_value(),
            api_version=settings.whatsapp_api_version,
            base_url=settings.whatsapp_base_url,
        )
    return providers


@asynccontextmanager
async def open_providers(settings: Settings) -> AsyncIterator[dict[str, Provider]]:
    """One provider per channel, as the settings choose; one shared httpx.AsyncClient (limits
    + timeouts from PROVIDER_TIMEOUT_SECONDS). On exit, providers with an `aclose` (SMTP's
    pool) close their connections, then the client closes."""
    client = http_client(settings)
    try:
        providers = build_providers(settings, client)
        try:
            yield providers
        finally:
            for provider in providers.values():
                close = getattr(provider, "aclose", None)  # providers holding connections
                if close is not None:
                    await close()
    finally:
        await client.aclose()
