"""Request id round-trip, api_request events and the request histogram."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

from health.metrics import API_REQUEST_DURATION
from health.middleware import valid_request_id


@pytest.fixture
def captured_logs():
    root_formatter = logging.getLogger().handlers[0].formatter
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(root_formatter)
    loggers = [logging.getLogger("health.requests"), logging.getLogger("django_structlog")]
    previous = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    for logger, (level, propagate) in zip(loggers, previous, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def get(client, path="/health/", **headers):
    return client.get(path, HTTP_HOST="localhost", **headers)


def test_a_valid_request_id_is_echoed_and_logged(client, captured_logs):
    response = get(client, HTTP_X_REQUEST_ID="edge-42.abc_DEF")
    assert response["X-Request-ID"] == "edge-42.abc_DEF"
    events = captured_logs()
    finished = [event for event in events if event["event"] == "request_finished"]
    api = [event for event in events if event["event"] == "api_request"]
    assert finished and finished[0]["request_id"] == "edge-42.abc_DEF"
    assert api == [
        {
            "route": "/health/",
            "method": "GET",
            "status": 200,
            "duration_ms": api[0]["duration_ms"],
            "event": "api_request",
            "request_id": "edge-42.abc_DEF",
            "user_id": None,
            "ip": "127.0.0.1",
            "level": "info",
            "logger": "health.requests",
            "timestamp": api[0]["timestamp"],
        }
    ]
    assert api[0]["duration_ms"] >= 0


def test_a_missing_request_id_is_generated(client, captured_logs):
    response = get(client)
    generated = response["X-Request-ID"]
    assert uuid.UUID(generated).version == 4
    assert {event.get("request_id") for event in captured_logs()} == {generated}


@pytest.mark.parametrize("bad", ["x" * 65, "has space", 'inject"quote', "ünï", "a/b", ""])
def test_an_invalid_request_id_is_replaced(client, bad, captured_logs):
    response = get(client, HTTP_X_REQUEST_ID=bad)
    echoed = response["X-Request-ID"]
    assert echoed != bad
    assert uuid.UUID(echoed).version == 4
    assert {event.get("request_id") for event in captured_logs()} == {echoed}


def test_valid_request_id_rules():
    assert valid_request_id("a" * 64) == "a" * 64
    assert valid_request_id("A.b-c_9") == "A.b-c_9"
    assert valid_request_id("a" * 65) != "a" * 65
    assert valid_request_id(None)


def _count(route: str, method: str, status: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(
        "api_request_duration_seconds_count", {"route": route, "method": method, "status": status}
    )
    return value or 0.0


def test_requests_are_observed_by_route_template(client, db):
    before = _count("/health/", "GET", "200")
    before_unmatched = _count("unmatched", "GET", "404")
    get(client)
    get(client, "/no/such/page/123")
    assert _count("/health/", "GET", "200") == before + 1
    assert _count("unmatched", "GET", "404") == before_unmatched + 1
    assert API_REQUEST_DURATION._name == "api_request_duration_seconds"


def test_an_exception_in_a_view_is_counted_as_500_under_its_route_template(client, settings, db):
    settings.ROOT_URLCONF = "tests.health.broken_urls"
    client.raise_request_exception = False
    before = _count("/boom/<int:pk>/", "GET", "500")
    response = get(client, "/boom/7/", HTTP_X_REQUEST_ID="crash-1")
    assert response.status_code == 500
    assert response["X-Request-ID"] == "crash-1"
    assert _count("/boom/<int:pk>/", "GET", "500") == before + 1
