"""Run every benchmark case, then write ``benchmarks/REPORT.md``, the charts and ``out/results.json``.

Each case runs in its own subprocess (settings such as pool sizes are per
process) and writes ``benchmarks/out/<case>.json``; every case alternates its
before/after variants over several repetitions and reports medians and the
after/before ratio. Cases owned by other modules (config cache, order
connection hold, API latency, cadence) are run the same way when their script
exists; a missing or failing script is reported as such in the report, never
skipped silently, and an output file that the run did not rewrite is never
reported as a result of this run.

    .venv/bin/python -m benchmarks.run_all            # quick profile (≈ 15 min on 2 cores)
    .venv/bin/python -m benchmarks.run_all --full     # longer runs, a year of market data
    .venv/bin/python -m benchmarks.run_all --only pool indexes
    .venv/bin/python -m benchmarks.run_all --report-only   # rebuild the report from out/*.json
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import common

REPORT = common.ROOT / "benchmarks" / "REPORT.md"
RESULTS = common.OUT_DIR / "results.json"


@dataclass
class Case:
    name: str
    title: str
    seed_prediction: str
    command: list[str]  # after the python executable
    quick_args: list[str] = field(default_factory=list)
    full_args: list[str] = field(default_factory=list)
    script: str | None = None  # a file owned elsewhere: run only when present
    timeout_quick: float = 600
    timeout_full: float = 3600


CASES = [
    Case(
        "pool",
        "Connection pool: throughput at 15 and 30 concurrent DB workers",
        "seed 001/002: pool 5(+10) → 10/20, “동시성 100% 개선”",
        ["-m", "benchmarks.cases.pool"],
        full_args=["--full"],
    ),
    Case(
        "config_cache",
        "Config reads: cached service vs a query per read",
        "seed 002: config cache, “DB 쿼리 99% 감소”, hit rate ≥ 95 % (SC-002)",
        ["benchmarks/config_cache.py"],
        script="benchmarks/config_cache.py",
    ),
    Case(
        "exchange_cache",
        "Balance/ticker: 10 s cache vs every read calling the exchange",
        "seed 002 §1.4: 10 s TTL cache, “API 호출 50-60% 감소”",
        ["-m", "benchmarks.cases.exchange_cache"],
        full_args=["--full"],
    ),
    Case(
        "market_stats",
        "Market statistics: SQL aggregation vs rows loaded into Python",
        "seed 002 §2.3: SQL aggregation, “응답시간 15% 개선”",
        ["-m", "benchmarks.cases.market_stats"],
        full_args=["--full"],
        timeout_quick=900,
    ),
    Case(
        "indexes",
        "Indexes: list/history queries with and without the seed's indexes",
        "seed 000 §6 / 002 §2.1: indexes, “쿼리 20-50% 개선”",
        ["-m", "benchmarks.cases.indexes"],
        full_args=["--full"],
    ),
    Case(
        "order_connection_hold",
        "Order execution: DB connection time held per order",
        "seed 001: no transaction across exchange I/O, “커넥션 사용률 50% 감소”",
        ["benchmarks/order_connection_hold.py"],
        quick_args=["--fill-delay", "5", "--repetitions", "3"],
        full_args=["--fill-delay", "30", "--repetitions", "5"],
        script="benchmarks/order_connection_hold.py",
    ),
    Case(
        "api_latency",
        "API latency at a fixed 20 req/s vs a bare-Django floor; saturation",
        "seed 003: API P95 < 500 ms, P99 < 1000 ms (our bar: P95 < 150 ms, P99 < 300 ms)",
        ["benchmarks/api_latency.py"],
        quick_args=["--block", "5", "--blocks", "2", "--saturation-seconds", "5", "--repetitions", "3"],
        full_args=["--block", "10", "--blocks", "3", "--saturation-seconds", "10", "--repetitions", "7"],
        script="benchmarks/api_latency.py",
        timeout_quick=900,
    ),
    Case(
        "cadence_check",
        "Job cadence: market data every 10 s under django-q2",
        "design brief: 10 s collection cadence (django-q2 schedules are whole minutes)",
        ["benchmarks/cadence_check.py", "--postgres", "--json", "benchmarks/out/cadence_check.json"],
        quick_args=["--duration", "60"],
        full_args=["--duration", "300"],
        script="benchmarks/cadence_check.py",
        timeout_quick=400,
        timeout_full=900,
    ),
]


# --- running ------------------------------------------------------------------------------------


def supported_args(case: Case, wanted: list[str]) -> list[str]:
    """Keep only the ``--flag value`` pairs the script's ``--help`` mentions (scripts change)."""
    if not wanted:
        return []
    result = subprocess.run(
        [common.PYTHON, *case.command, "--help"],
        cwd=common.ROOT,
        env=common.django_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    help_text = result.stdout
    kept: list[str] = []
    index = 0
    while index < len(wanted):
        flag = wanted[index]
        takes_value = index + 1 < len(wanted) and not wanted[index + 1].startswith("--")
        if flag in help_text:
            kept.extend(wanted[index : index + (2 if takes_value else 1)])
        index += 2 if takes_value else 1
    return kept


def run_case(case: Case, full: bool) -> dict[str, Any]:
    """Run one case; returns its status, timings and (when rewritten by this run) its figures."""
    if case.script and not (common.ROOT / case.script).exists():
        return {"status": "missing", "detail": f"{case.script} does not exist (not landed yet)"}
    out_file = common.OUT_DIR / f"{case.name}.json"
    previous_mtime = out_file.stat().st_mtime if out_file.exists() else None
    args = supported_args(case, case.full_args if full else case.quick_args)
    command = [*case.command, *args]
    print(f"== {case.name}: python {' '.join(command)}", file=sys.stderr, flush=True)
    outcome = common.run_python(
        command,
        env=common.django_env(DATABASE_URL=common.server_url()),
        timeout=case.timeout_full if full else case.timeout_quick,
    )
    outcome["command"] = "python " + " ".join(command)
    rewritten = out_file.exists() and out_file.stat().st_mtime != previous_mtime
    if rewritten:
        outcome["data"] = json.loads(out_file.read_text())
    if outcome["returncode"] == 0 and rewritten:
        outcome["status"] = "ok"
    elif rewritten:
        outcome["status"] = "bar missed" if outcome["returncode"] == 1 else "failed"
    else:
        outcome["status"] = "failed"
        outcome["detail"] = "the script wrote no new output"
    print(f"   {case.name}: {outcome['status']} in {outcome['seconds']} s", file=sys.stderr, flush=True)
    return outcome


# --- figures per case -----------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and abs(value) < 0.01:
            return f"{value:.2g}"
        return f"{value:,.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


Row = tuple[str, Any, Any, Any]  # metric, before, after, ratio


def figures_pool(data: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for threads, block in data["summary"].items():
        medians = block["medians"]
        for before in data["before"]:
            rows.append(
                (
                    f"ops/s at {threads} workers ({before} → {data['after']})",
                    medians[before]["ops_per_s"],
                    medians[data["after"]]["ops_per_s"],
                    block["throughput_ratio_vs"][before],
                )
            )
        rows.append(
            (
                f"errors at {threads} workers (pool_5_10 → {data['after']})",
                medians["pool_5_10"]["errors"],
                medians[data["after"]]["errors"],
                None,
            )
        )
        rows.append(
            (
                f"peak server connections at {threads} workers (no_pool → {data['after']})",
                medians["no_pool"]["peak_backends"],
                medians[data["after"]]["peak_backends"],
                common.ratio(medians[data["after"]]["peak_backends"], medians["no_pool"]["peak_backends"]),
            )
        )
    return rows


def figures_exchange_cache(data: dict[str, Any]) -> list[Row]:
    calls, wall, rest = (
        data["calls_per_hour"],
        data["wall_seconds_per_simulated_hour"],
        data["calls_per_hour_excluding_collection"],
    )
    rows: list[Row] = [
        ("exchange calls per hour of the job mix", calls["before"], calls["after"], calls["ratio"]),
        ("… excluding the 10 s collection (never cached)", rest["before"], rest["after"], rest["ratio"]),
        ("wall seconds per simulated hour (50 ms latency)", wall["before"], wall["after"], wall["ratio"]),
    ]
    for name, figures in data["per_component_per_hour"].items():
        rows.append((f"calls/h: {name}", figures["before"], figures["after"], figures["ratio"]))
    return rows


def figures_market_stats(data: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for label, window in data["windows"].items():
        seconds = window["seconds"]
        rows.append(
            (f"seconds, {label} ({window['rows']:,} rows)", seconds["before"], seconds["after"], seconds["ratio"])
        )
        before_mem = window["python_peak_rss_growth_bytes"] / 2**20
        after_mem = window["sql_peak_rss_growth_bytes"] / 2**20
        rows.append((f"peak RSS growth MiB, {label}", before_mem, after_mem, common.ratio(after_mem, before_mem)))
        rows.append((f"same answer, {label}", None, window["same_answer"], None))
    return rows


def figures_indexes(data: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for label, query in data["queries"].items():
        ms = query["milliseconds"]
        rows.append((f"ms, {label}", ms["before"], ms["after"], ms["ratio"]))
    used = sum(1 for q in data["queries"].values() if q["after_uses_index"])
    rows.append(("queries whose plan uses an index (after)", None, f"{used}/{len(data['queries'])}", None))
    return rows


def figures_config_cache(data: dict[str, Any]) -> list[Row]:
    cost, day = data["read_cost"], data["simulated_day"]
    return [
        (
            "µs per config read",
            cost["uncached_ns_per_read"] / 1000,
            cost["cached_ns_per_read"] / 1000,
            common.ratio(cost["cached_ns_per_read"], cost["uncached_ns_per_read"]),
        ),
        (
            "config-row queries per simulated day",
            day["queries_per_day_before"],
            day.get("row_loads_per_day_after"),
            common.ratio(day.get("row_loads_per_day_after"), day["queries_per_day_before"]),
        ),
        (
            "all queries per day incl. stamp checks and stats flushes",
            day["queries_per_day_before"],
            day["queries_per_day_after"],
            common.ratio(day["queries_per_day_after"], day["queries_per_day_before"]),
        ),
        ("hit rate over a simulated day, %", None, day["hit_rate_pct"], None),
    ]


def figures_order_connection_hold(data: dict[str, Any]) -> list[Row]:
    before, after = data["before"], data["after"]
    return [
        (
            f"connection ms held per order (fill after {data.get('fill_delay_s')} s)",
            before["connection_ms_median"],
            after["connection_ms_median"],
            data.get("connection_time_ratio_after_over_before"),
        ),
        ("wall seconds per order", before["wall_s_median"], after["wall_s_median"], None),
        ("pool checkouts per order", before["checkouts_per_order"][0], after["checkouts_per_order"][0], None),
    ]


def figures_api_latency(data: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    loop = data["open_loop"]
    for name, figures in loop.items():
        if name.startswith("floor_"):
            continue
        floor = loop.get(f"floor_{name}")
        for pct in ("p50_ms", "p95_ms", "p99_ms"):
            rows.append(
                (
                    f"{name} {pct.replace('_ms', '')} ms at {figures.get('rate_per_s', 20):g} req/s"
                    + (" (floor → API)" if floor else " (API)"),
                    floor[pct] if floor else None,
                    figures[pct],
                    common.ratio(figures[pct], floor[pct]) if floor else None,
                )
            )
        rows.append((f"{name} errors", None, figures.get("errors"), None))
    for name, figures in data.get("saturation_20_connections", {}).items():
        if name.startswith("floor_"):
            continue
        floor = data["saturation_20_connections"].get(f"floor_{name}")
        rows.append(
            (
                f"saturation req/s, {name} (floor → API)",
                floor["requests_per_s"] if floor else None,
                figures["requests_per_s"],
                common.ratio(figures["requests_per_s"], floor["requests_per_s"]) if floor else None,
            )
        )
    for window, figures in data.get("stats_sql_vs_python", {}).items():
        rows.append(
            (
                f"stats ms, {window} ({figures['rows']:,} rows; Python → SQL)",
                figures["python_ms"],
                figures["sql_ms"],
                common.ratio(figures["sql_ms"], figures["python_ms"]),
            )
        )
    return rows


def figures_cadence_check(data: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for key, value in data.items():
        if isinstance(value, (int, float)):  # bools included: pass/fail flags
            rows.append((key, None, value, None))
    return rows


def figures_generic(data: dict[str, Any]) -> list[Row]:
    """Fallback: every numeric leaf (lists of runs left out)."""
    rows: list[Row] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key not in {"machine", "name", "recorded_at"}:
                    walk(item, f"{path}.{key}" if path else key)
        elif isinstance(value, (int, float)) and len(rows) < 60:
            rows.append((path, None, value, None))

    walk(data, "")
    return rows


FIGURES: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "pool": figures_pool,
    "exchange_cache": figures_exchange_cache,
    "market_stats": figures_market_stats,
    "indexes": figures_indexes,
    "config_cache": figures_config_cache,
    "order_connection_hold": figures_order_connection_hold,
    "api_latency": figures_api_latency,
    "cadence_check": figures_cadence_check,
}


def case_rows(name: str, data: dict[str, Any]) -> tuple[list[Row], str | None]:
    try:
        return FIGURES.get(name, figures_generic)(data), None
    except (KeyError, TypeError, IndexError, ValueError) as error:
        # The script's output format changed: show every figure rather than nothing.
        return figures_generic(data), f"summary format not recognised ({type(error).__name__}: {error}); raw figures"


# --- charts ---------------------------------------------------------------------------------------


def chart(name: str, rows: list[Row], title: str) -> Path | None:
    """Before/after bars (log scale when the figures span decades) for rows that have both sides."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [
        (metric, before, after)
        for metric, before, after, _ in rows
        if isinstance(before, (int, float)) and isinstance(after, (int, float)) and not isinstance(after, bool)
    ]
    singles = [
        (metric, after)
        for metric, before, after, _ in rows
        if before is None and isinstance(after, (int, float)) and not isinstance(after, bool)
    ]
    common.CHART_DIR.mkdir(parents=True, exist_ok=True)
    path = common.CHART_DIR / f"{name}.png"
    if pairs:
        pairs = pairs[:16]
        height = max(2.5, 0.55 * len(pairs) + 1.2)
        figure, axis = plt.subplots(figsize=(10, height))
        positions = range(len(pairs))
        befores = [p[1] for p in pairs]
        afters = [p[2] for p in pairs]
        axis.barh([y + 0.2 for y in positions], befores, height=0.4, label="before (seed)", color="#c0504d")
        axis.barh([y - 0.2 for y in positions], afters, height=0.4, label="after (ours)", color="#4f81bd")
        axis.set_yticks(list(positions))
        axis.set_yticklabels([p[0][:70] for p in pairs], fontsize=8)
        axis.invert_yaxis()
        positive = [v for v in befores + afters if v > 0]
        if positive and max(positive) / max(min(positive), 1e-9) > 100:
            axis.set_xscale("log")
        axis.legend(loc="lower right", fontsize=8)
    elif singles:
        singles = singles[:16]
        figure, axis = plt.subplots(figsize=(10, max(2.5, 0.45 * len(singles) + 1.2)))
        axis.barh(range(len(singles)), [s[1] for s in singles], color="#4f81bd")
        axis.set_yticks(range(len(singles)))
        axis.set_yticklabels([s[0][:70] for s in singles], fontsize=8)
        axis.invert_yaxis()
    else:
        return None
    axis.set_title(title, fontsize=10)
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


# --- report ---------------------------------------------------------------------------------------


def headlines(name: str, rows: list[Row]) -> list[Row]:
    """The rows that answer the seed's prediction (the pool has two baselines)."""
    if name == "pool":
        return [row for row in rows if row[0].startswith("ops/s at 30 workers")]
    row = headline(name, rows)
    return [row] if row else []


def headline(name: str, rows: list[Row]) -> Row | None:
    """The one row that answers the seed's prediction."""
    wanted = {
        "config_cache": "config-row queries per simulated day",
        "exchange_cache": "exchange calls per hour",
        "market_stats": "seconds, ",
        "indexes": "ms, history: latest 100 of a 30-day window",
        "order_connection_hold": "connection ms held per order",
        "api_latency": "history p95",
        "cadence_check": "gap_p99_s",
    }.get(name)
    for row in rows:
        if wanted and row[0].startswith(wanted):
            return row
    return rows[0] if rows else None


DRILLS = {
    "exchange_faults": "python -m benchmarks.drills.exchange_faults --quick",
    "db_restart": "python -m benchmarks.drills.db_restart",
    "crash": "python -m benchmarks.drills.crash --rounds 20",
    "api_fuzz": "python -m benchmarks.drills.api_fuzz",
    "soak": "python -m benchmarks.drills.soak --quick",
}


def drill_lines() -> list[str]:
    """The latest verdict of each drill (drills are run by hand, not by this runner)."""
    lines = [
        "",
        "## Drills (latest runs)",
        "",
        "Drills are opt-in and run separately (commands in the README); this is the last verdict each one wrote.",
        "",
        "| drill | when | verdict | figures | missed |",
        "|---|---|---|---|---|",
    ]
    for name, command in DRILLS.items():
        data = common.read_json(f"drill_{name}")
        if data is None:
            lines.append(f"| {name} | - | **NOT RUN** | `{command}` | - |")
            continue
        figures = ", ".join(f"{k}={v}" for k, v in data.get("figures", {}).items() if k != "failed_order_errors")
        missed = "; ".join(data.get("missed", [])) or "-"
        summary = data.get("schemathesis_summary") or ""
        checks = re.findall(r"(ST\d+ [^:\n]+): (\d+)", summary)
        if checks:
            missed += " — " + ", ".join(f"{check}: {count}" for check, count in checks)
        lines.append(
            f"| {name} | {data.get('recorded_at', '-')} | **{data.get('verdict')}** | {figures.replace('|', '/')} | "
            f"{missed.replace('|', '/')} |"
        )
    return lines


def write_report(machine: dict[str, Any], results: dict[str, Any], profile: str, command: str) -> None:
    lines = [
        "# Benchmark report",
        "",
        f"Generated by `{command}` (profile **{profile}**) on {machine.get('date')}. "
        "Regenerate with `make bench` (quick) or `scripts/bench.sh --full`.",
        "",
        "Every case runs the seed's *before* and our *after* in the same run, alternating, "
        "several repetitions; figures are medians and **ratio = after / before** "
        "(below 1 means less time / fewer calls; for throughput above 1 is better). "
        "Absolute times on a shared 2-core machine are noise — read the ratios.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    for key in (
        "cpu",
        "cores",
        "ram_gib",
        "distribution",
        "os",
        "python",
        "django",
        "postgresql",
        "psycopg",
        "psycopg-pool",
        "django-q2",
        "djangorestframework",
        "gunicorn",
    ):
        if key in machine:
            lines.append(f"| {key} | {machine[key]} |")
    lines += ["", "## Summary", "", "| case | seed prediction | metric | before | after | ratio | status |"]
    lines.append("|---|---|---|---|---|---|---|")
    for case in CASES:
        outcome = results.get(case.name)
        if outcome is None:
            continue
        data = outcome.get("data")
        if outcome["status"] in {"ok", "bar missed"} and data:
            rows, _ = case_rows(case.name, data)
            chosen = headlines(case.name, rows)
            for metric, before, after, ratio in chosen:
                lines.append(
                    f"| [{case.name}](#{case.name.replace('_', '-')}) | {case.seed_prediction} | {metric} | "
                    f"{_fmt(before)} | {_fmt(after)} | {_fmt(ratio)} | {outcome['status']} |"
                )
            if chosen:
                continue
        lines.append(
            f"| [{case.name}](#{case.name.replace('_', '-')}) | {case.seed_prediction} | - | - | - | - | "
            f"**{outcome['status'].upper()}** |"
        )
    for case in CASES:
        outcome = results.get(case.name)
        if outcome is None:
            continue
        lines += ["", f"## {case.name}", "", f"**{case.title}.** Seed: {case.seed_prediction}.", ""]
        if outcome.get("command"):
            lines.append(f"Command: `{outcome['command']}` — {outcome['status']} in {outcome.get('seconds')} s.")
            lines.append("")
        data = outcome.get("data")
        if outcome["status"] == "missing":
            lines.append(f"**Not measured: {outcome['detail']}.**")
            continue
        if outcome["status"] == "failed":
            lines.append(f"**Failed** (exit {outcome.get('returncode')}): {outcome.get('detail', '')}")
            lines += ["", "```", (outcome.get("stderr_tail") or "")[-1500:].strip(), "```"]
            if not data:
                continue
        if outcome["status"] == "bar missed":
            lines.append("**The script reports that its bar was missed (exit 1).**")
            lines.append("")
        if not data:
            continue
        rows, note = case_rows(case.name, data)
        if note:
            lines += [f"_{note}_", ""]
        if isinstance(data.get("before"), str):
            lines.append(f"- before: {data['before']}")
            lines.append(f"- after: {data.get('after')}")
        if isinstance(data.get("before"), list):
            lines.append(f"- before: {', '.join(data['before'])}; after: {data.get('after')}")
        lines.append("")
        if outcome.get("chart"):
            lines += [f"![{case.name}](charts/{Path(outcome['chart']).name})", ""]
        lines += ["| metric | before | after | ratio |", "|---|---|---|---|"]
        for metric, before, after, ratio in rows:
            lines.append(f"| {metric} | {_fmt(before)} | {_fmt(after)} | {_fmt(ratio)} |")
        if case.name == "indexes":
            lines += ["", f"Dropped for *before*: {', '.join(data['dropped_indexes'])}.", ""]
            lines.append(f"Data: {', '.join(f'{k} {v:,}' for k, v in data['data'].items())}.")
            for label, query in data["queries"].items():
                lines += [
                    "",
                    f"<details><summary>EXPLAIN — {label}</summary>",
                    "",
                    "Before (no seed indexes):",
                    "",
                    "```",
                    query["before_plan"],
                    "```",
                    "",
                    "After:",
                    "",
                    "```",
                    query["after_plan"],
                    "```",
                    "",
                    "</details>",
                ]
        if case.name == "exchange_cache":
            lines += ["", "Read trace (period in seconds → reads per tick):", ""]
            for name, trace in data["trace"].items():
                lines.append(f"- {name}: every {trace['period_s']} s → {', '.join(trace['reads'])}")
    lines += drill_lines()
    lines += ["", "Raw figures: [`out/results.json`](out/results.json) and `out/<case>.json`.", ""]
    REPORT.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="longer runs, more repetitions, a year of data")
    parser.add_argument("--only", nargs="+", metavar="CASE", choices=[c.name for c in CASES])
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from benchmarks/out/")
    args = parser.parse_args(argv)
    profile = "full" if args.full else "quick"
    machine = common.machine_info()
    selected = [c for c in CASES if not args.only or c.name in args.only]
    results: dict[str, Any] = {}
    began = time.perf_counter()
    if args.report_only:
        if RESULTS.exists():
            previous = json.loads(RESULTS.read_text())
            results = previous.get("cases", {})
            machine = previous.get("machine", machine)
            profile = previous.get("profile", profile)
        for case in CASES:
            data = common.read_json(case.name)
            if case.name not in results and data is not None:
                results[case.name] = {"status": "ok", "data": data, "command": "(earlier run, out/ file)"}
    else:
        if args.only and RESULTS.exists():
            results = json.loads(RESULTS.read_text()).get("cases", {})
        for case in selected:
            results[case.name] = run_case(case, args.full)
    for case in CASES:
        outcome = results.get(case.name)
        if outcome and outcome.get("data"):
            rows, _ = case_rows(case.name, outcome["data"])
            path = chart(case.name, rows, case.title)
            outcome["chart"] = str(path.relative_to(common.ROOT)) if path else None
    payload = {
        "machine": machine,
        "profile": profile,
        "seconds": round(time.perf_counter() - began, 1),
        "cases": results,
    }
    common.OUT_DIR.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    command = "scripts/bench.sh" + (" --full" if args.full else "")
    write_report(machine, results, profile, command)
    failed = [name for name, outcome in results.items() if outcome["status"] not in {"ok"}]
    print(
        f"benchmarks: {len(results) - len(failed)}/{len(results)} cases ok"
        + (f"; not ok: {', '.join(failed)}" if failed else "")
        + f"; report {REPORT.relative_to(common.ROOT)}",
        file=sys.stderr,
    )
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
