"""Enqueue pick-up jobs at a steady rate from a process of its own (another replica, an API
process): `python -m bench.enqueuer SYSTEM OPTIONS RATE COUNT`.
"""

from __future__ import annotations

import json
import sys

import uvloop

from bench.load import steady_rate
from bench.systems import make_system


async def enqueue(system_name: str, options: dict[str, object], rate: float, count: int) -> None:
    system = make_system(system_name, options)
    await system.connect()
    try:
        await steady_rate(system, rate, count)
    finally:
        await system.disconnect()


def main(argv: list[str]) -> None:
    system_name, options, rate, count = argv
    uvloop.run(enqueue(system_name, json.loads(options), float(rate), int(count)))


if __name__ == "__main__":
    main(sys.argv[1:])
