"""`herald.batching`: one write for the callers of a turn, each answered on its own."""

from __future__ import annotations

import asyncio

from herald.batching import Batcher


async def test_callers_of_one_turn_share_a_write_and_each_gets_its_own_result() -> None:
    writes: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        writes.append(items)
        return [item * 10 for item in items]

    batcher = Batcher(write, max_size=100)
    results = await asyncio.gather(*(batcher.submit(n) for n in range(20)))
    assert results == [n * 10 for n in range(20)]
    assert writes == [list(range(20))]


async def test_a_failed_write_reaches_every_caller_of_its_batch_and_the_next_batch_runs() -> None:
    calls = 0

    async def write(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("down")
        return items

    batcher = Batcher(write, max_size=100)
    failed = await asyncio.gather(*(batcher.submit(n) for n in range(5)), return_exceptions=True)
    assert all(isinstance(f, ConnectionError) for f in failed)
    assert await batcher.submit(7) == 7


async def test_what_arrives_during_a_write_goes_in_the_next_and_max_size_splits_a_batch() -> None:
    writes: list[list[int]] = []
    in_flight, release = asyncio.Event(), asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        writes.append(items)
        in_flight.set()
        await release.wait()
        return items

    batcher = Batcher(write, max_size=3)
    first = [asyncio.ensure_future(batcher.submit(n)) for n in range(2)]
    await asyncio.wait_for(in_flight.wait(), timeout=5)
    later = [asyncio.ensure_future(batcher.submit(n)) for n in range(2, 7)]
    release.set()
    assert await asyncio.gather(*first, *later) == list(range(7))
    assert writes == [[0, 1], [2, 3, 4], [5, 6]]
