"""manage.py latency_report: percentiles per endpoint and per job from JSON-lines logs."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from health.latency import percentile


def write_log(path: Path) -> None:
    lines = ["gunicorn booting (not JSON)", "{broken json"]
    for ms in range(1, 101):  # 1..100 ms
        lines.append(
            json.dumps(
                {
                    "event": "api_request",
                    "route": "/api/orders/",
                    "method": "GET",
                    "status": 200,
                    "duration_ms": ms,
                    "request_id": "r",
                }
            )
        )
    lines.append(
        json.dumps(
            {"event": "api_request", "route": "/api/orders/", "method": "POST", "status": 500, "duration_ms": 40}
        )
    )
    for ms in (100, 200, 300, 400):
        lines.append(
            json.dumps(
                {
                    "event": "job_metric",
                    "metric_type": "job",
                    "job_name": "collect_market_data",
                    "duration_ms": ms,
                    "success": ms != 400,
                    "error": None,
                    "timestamp": "2026-01-01T00:00:00Z",
                }
            )
        )
    lines.append(json.dumps({"event": "request_finished", "code": 200}))  # no duration: not counted
    lines.append(json.dumps([1, 2, 3]))
    path.write_text("\n".join(lines) + "\n")


def run(*args: str) -> str:
    stdout = StringIO()
    call_command("latency_report", *args, stdout=stdout)
    return stdout.getvalue()


def test_json_report(tmp_path):
    log = tmp_path / "app.log"
    write_log(log)
    report = json.loads(run(str(log), "--json"))
    assert report["skipped_lines"] == 3
    by_name = {summary["name"]: summary for summary in report["summaries"]}
    get = by_name["GET /api/orders/"]
    assert (get["kind"], get["count"], get["failures"]) == ("endpoint", 100, 0)
    assert (get["p50_ms"], get["p95_ms"], get["p99_ms"], get["max_ms"]) == (50.5, 95.05, 99.01, 100.0)
    assert by_name["POST /api/orders/"]["failures"] == 1
    job = by_name["collect_market_data"]
    assert (job["kind"], job["count"], job["failures"], job["p50_ms"]) == ("job", 4, 1, 250.0)


def test_table_report(tmp_path):
    log = tmp_path / "app.log"
    write_log(log)
    output = run(str(log))
    assert "GET /api/orders/" in output
    assert "collect_market_data" in output
    assert "(3 non-JSON lines skipped)" in output


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="log file not found"):
        run(str(tmp_path / "nope.log"))


def test_empty_log(tmp_path):
    log = tmp_path / "empty.log"
    log.write_text("")
    assert "no api_request or job metric events" in run(str(log))


def test_percentile_interpolates():
    assert percentile([10.0], 0.99) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_report_reads_what_the_real_pipeline_writes(tmp_path, client, db, settings):
    """End to end: requests through the middleware, rendered by the configured formatter, reported."""
    import logging

    log = tmp_path / "live.log"
    handler = logging.FileHandler(log)
    handler.setFormatter(logging.getLogger().handlers[0].formatter)
    logger = logging.getLogger("health.requests")
    jobs = logging.getLogger("health.jobs")
    for each in (logger, jobs):
        each.addHandler(handler)
        each.setLevel(logging.INFO)
    try:
        for _ in range(3):
            client.get("/health/", HTTP_HOST="localhost")
        from health.logging import bind_job, log_job_metric

        with bind_job("cleanup_old_data"):
            log_job_metric("cleanup_old_data", duration_ms=12.5, success=True)
    finally:
        for each in (logger, jobs):
            each.removeHandler(handler)
        handler.close()
    report = json.loads(run(str(log), "--json"))
    by_name = {summary["name"]: summary for summary in report["summaries"]}
    assert by_name["GET /health/"]["count"] == 3
    assert by_name["cleanup_old_data"]["p99_ms"] == 12.5
