"""health.runner: concurrency, deadline, classification and aggregation (no database needed)."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from health.runner import DEGRADED, HEALTHY, UNHEALTHY, WARNING, aggregate, evaluate, run_checks


@dataclasses.dataclass(repr=False)
class Scripted(HealthCheck):
    component: str = "scripted"
    outcome: Exception | None = None
    delay: float = 0.0
    release: threading.Event | None = None

    def run(self) -> None:
        if self.release is not None:
            self.release.wait(5)
        time.sleep(self.delay)
        if self.outcome is not None:
            raise self.outcome


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([HEALTHY] * 6, HEALTHY),
        ([HEALTHY, WARNING, HEALTHY], DEGRADED),
        ([WARNING, UNHEALTHY, HEALTHY], UNHEALTHY),
        ([UNHEALTHY], UNHEALTHY),
        ([], HEALTHY),
    ],
)
def test_aggregate(statuses, expected):
    assert aggregate(statuses) == expected


def test_evaluate_classifies_outcomes():
    assert evaluate(Scripted("a")).status == HEALTHY
    assert evaluate(Scripted("b", ServiceWarning("slow"))).status == WARNING
    unavailable = evaluate(Scripted("c", ServiceUnavailable("down")))
    assert (unavailable.status, unavailable.message) == (UNHEALTHY, "down")
    crashed = evaluate(Scripted("d", ValueError("password=letmein123")))
    assert crashed.status == UNHEALTHY
    assert "letmein123" not in crashed.message


def test_checks_run_concurrently_not_one_after_another():
    checks = [Scripted(f"c{i}", delay=0.3) for i in range(6)]
    started = time.perf_counter()
    report = run_checks(checks, timeout=2.0, version="t")
    elapsed = time.perf_counter() - started
    assert [component.status for component in report.components] == [HEALTHY] * 6
    assert elapsed < 6 * 0.3  # sequential would take 1.8 s


def test_a_check_past_the_deadline_is_timed_out_and_not_awaited():
    release = threading.Event()
    try:
        started = time.perf_counter()
        report = run_checks([Scripted("hung", release=release), Scripted("quick")], timeout=0.2, version="t")
        elapsed = time.perf_counter() - started
    finally:
        release.set()
    assert elapsed < 1.0
    hung, quick = report.components
    assert (hung.name, hung.status, hung.latency_ms, hung.message) == ("hung", UNHEALTHY, None, "timed out after 0.2 s")
    assert quick.status == HEALTHY and quick.latency_ms is not None
    assert report.status == UNHEALTHY
