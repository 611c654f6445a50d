"""Fallback routing and quiet hours, against the provider stand-ins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.messages.routing_fixtures import ALERT, FALLBACK
from tests.messages.support import Providers, put, send, statuses, wait_message, welcome_jane
from tests.support.standin import Answer


def _unregistered(token: str, n: int) -> tuple[int, dict[str, Any]]:
    error = {
        "code": 404,
        "message": "Requested entity was not found.",
        "status": "NOT_FOUND",
        "details": [
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": "UNREGISTERED",
            }
        ],
    }
    return 404, {"error": error}


async def test_push_fails_for_good_then_sms_is_sent(
    client: httpx.AsyncClient, api_key: str, providers: Providers
) -> None:
    await welcome_jane(client, api_key)
    await put(client, api_key, "/v1/templates/alert", ALERT)
    providers.fcm_answer = _unregistered
    accepted = (await send(client, api_key, FALLBACK)).json()
    assert accepted["channels"] == ["push", "sms"]
    assert [n["channel"] for n in accepted["notifications"]] == ["push"]
    assert accepted["pending"] == ["sms"]

    done = await wait_message(
        client, api_key, accepted["id"], lambda m: statuses(m).get("sms") == "sent"
    )
    assert statuses(done) == {"push": "failed", "sms": "sent"}
    assert done.get("pending", []) == []
    (sms,) = providers.twilio.received
    assert (sms.to, sms.body) == ("+447700900123", "New sign-in, Jane")


async def test_push_succeeds_so_no_sms(
    client: httpx.AsyncClient, api_key: str, providers: Providers
) -> None:
    await welcome_jane(client, api_key)
    await put(client, api_key, "/v1/templates/alert", ALERT)
    accepted = (await send(client, api_key, FALLBACK)).json()
    done = await wait_message(
        client, api_key, accepted["id"], lambda m: statuses(m) == {"push": "sent"}
    )
    # the push was recorded sent: fallback runs only on a failure, so nothing else follows
    assert [n["channel"] for n in done["notifications"]] == ["push"]
    assert done["skipped"] == [
        {"channel": "email", "reason": "not_requested"},
        {"channel": "sms", "reason": "not_needed"},
    ]
    assert providers.twilio.received == []


async def test_sms_failing_too_ends_the_message_with_both_failed(
    client: httpx.AsyncClient, api_key: str, providers: Providers
) -> None:
    await welcome_jane(client, api_key)
    await put(client, api_key, "/v1/templates/alert", ALERT)
    providers.fcm_answer = _unregistered

    def refuse(token: str, n: int) -> Answer:
        return 400, {"code": 21211, "message": "invalid number"}, {}

    providers.twilio.respond = refuse
    accepted = (await send(client, api_key, FALLBACK)).json()
    done = await wait_message(
        client, api_key, accepted["id"], lambda m: statuses(m).get("sms") == "failed"
    )
    assert statuses(done) == {"push": "failed", "sms": "failed"}
    assert len(providers.twilio.received) == 1


def _next_local(hour: int, zone: ZoneInfo) -> datetime:
    """The next time the clock in `zone` reads `hour`:00, at least an hour from now."""
    now = datetime.now(zone)
    candidate = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    while candidate < now + timedelta(hours=1):
        candidate += timedelta(days=1)
    return candidate


async def test_a_message_at_23_00_recipient_time_goes_out_when_quiet_hours_end(
    client: httpx.AsyncClient, api_key: str, providers: Providers
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    await welcome_jane(client, api_key)
    await put(
        client,
        api_key,
        "/v1/recipients/user-42/preferences",
        {"quiet_hours": {"start": "22:00", "end": "07:00"}},
    )
    late = _next_local(23, berlin)
    body = {
        "template": "welcome",
        "recipient": "user-42",
        "data": {"name": "Jane"},
        "send_at": late.isoformat(),
    }
    accepted = (await send(client, api_key, body)).json()
    morning = (late + timedelta(days=1)).replace(hour=7)
    assert datetime.fromisoformat(accepted["deferred"]["until"]) == morning
    assert accepted["deferred"]["reason"] == "quiet_hours"
    for notification in accepted["notifications"]:
        assert notification["status"] == "scheduled"
        assert datetime.fromisoformat(notification["send_at"]) == morning
        assert datetime.fromisoformat(notification["next_attempt_at"]) == morning
    assert accepted["skipped"] == [{"channel": "sms", "reason": "not_in_template"}]

    # at noon their time nothing waits; a critical template ignores the quiet hours
    noon = _next_local(12, berlin)
    body["send_at"] = noon.isoformat()
    assert "deferred" not in (await send(client, api_key, body)).json()
    critical = {**ALERT, "critical": True}
    await put(client, api_key, "/v1/templates/alert", critical)
    urgent = {
        "template": "alert",
        "recipient": "user-42",
        "data": {"name": "Jane"},
        "send_at": late.isoformat(),
    }
    sent = (await send(client, api_key, urgent)).json()
    assert "deferred" not in sent
    assert {datetime.fromisoformat(n["send_at"]) for n in sent["notifications"]} == {late}


async def test_inside_quiet_hours_now_it_waits_and_goes_out_at_their_end(
    app_client: Any, api_key: str, providers: Providers
) -> None:
    """`now` injected: the use case's clock says it is 23:30 in Berlin, quiet hours ended a
    moment ago in real time, so the deferred notification goes out at once."""
    app, client = app_client
    await welcome_jane(client, api_key)
    await put(
        client,
        api_key,
        "/v1/recipients/user-42/preferences",
        {"quiet_hours": {"start": "22:00", "end": "07:00"}},
    )
    berlin = ZoneInfo("Europe/Berlin")
    real_now = datetime.now(UTC)
    seven = real_now.astimezone(berlin).replace(hour=7, minute=0, second=0, microsecond=0)
    if seven > real_now:
        seven -= timedelta(days=1)
    # the evening before the last 07:00 that has passed
    app.state.resources.messages.clock = lambda: (seven - timedelta(days=1)).replace(hour=23)
    accepted = (
        await send(
            client,
            api_key,
            {"template": "welcome", "recipient": "user-42", "data": {"name": "Jane"}},
        )
    ).json()
    assert datetime.fromisoformat(accepted["deferred"]["until"]) == seven
    done = await wait_message(
        client,
        api_key,
        accepted["id"],
        lambda m: all(n["status"] == "sent" for n in m["notifications"]),
    )
    assert statuses(done) == {"email": "sent", "push": "sent"}
