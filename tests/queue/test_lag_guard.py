"""The lag guard: event-loop lag holds the workers back while the API serves, and lets go."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import REGISTRY

from herald.queue.lag import LagGuard, api_active, note_request
from tests.conftest import make_settings, running_app


def _lags_over(seconds: str) -> float:
    """How many lag samples so far were above `seconds` (a bucket bound of the histogram)."""
    total = REGISTRY.get_sample_value("herald_event_loop_lag_seconds_count") or 0.0
    under = REGISTRY.get_sample_value("herald_event_loop_lag_seconds_bucket", {"le": seconds})
    return total - (under or 0.0)


async def _until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def _block_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # deliberately blocking: this is the lag under test


def _burn_cpu(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_lag_engages_the_guard_only_while_the_api_serves_and_it_releases() -> None:
    async with running_app(make_settings(lag_guard_seconds=0.05)) as (app, client):
        guard: LagGuard = app.state.lag_guard
        workers = app.state.resources.runtime.workers.values()
        assert all(w.worker.lag_guard is guard for w in workers)

        # The API idle: lag from the workers' side alone never holds them back.
        await _until(lambda: not api_active(), "the API to be idle")
        seen = _lags_over("0.1")
        _block_the_loop(0.3)
        await _until(lambda: _lags_over("0.1") > seen, "the lag to be measured")
        assert not guard.engaged

        # A request served, then the loop lags: the guard engages.
        engaged_before = REGISTRY.get_sample_value("herald_lag_guard_engaged_total") or 0.0
        assert (await client.get("/health/live")).status_code == 200
        _block_the_loop(0.3)
        await _until(lambda: guard.engaged, "the guard to engage")
        assert REGISTRY.get_sample_value("herald_lag_guard_engaged_total") == engaged_before + 1
        # Engaged: no new jobs beside running ones, one at a time when none runs.
        assert guard.free_slots(10, 3) == 0
        assert guard.free_slots(10, 0) == 1

        # The lag gone, the next sample releases it, and the workers take jobs again.
        await _until(lambda: not guard.engaged, "the guard to release")
        assert guard.free_slots(10, 3) == 10
        # The metric is exposed.
        metrics = (await client.get("/metrics")).text
        assert "herald_event_loop_lag_seconds_bucket" in metrics


async def test_the_guard_releases_when_the_api_goes_quiet_even_if_the_lag_stays() -> None:
    guard = LagGuard(threshold=0.05)
    released: list[bool] = []
    guard.on_release(lambda: released.append(True))
    note_request()
    guard.observe(0.2)
    assert guard.engaged
    guard.observe(0.04)  # still above half the threshold: hysteresis keeps it engaged
    assert guard.engaged
    await _until(lambda: not api_active(), "the API to be idle")
    guard.observe(0.2)
    assert not guard.engaged
    assert released == [True]


def test_a_zero_threshold_measures_only() -> None:
    guard = LagGuard(threshold=0)
    note_request()
    guard.observe(5.0)
    assert not guard.engaged
    assert guard.free_slots(10, 3) == 10


async def test_a_saturated_cpu_holds_the_workers_to_their_share_while_the_api_serves() -> None:
    """The second stage: at a core's worth of CPU while requests are served, the workers keep
    to half their slots (one at least); under 60% of a core, or the API quiet, all again."""
    guard = LagGuard(threshold=0.025, share=0.5)
    woken: list[bool] = []
    guard.on_release(lambda: woken.append(True))
    await _until(lambda: not api_active(), "the API to be idle")
    guard.observe_cpu(1.0)  # the workers' own load, nobody waiting on the API: full speed
    assert not guard.saturated
    assert guard.free_slots(10, 0) == 10

    note_request()
    engaged_before = REGISTRY.get_sample_value("herald_worker_share_engaged_total") or 0.0
    guard.observe_cpu(0.95)
    assert guard.saturated
    assert REGISTRY.get_sample_value("herald_worker_share_engaged_total") == engaged_before + 1
    assert REGISTRY.get_sample_value("herald_worker_share_held") == 1
    assert guard.free_slots(10, 0) == 5  # max 10, none running: up to 5
    assert guard.free_slots(7, 3) == 2
    assert guard.free_slots(4, 6) == 0  # over its share already: no new job
    saturated_one = LagGuard(0.025, share=0.01)
    saturated_one.observe_cpu(0.95)
    assert saturated_one.free_slots(3, 0) == 1  # never below one job

    guard.observe_cpu(0.7)  # between the two bounds: hysteresis keeps it
    assert guard.saturated
    assert woken == []
    guard.observe_cpu(0.5)
    assert not guard.saturated
    assert woken == [True]
    assert guard.free_slots(10, 0) == 10
    assert REGISTRY.get_sample_value("herald_worker_share_held") == 0

    guard.observe_cpu(0.95)
    assert guard.saturated
    await _until(lambda: not api_active(), "the API to be idle")
    guard.observe_cpu(0.95)
    assert not guard.saturated


def test_the_second_stage_is_off_at_a_share_of_one_or_a_zero_threshold() -> None:
    note_request()
    for guard in (LagGuard(threshold=0.025, share=1.0), LagGuard(threshold=0, share=0.5)):
        guard.observe_cpu(1.0)
        assert not guard.saturated
        assert guard.free_slots(10, 0) == 10


async def test_the_process_measures_its_cpu_and_engages_under_load() -> None:
    """In a running unified process the guard reads the process's CPU itself: a loop kept
    busy while the API serves engages the second stage, and quiet releases it."""
    async with running_app(make_settings(api_first_worker_share=0.5)) as (app, client):
        guard: LagGuard = app.state.lag_guard
        assert guard.share == 0.5

        async def serve_and_burn() -> None:
            while not guard.saturated:
                await client.get("/health/live")
                _burn_cpu(0.005)  # the CPU of the workers' jobs, as far as the guard sees
                await asyncio.sleep(0)

        await asyncio.wait_for(serve_and_burn(), timeout=10)
        await _until(lambda: not guard.saturated, "the second stage to release", timeout=10)
