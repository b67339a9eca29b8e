"""The benchmark helpers: statistics, alternation, and bench databases that are always dropped."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from benchmarks import common


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert common.percentile(values, 50) == 50
    assert common.percentile(values, 95) == 95
    assert common.percentile(values, 100) == 100
    assert common.percentile([7.0], 99) == 7.0
    assert common.percentile([], 95) is None


def test_ratio_and_summary_use_medians_and_refuse_missing_or_zero_baselines():
    assert common.ratio(1.0, 4.0) == 0.25
    assert common.ratio(None, 4.0) is None
    assert common.ratio(1.0, 0) is None
    summary = common.summarize([10, 30, 20], [1, 3, 2])
    assert (summary["before"], summary["after"], summary["ratio"]) == (20, 2, 0.1)


def test_alternate_flips_the_order_every_round():
    calls: list[str] = []

    def before() -> float:
        calls.append("b")
        return 2.0

    def after() -> float:
        calls.append("a")
        return 1.0

    result = common.alternate(3, before, after)
    assert calls == ["b", "a", "a", "b", "b", "a"]
    assert result["ratio"] == 0.5 and len(result["before_runs"]) == 3


def test_only_bench_databases_can_be_dropped():
    for name in ("postgres", "trading", "bench_x; DROP TABLE y", "bench-x"):
        with pytest.raises(ValueError, match="bench_"):
            common.drop_database(name)


def test_database_url_replaces_only_the_name():
    url = common.database_url("bench_x", "postgres://u:p@db.internal:6543/postgres?sslmode=require")
    assert url == "postgres://u:p@db.internal:6543/bench_x?sslmode=require"


def _server_url() -> str:
    settings = connection.settings_dict
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{settings.get('HOST') or '127.0.0.1'}:{settings.get('PORT') or 5432}/postgres"


def _exists(name: str) -> bool:
    with psycopg.connect(_server_url(), autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


@pytest.mark.postgres
@pytest.mark.django_db
def test_bench_database_is_created_and_dropped_even_when_the_case_fails(monkeypatch):
    monkeypatch.setenv("BENCH_DATABASE_URL", _server_url())
    name = "bench_unit_check"
    with pytest.raises(RuntimeError, match="case failed"), common.bench_database(name, migrated=False) as url:
        assert url.endswith("/" + name)
        assert _exists(name)
        with psycopg.connect(url, autocommit=True) as conn:  # a connection left open does not block the drop
            conn.execute("SELECT 1")
            raise RuntimeError("case failed")
    assert not _exists(name)
