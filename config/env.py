"""Typed readers for environment variables.

Settings read the environment only through these helpers so that a bad value
produces one clear sentence (``ConfigurationError``) instead of a traceback
deep inside Django.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url

POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql", "postgis"}
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class ConfigurationError(Exception):
    """An environment variable is missing or malformed."""


class Environment:
    """Reads typed values from a mapping (``os.environ`` by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def str(self, name: str, default: str = "") -> str:
        return self.environ.get(name, default).strip()

    def bool(self, name: str, default: bool = False) -> bool:
        raw = self.environ.get(name)
        if raw is None:
            return default
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ConfigurationError(f"{name} must be true or false, got {raw!r}.")

    def int(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        raw = self.environ.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigurationError(f"{name} must be an integer, got {raw!r}.") from None
        self._check_range(name, value, minimum, maximum)
        return value

    def decimal(
        self, name: str, default: Decimal, *, minimum: Decimal | None = None, maximum: Decimal | None = None
    ) -> Decimal:
        raw = self.environ.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = Decimal(raw.strip())
        except InvalidOperation:
            raise ConfigurationError(f"{name} must be a number, got {raw!r}.") from None
        if not value.is_finite():
            raise ConfigurationError(f"{name} must be a finite number, got {raw!r}.")
        self._check_range(name, value, minimum, maximum)
        return value

    def list(self, name: str, default: list[str]) -> list[str]:
        raw = self.environ.get(name)
        if raw is None:
            return list(default)
        return [item.strip() for item in raw.split(",") if item.strip()]

    def choice(self, name: str, default: str, choices: set[str]) -> str:
        value = self.str(name, default).lower() or default
        if value not in choices:
            allowed = ", ".join(sorted(choices))
            raise ConfigurationError(f"{name} must be one of {allowed}, got {value!r}.")
        return value

    def url(self, name: str, default: str = "") -> str:
        value = self.str(name, default)
        if value:
            parts = urlsplit(value)
            if parts.scheme not in {"http", "https"} or not parts.netloc:
                raise ConfigurationError(f"{name} must be an http(s) URL.")
        return value.rstrip("/")

    @staticmethod
    def _check_range(name: str, value: Any, minimum: Any, maximum: Any) -> None:
        if minimum is not None and value < minimum:
            raise ConfigurationError(f"{name} must be at least {minimum}, got {value}.")
        if maximum is not None and value > maximum:
            raise ConfigurationError(f"{name} must be at most {maximum}, got {value}.")


def secret_key(env: Environment, debug: bool) -> str:
    """SECRET_KEY is mandatory outside DEBUG; DEBUG gets a throwaway dev key."""
    value = env.str("SECRET_KEY")
    if value:
        return value
    if debug:
        return "insecure-development-only-key-do-not-use-in-production"
    raise ConfigurationError("SECRET_KEY must be set when DEBUG is off.")


def _sqlite_settings(name: str) -> dict[str, Any]:
    """SQLite tuned for one web process plus several job workers writing at once."""
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "ATOMIC_REQUESTS": False,
    }


def database_settings(env: Environment, base_dir: Path) -> dict[str, Any]:
    """Build ``DATABASES['default']`` from DATABASE_URL.

    Unset means the embedded default: a SQLite file under ``var/``. There are
    deliberately no default PostgreSQL credentials.
    """
    url = env.str("DATABASE_URL")
    if not url:
        (base_dir / "var").mkdir(exist_ok=True)
        return _sqlite_settings(str(base_dir / "var" / "db.sqlite3"))
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        return _sqlite_settings(dj_database_url.parse(url)["NAME"])
    if scheme not in POSTGRES_SCHEMES:
        raise ConfigurationError("DATABASE_URL must be a postgres:// or sqlite:// URL.")
    try:
        config = dj_database_url.parse(url, engine="django.db.backends.postgresql")
    except ValueError:
        raise ConfigurationError("DATABASE_URL is not a valid database URL.") from None
    if not config.get("NAME"):
        raise ConfigurationError("DATABASE_URL must name a database.")
    pool_min = env.int("DB_POOL_MIN", 10, minimum=0, maximum=500)
    pool_max = env.int("DB_POOL_MAX", 20, minimum=1, maximum=1000)
    if pool_min > pool_max:
        raise ConfigurationError(f"DB_POOL_MIN ({pool_min}) must not exceed DB_POOL_MAX ({pool_max}).")
    from psycopg import IsolationLevel

    config.update(
        {
            # The native pool requires non-persistent connections.
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": True,
            "ATOMIC_REQUESTS": False,
            "OPTIONS": {
                "isolation_level": IsolationLevel.READ_COMMITTED,
                "pool": {
                    "min_size": pool_min,
                    "max_size": pool_max,
                    "timeout": float(env.decimal("DB_POOL_TIMEOUT", Decimal("10"), minimum=Decimal("0.1"))),
                    "max_idle": 300,
                },
                "connect_timeout": env.int("DB_CONNECT_TIMEOUT", 5, minimum=1),
                "application_name": env.str("DB_APPLICATION_NAME", "krw-btc-trader"),
            },
        }
    )
    if env.bool("DB_POOL_DISABLED", False):
        # A new connection per request/task: the seed's baseline for the benchmarks, or behind PgBouncer.
        del config["OPTIONS"]["pool"]
    return config
