"""Shared fixtures. Fakes of external services live in tests/fakes/."""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key")

import pytest

pytest_plugins = ["tests.fakes.fixtures", "tests.fakes.gemini_fixtures"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``postgres`` fail loudly, never skip, when the database is not PostgreSQL."""
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if engine.endswith("postgresql"):
        return
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(
                pytest.mark.usefixtures("_require_postgres"),
            )


@pytest.fixture
def _require_postgres() -> None:
    pytest.fail("this test needs PostgreSQL: run it with `make test` (or set DATABASE_URL=postgres://...)")


@pytest.fixture(autouse=True)
def _clear_local_caches() -> None:
    """Per-process caches must not leak values between tests."""
    from django.core.cache import caches

    from trading.services import config as config_service

    for alias in ("default", "config", "exchange"):
        caches[alias].clear()
    # A config write inside a previous test's rolled-back transaction is still
    # remembered as "awaiting commit"; let the service notice the rollback now,
    # not in the middle of the next test's query count.
    config_service._uncommitted_write_pending()
    yield


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        "operator", password="operator-pass-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def plain_user(django_user_model):
    return django_user_model.objects.create_user("viewer", password="viewer-pass-123")
