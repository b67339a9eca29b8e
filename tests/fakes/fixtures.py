"""Pytest fixtures for the shared fakes (registered in tests/conftest.py via ``pytest_plugins``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.slack import FakeSlack
from tests.fakes.upbit import TEST_ACCESS_KEY, TEST_SECRET_KEY, FakeUpbit


class FakeClock:
    """A monotonic clock that only moves when ``sleep`` is called: tests never wait for real."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_upbit() -> Iterator[FakeUpbit]:
    """A running fake Upbit (rate limits on), keys ``TEST_ACCESS_KEY`` / ``TEST_SECRET_KEY``."""
    with FakeUpbit() as server:
        yield server


@pytest.fixture
def upbit_settings(settings, fake_upbit: FakeUpbit):
    """Point the settings (and so ``get_exchange()``) at the fake Upbit."""
    settings.EXCHANGE = "upbit"
    settings.UPBIT_API_URL = fake_upbit.url
    settings.UPBIT_ACCESS_KEY = TEST_ACCESS_KEY
    settings.UPBIT_SECRET_KEY = TEST_SECRET_KEY
    settings.UPBIT_CONNECT_TIMEOUT = 1.0
    settings.UPBIT_READ_TIMEOUT = 1.0
    return settings


@pytest.fixture
def upbit_client(fake_upbit: FakeUpbit, fake_clock: FakeClock):
    """An ``UpbitExchange`` against the fake whose sleeps (backoff, throttling) only move ``fake_clock``."""
    from trading.clients.exchange.upbit import UpbitExchange

    client = UpbitExchange(
        TEST_ACCESS_KEY,
        TEST_SECRET_KEY,
        fake_upbit.url,
        connect_timeout=1.0,
        read_timeout=0.5,
        sleep=fake_clock.sleep,
        clock=fake_clock,
        close_at_exit=False,
    )
    yield client
    client.close()


@pytest.fixture
def fake_slack(settings) -> Iterator[FakeSlack]:
    """A running fake Slack webhook, configured as ``settings.SLACK_WEBHOOK_URL``."""
    with FakeSlack() as server:
        settings.SLACK_WEBHOOK_URL = server.webhook_url
        settings.SLACK_TIMEOUT = 0.5
        yield server
