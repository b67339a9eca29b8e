"""Django settings. The environment is read here and nowhere else.

Every variable is documented in README.md ("Configuration"). A missing or
malformed variable stops start-up with one sentence on stderr.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from config.env import ConfigurationError, Environment, database_settings, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = Environment()

try:
    DEBUG = env.bool("DEBUG", False)
    SECRET_KEY = secret_key(env, DEBUG)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
    CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])
    DATABASES = {"default": database_settings(env, BASE_DIR)}
    REDIS_URL = env.str("REDIS_URL")

    # Trading domain.
    TRADING_MARKET = env.str("TRADING_MARKET", "KRW-BTC").upper()
    EXCHANGE = env.choice("EXCHANGE", "paper", {"paper", "upbit"})
    UPBIT_API_URL = env.url("UPBIT_API_URL", "https://api.upbit.com")
    UPBIT_ACCESS_KEY = env.str("UPBIT_ACCESS_KEY")
    UPBIT_SECRET_KEY = env.str("UPBIT_SECRET_KEY")
    UPBIT_CONNECT_TIMEOUT = float(env.decimal("UPBIT_CONNECT_TIMEOUT", Decimal("3"), minimum=Decimal("0.1")))
    UPBIT_READ_TIMEOUT = float(env.decimal("UPBIT_READ_TIMEOUT", Decimal("5"), minimum=Decimal("0.1")))
    GEMINI_API_KEY = env.str("GEMINI_API_KEY")
    GEMINI_API_URL = env.url("GEMINI_API_URL", "https://generativelanguage.googleapis.com")
    GEMINI_MODEL = env.str("GEMINI_MODEL", "gemini-2.5-flash")
    GEMINI_TIMEOUT = float(env.decimal("GEMINI_TIMEOUT", Decimal("30"), minimum=Decimal("1")))
    SLACK_WEBHOOK_URL = env.url("SLACK_WEBHOOK_URL")
    SLACK_TIMEOUT = float(env.decimal("SLACK_TIMEOUT", Decimal("5"), minimum=Decimal("0.1")))

    # Config cache (see trading/services/config.py and README "Config cache").
    CONFIG_CACHE_TTL = env.int("CONFIG_CACHE_TTL", 3600, minimum=1)
    CONFIG_CACHE_SYNC_INTERVAL = float(env.decimal("CONFIG_CACHE_SYNC_INTERVAL", Decimal("0.5"), minimum=Decimal("0")))
    CACHE_STATS_FLUSH_INTERVAL = float(env.decimal("CACHE_STATS_FLUSH_INTERVAL", Decimal("30"), minimum=Decimal("1")))

    # Observability.
    LOG_LEVEL = env.choice("LOG_LEVEL", "info", {"debug", "info", "warning", "error"}).upper()
    LOG_FORMAT = env.choice("LOG_FORMAT", "console" if DEBUG else "json", {"json", "console"})
    HEALTH_CHECK_TIMEOUT = float(env.decimal("HEALTH_CHECK_TIMEOUT", Decimal("0.8"), minimum=Decimal("0.05")))
    HEALTH_DETAIL_TOKEN = env.str("HEALTH_DETAIL_TOKEN")
    PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR")

    # django-q2 cluster.
    Q_WORKERS = env.int("Q_WORKERS", 4, minimum=1, maximum=64)
except ConfigurationError as error:  # pragma: no cover - exercised through a subprocess test
    raise SystemExit(f"Configuration error: {error}") from None

APP_VERSION = "0.1.0"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_q",
    "django_structlog",
    "health_check",
    "trading",
    "paper_exchange",
    "health",
]

MIDDLEWARE = [
    # Validates/creates X-Request-ID and echoes it; django-structlog binds it as request_id.
    "health.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    # Inside django-structlog's middleware so its api_request event still carries request_id.
    "health.middleware.RequestMetricsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", True)

# Caches.
#   default  - per-process locmem for incidental use.
#   config   - per-process locmem in front of SystemConfig (3600 s); coherence
#              across processes comes from a generation stamp in `shared`.
#   exchange - per-process locmem for the 10 s ticker/balance cache.
#   shared   - one store every process sees: Redis when REDIS_URL is set,
#              otherwise a database table. django-q2 keeps its cluster stats
#              here so the web process can tell whether the scheduler lives.
SHARED_CACHE = (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "trader"}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_shared_cache"}
)
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
    "config": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "system-config",
        "TIMEOUT": CONFIG_CACHE_TTL,
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    },
    "exchange": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "exchange",
        "TIMEOUT": 10,
    },
    "shared": SHARED_CACHE,
}

Q_CLUSTER = {
    "name": "trader",
    "orm": "default",
    "cache": "shared",
    "workers": Q_WORKERS,
    # Long enough for a fast-cadence driver (about 60 s) and an order poll.
    "timeout": 180,
    "retry": 240,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "poll": 0.5,
    "queue_limit": 50,
    "label": "Scheduled jobs",
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"writes": "30/min"},
    "EXCEPTION_HANDLER": "rest_framework.views.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "KRW-BTC trading backend API",
    "DESCRIPTION": "Market data, AI signals, orders, position and configuration of the KRW-BTC auto-trader.",
    "VERSION": APP_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
}

from config.logging import build_logging_config, configure_structlog  # noqa: E402

LOGGING = build_logging_config(level=LOG_LEVEL, log_format=LOG_FORMAT)
configure_structlog(log_format=LOG_FORMAT)
DJANGO_STRUCTLOG_CELERY_ENABLED = False
# RequestIdMiddleware has already validated (or replaced) the header, so trust it.
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True
# request_started is noise next to request_finished and api_request.
DJANGO_STRUCTLOG_STATUS_START_LOG_LEVEL = 10  # logging.DEBUG
