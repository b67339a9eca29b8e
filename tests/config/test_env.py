"""Settings come from the environment, with clear errors and no default credentials."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from psycopg import IsolationLevel

from config.env import ConfigurationError, Environment, database_settings, secret_key

ROOT = Path(__file__).resolve().parents[2]


def test_missing_secret_key_with_debug_off_fails_with_one_sentence():
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL"}}
    env["DEBUG"] = "0"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == "Configuration error: SECRET_KEY must be set when DEBUG is off."


def test_secret_key_rules():
    with pytest.raises(ConfigurationError, match="SECRET_KEY must be set"):
        secret_key(Environment({}), debug=False)
    assert secret_key(Environment({"SECRET_KEY": "abc"}), debug=False) == "abc"
    assert secret_key(Environment({}), debug=True)


def test_unset_database_url_means_embedded_sqlite_under_var(tmp_path):
    config = database_settings(Environment({}), tmp_path)
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert Path(config["NAME"]).parent == tmp_path / "var"
    assert "USER" not in config and "PASSWORD" not in config


def test_sqlite_url_gets_the_same_concurrency_options_as_the_embedded_default(tmp_path):
    config = database_settings(Environment({"DATABASE_URL": f"sqlite:///{tmp_path}/other.db"}), tmp_path)
    embedded = database_settings(Environment({}), tmp_path)
    assert config["NAME"] == f"{tmp_path}/other.db"
    assert config["OPTIONS"] == embedded["OPTIONS"]
    assert "WAL" in config["OPTIONS"]["init_command"]


def test_postgres_url_uses_native_pool_read_committed_and_no_persistent_connections(tmp_path):
    config = database_settings(
        Environment({"DATABASE_URL": "postgres://trader:s3cret@db.internal:6543/trading", "DB_POOL_TIMEOUT": "2.5"}),
        tmp_path,
    )
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == (
        "db.internal",
        6543,
        "trading",
        "trader",
    )
    assert config["CONN_MAX_AGE"] == 0
    assert config["CONN_HEALTH_CHECKS"] is True
    assert config["OPTIONS"]["isolation_level"] == IsolationLevel.READ_COMMITTED
    pool = config["OPTIONS"]["pool"]
    assert (pool["min_size"], pool["max_size"], pool["timeout"]) == (10, 20, 2.5)


def test_pool_can_be_disabled_for_a_connection_per_request(tmp_path):
    env = Environment({"DATABASE_URL": "postgres://u@h/db", "DB_POOL_DISABLED": "1"})
    config = database_settings(env, tmp_path)
    assert "pool" not in config["OPTIONS"]
    assert config["CONN_MAX_AGE"] == 0
    with pytest.raises(ConfigurationError, match="DB_POOL_DISABLED must be true or false"):
        database_settings(Environment({"DATABASE_URL": "postgres://u@h/db", "DB_POOL_DISABLED": "maybe"}), tmp_path)


def test_pool_sizes_are_overridable_and_checked(tmp_path):
    env = Environment({"DATABASE_URL": "postgres://u@h/db", "DB_POOL_MIN": "2", "DB_POOL_MAX": "4"})
    pool = database_settings(env, tmp_path)["OPTIONS"]["pool"]
    assert (pool["min_size"], pool["max_size"]) == (2, 4)
    with pytest.raises(ConfigurationError, match="must not exceed"):
        database_settings(
            Environment({"DATABASE_URL": "postgres://u@h/db", "DB_POOL_MIN": "9", "DB_POOL_MAX": "4"}), tmp_path
        )
    with pytest.raises(ConfigurationError, match="DB_POOL_MAX must be an integer"):
        database_settings(Environment({"DATABASE_URL": "postgres://u@h/db", "DB_POOL_MAX": "lots"}), tmp_path)


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgres://u@h/", "redis://localhost"])
def test_bad_database_urls_are_refused(tmp_path, url):
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        database_settings(Environment({"DATABASE_URL": url}), tmp_path)


def test_typed_readers_give_clear_errors():
    env = Environment({"A": "maybe", "B": "x", "C": "5", "D": "nan", "E": "ftp://x", "F": "kraken"})
    with pytest.raises(ConfigurationError, match="A must be true or false"):
        env.bool("A")
    with pytest.raises(ConfigurationError, match="B must be an integer"):
        env.int("B", 1)
    with pytest.raises(ConfigurationError, match="C must be at most 3"):
        env.int("C", 1, maximum=3)
    with pytest.raises(ConfigurationError, match="D must be a finite number"):
        env.decimal("D", Decimal("1"))
    with pytest.raises(ConfigurationError, match="E must be an http"):
        env.url("E")
    with pytest.raises(ConfigurationError, match="F must be one of paper, upbit"):
        env.choice("F", "paper", {"paper", "upbit"})
    assert env.list("MISSING", ["a"]) == ["a"]


def test_no_default_postgres_credentials_in_the_repository():
    offenders = []
    for path in ROOT.rglob("*"):
        if path.suffix not in {".py", ".yml", ".yaml", ".toml", ".sh", ".env", ".example", ".cfg", ".ini"}:
            continue
        if any(part in {".venv", "var", ".git", "tests"} for part in path.relative_to(ROOT).parts):
            continue
        text = path.read_text(errors="ignore")
        for line in text.splitlines():
            # a literal user:password@ after postgres:// (interpolated ${VARS} are not defaults)
            if re.search(r"postgres(?:ql)?://[^$\s/:@]+:[^$\s/@]+@", line):
                offenders.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert offenders == []
