"""Shared by the browser tests: one headless Chromium for the whole run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser import BrowserThread


@pytest.fixture(scope="session")
def browser() -> Iterator[BrowserThread]:
    thread = BrowserThread()
    thread.start()
    yield thread
    thread.stop()
