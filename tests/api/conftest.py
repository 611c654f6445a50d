"""One `herald serve` shared by the live-interface tests (each test uses keys of its own).

Package-scoped: it stops when tests/api ends, so its workers never show up in other tests
(the dashboard counts the consumers of each queue)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import base_env
from tests.support.process import HeraldProcess


@pytest.fixture(scope="package")
def server() -> Iterator[HeraldProcess]:
    process = HeraldProcess(
        {**base_env(), "RETRY_BASE_SECONDS": "0.05", "STREAM_HEARTBEAT_SECONDS": "0.3"}
    )
    process.start()
    yield process
    process.stop()
