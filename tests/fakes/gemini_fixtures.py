"""Pytest fixtures for the fake Gemini (registered in tests/conftest.py via ``pytest_plugins``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes.gemini import MODEL, TEST_GEMINI_KEY, FakeGemini


class WallClock:
    """An aware-UTC wall clock the test moves; ``sleep`` records and advances it (no real waiting)."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=max(seconds, 0.0))

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def wall_clock() -> WallClock:
    return WallClock(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))


@pytest.fixture
def fake_gemini() -> Iterator[FakeGemini]:
    """A running fake Gemini accepting ``TEST_GEMINI_KEY``."""
    with FakeGemini() as server:
        yield server


@pytest.fixture
def gemini_settings(settings, fake_gemini: FakeGemini):
    """Point the settings (and so ``get_signal_provider()``) at the fake Gemini."""
    settings.GEMINI_API_KEY = TEST_GEMINI_KEY
    settings.GEMINI_API_URL = fake_gemini.url
    settings.GEMINI_MODEL = MODEL
    settings.GEMINI_TIMEOUT = 1.0
    return settings


@pytest.fixture
def gemini_provider(fake_gemini: FakeGemini, wall_clock: WallClock):
    """A ``GeminiSignalProvider`` against the fake whose sleeps and clock are ``wall_clock``."""
    from trading.clients.ai.gemini import GeminiSignalProvider

    provider = GeminiSignalProvider(
        api_key=TEST_GEMINI_KEY,
        base_url=fake_gemini.url,
        model=MODEL,
        timeout=1.0,
        status_timeout=0.5,
        sleep=wall_clock.sleep,
        clock=wall_clock,
    )
    yield provider
    provider.close()
