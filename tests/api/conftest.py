"""One `herald serve` shared by the live-interface tests (each test uses keys of its own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import base_env
from tests.support.process import HeraldProcess


@pytest.fixture(scope="session")
def server() -> Iterator[HeraldProcess]:
    process = HeraldProcess(
        {**base_env(), "RETRY_BASE_SECONDS": "0.05", "STREAM_HEARTBEAT_SECONDS": "0.3"}
    )
    process.start()
    yield process
    process.stop()
