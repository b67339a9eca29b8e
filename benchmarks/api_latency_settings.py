"""Settings for ``benchmarks/api_latency.py``: production settings plus the bench-only floor URLs.

Selected with ``DJANGO_SETTINGS_MODULE=benchmarks.api_latency_settings`` in the
gunicorn the benchmark starts; production URLs never contain the floor views.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.api_latency_urls"
