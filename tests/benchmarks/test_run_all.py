"""The benchmark runner: flags a script supports, missing/failed scripts reported, report contents."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

from benchmarks import common, run_all


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake_case.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_supported_args_keeps_only_flags_the_script_documents(tmp_path):
    script = _script(
        tmp_path,
        """
        import argparse
        parser = argparse.ArgumentParser()
        parser.add_argument("--block", type=float)
        parser.add_argument("--quick", action="store_true")
        parser.parse_args()
        """,
    )
    case = run_all.Case("fake", "t", "p", [str(script)])
    kept = run_all.supported_args(case, ["--block", "5", "--blocks", "2", "--quick", "--seconds", "3"])
    assert kept == ["--block", "5", "--quick"]


def test_a_missing_script_is_reported_missing_not_skipped():
    case = run_all.Case("fake", "t", "p", ["benchmarks/no_such.py"], script="benchmarks/no_such.py")
    outcome = run_all.run_case(case, full=False)
    assert outcome["status"] == "missing"
    assert "does not exist" in outcome["detail"]


def test_a_script_that_writes_nothing_new_fails_even_with_an_old_output_file(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "OUT_DIR", tmp_path)
    (tmp_path / "fake.json").write_text(json.dumps({"old": 1}))
    script = _script(tmp_path, "print('did nothing')\n")
    outcome = run_all.run_case(run_all.Case("fake", "t", "p", [str(script)]), full=False)
    assert outcome["status"] == "failed"
    assert outcome["detail"] == "the script wrote no new output"
    assert "data" not in outcome


def test_a_script_that_writes_its_json_is_ok_and_exit_1_means_bar_missed(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "OUT_DIR", tmp_path)
    script = _script(
        tmp_path,
        f"""
        import json, sys
        open({str(tmp_path / "fake.json")!r}, "w").write(json.dumps({{"figure": 3}}))
        sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
        """,
    )
    ok = run_all.run_case(run_all.Case("fake", "t", "p", [str(script)]), full=False)
    assert ok["status"] == "ok" and ok["data"] == {"figure": 3}
    missed = run_all.run_case(run_all.Case("fake", "t", "p", [str(script), "1"]), full=False)
    assert missed["status"] == "bar missed"


def test_an_unrecognised_output_format_falls_back_to_every_figure():
    rows, note = run_all.case_rows("pool", {"something": {"else": 2.5}, "count": 3})
    assert note and "not recognised" in note
    assert ("something.else", None, 2.5, None) in rows and ("count", None, 3, None) in rows


def test_report_names_failed_and_missing_cases_and_shows_ratios(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "REPORT", tmp_path / "REPORT.md")
    monkeypatch.setattr(common, "OUT_DIR", tmp_path)
    pool = {
        "before": ["no_pool", "pool_5_10"],
        "after": "pool_10_20",
        "summary": {
            "30": {
                "medians": {
                    "no_pool": {"ops_per_s": 100.0, "errors": 0, "p95_ms": 9.0, "peak_backends": 30},
                    "pool_5_10": {"ops_per_s": 200.0, "errors": 4, "p95_ms": 5.0, "peak_backends": 10},
                    "pool_10_20": {"ops_per_s": 300.0, "errors": 0, "p95_ms": 4.0, "peak_backends": 20},
                },
                "throughput_ratio_vs": {"no_pool": 3.0, "pool_5_10": 1.5},
            }
        },
    }
    results = {
        "pool": {"status": "ok", "data": pool, "command": "python -m benchmarks.cases.pool", "seconds": 1},
        "config_cache": {"status": "missing", "detail": "benchmarks/config_cache.py does not exist"},
        "api_latency": {"status": "failed", "returncode": 2, "stderr_tail": "Traceback: boom", "detail": ""},
    }
    run_all.write_report({"cpu": "Test CPU", "cores": 2, "date": "2026-01-01"}, results, "quick", "scripts/bench.sh")
    text = (tmp_path / "REPORT.md").read_text()
    assert "| cpu | Test CPU |" in text
    assert "ops/s at 30 workers (pool_5_10 → pool_10_20) | 200 | 300 | 1.5 | ok |" in text
    assert "**MISSING**" in text and "Not measured: benchmarks/config_cache.py does not exist" in text
    assert "**FAILED**" in text and "Traceback: boom" in text
    assert "| soak | - | **NOT RUN** |" in text


def test_runner_uses_this_interpreter():
    assert sys.executable == common.PYTHON
