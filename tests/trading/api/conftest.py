"""Fixtures of the API tests: authenticated clients and row builders."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user_client(plain_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(plain_user)
    return client


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(staff_user)
    return client


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """The user fixtures hash a password; a fast hasher keeps these HTTP tests quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
