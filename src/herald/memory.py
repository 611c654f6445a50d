"""The memory ceiling: when the process's RSS stays above `MAX_MEMORY_MB`, drain and exit.

Like PM2's `max_memory_restart`: a process whose memory keeps growing (a leak, a huge
template, a library's cache) is replaced before the kernel's OOM killer takes it mid-delivery.
The monitor samples RSS every second; after `ABOVE_FOR_CHECKS` samples in a row above the
ceiling it logs `memory.ceiling_exceeded`, sets `herald_memory_ceiling_exceeded`, and asks the
server to drain exactly as on SIGTERM (readiness 503, no new jobs, running ones finish within
`SHUTDOWN_GRACE_SECONDS` or go back on their queue). The process then exits with
`EXIT_STATUS` (75, EX_TEMPFAIL: "try again"), so the supervisor (Kubernetes, systemd,
compose) starts a fresh one. A ceiling below the process's own size at the end of start-up is
refused then, naming the setting (exit status 2, a bad setting).
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
from collections.abc import Callable

import structlog

from herald import metrics

log = structlog.get_logger()

EXIT_STATUS = 75
CHECK_SECONDS = 1.0
ABOVE_FOR_CHECKS = 3
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """This process's resident set size now (Linux), or its peak where /proc is missing."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class CeilingTooLow(ValueError):
    """MAX_MEMORY_MB is below what the process needs to run at all."""


class MemoryCeiling:
    """Watches RSS against `limit_mb`; calls `exceeded()` once when it stays above it."""

    def __init__(self, limit_mb: int, exceeded: Callable[[], None]) -> None:
        self.limit = limit_mb * 1024 * 1024
        self._exceeded = exceeded
        self._task: asyncio.Task[None] | None = None
        metrics.memory_ceiling_bytes.set(self.limit)
        metrics.memory_ceiling_exceeded.set(0)

    def check_start_up(self) -> None:
        size = rss_bytes()
        if size >= self.limit:
            raise CeilingTooLow(
                f"MAX_MEMORY_MB={self.limit // 2**20} is below this process's size at start-up "
                f"({size // 2**20} MB): set it well above, or leave it empty to turn it off"
            )

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="herald-memory-ceiling")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        above = 0
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            size = rss_bytes()
            above = above + 1 if size > self.limit else 0
            if above >= ABOVE_FOR_CHECKS:
                metrics.memory_ceiling_exceeded.set(1)
                log.warning(
                    "memory.ceiling_exceeded",
                    rss_mb=size // 2**20,
                    ceiling_mb=self.limit // 2**20,
                    detail=f"RSS stayed above MAX_MEMORY_MB for {ABOVE_FOR_CHECKS} s: draining "
                    f"as on SIGTERM, then exiting with status {EXIT_STATUS} to be restarted",
                )
                self._exceeded()
                return
