"""gunicorn settings: ``gunicorn -c config/gunicorn.conf.py config.wsgi``.

Prometheus multiprocess mode: set PROMETHEUS_MULTIPROC_DIR in the environment of
gunicorn (and of the django-q2 cluster, to aggregate its job metrics too) to a
directory writable by every process. It must be set before prometheus_client is
imported, which is why it is an environment variable and not a Django setting
alone. Its sample files are removed when the master starts, and a dead worker's live
gauges are dropped through ``child_exit``.
"""

from __future__ import annotations

import os
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
timeout = 30
accesslog = None  # requests are logged as JSON by the app (api_request events)


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # only prometheus_client's own files
            stale.unlink()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
