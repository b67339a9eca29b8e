import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()


def _warm_config_cache() -> None:
    # One query loads every config row; a failure (database not up yet) only means the
    # first request's config read does the same load lazily.
    try:
        from django.db import connections

        from trading.services.config import warm_up

        warm_up()
        connections.close_all()  # gunicorn may fork after import (--preload): hand no connection down
    except Exception as error:  # pragma: no cover - depends on the database at start-up
        import structlog

        structlog.get_logger(__name__).warning("config_warm_up_failed", error=type(error).__name__)


_warm_config_cache()
