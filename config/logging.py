"""structlog + stdlib logging wiring: one JSON object per line in production.

Every record - structlog's own and stdlib ones (django, django_q, requests) -
ends in the same ``ProcessorFormatter``: stdlib records first pass
``foreign_pre_chain`` (context vars such as ``request_id``/``job_name``, level,
logger, timestamp, ``extra=``), then both kinds pass the final processors:
exception formatting, **masking** (``health.masking.mask_event_processor``, after
the traceback is rendered so exception text is masked too) and the renderer.
"""

from __future__ import annotations

from typing import Any

import structlog

from health.masking import mask_event_processor

SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(),
]


def _renderer(log_format: str) -> Any:
    if log_format == "console":
        return structlog.dev.ConsoleRenderer(colors=False)
    return structlog.processors.JSONRenderer(sort_keys=False, ensure_ascii=False)


def final_processors(log_format: str) -> list[Any]:
    """The processors every record passes last, whatever logger produced it."""
    return [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        mask_event_processor,
        _renderer(log_format),
    ]


def build_logging_config(level: str, log_format: str) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": final_processors(log_format),
                "foreign_pre_chain": SHARED_PROCESSORS,
            },
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "structured"},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django": {"handlers": ["console"], "level": level, "propagate": False},
            "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
            "django_q": {"handlers": ["console"], "level": "WARNING", "propagate": False},
            "django_structlog": {"handlers": ["console"], "level": level, "propagate": False},
            # urllib3's DEBUG lines carry full request paths (a Slack webhook path is a secret);
            # the clients log their own calls, so urllib3 speaks only of problems.
            "urllib3": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        },
    }


def configure_structlog(log_format: str) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
