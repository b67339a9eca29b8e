"""Masking through the real logging pipeline: structlog and stdlib records, messages, exceptions."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from health.masking import MASK, mask_text, mask_value

UPBIT_ACCOUNTS = [
    {
        "currency": "KRW",
        "balance": "1000000.0",
        "locked": "0.0",
        "avg_buy_price": "0",
        "avg_buy_price_modified": False,
        "unit_currency": "KRW",
    },
    {
        "currency": "BTC",
        "balance": "0.12345678",
        "locked": "0.001",
        "avg_buy_price": "101000000",
        "avg_buy_price_modified": False,
        "unit_currency": "KRW",
    },
]
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJhY2Nlc3Nfa2V5IjoiVXBiaXRBY2Nlc3NLZXkxMjMiLCJub25jZSI6IjEyMyJ9."
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)
GEMINI_KEY = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
SLACK_URL = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
LEAKS = ("1000000.0", "0.12345678", "101000000", JWT, "dBjftJeZ4CVP", GEMINI_KEY, "XXXXXXXXXXXXXXXXXXXXXXXX", "hunter2")


@pytest.fixture
def rendered() -> Iterator[io.StringIO]:
    """A handler using the very formatter Django's LOGGING configured (JSON in these settings)."""
    root_formatter = logging.getLogger().handlers[0].formatter
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(root_formatter)
    names = ("tests.masking", "tests.masking.stdlib")
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    yield stream
    for logger in loggers:
        logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def assert_no_leak(text: str) -> None:
    for secret in LEAKS:
        assert secret not in text, f"{secret!r} leaked in {text}"


def test_structlog_event_with_an_upbit_accounts_response_and_credentials(rendered):
    log = structlog.get_logger("tests.masking")
    log.info(
        "accounts_fetched",
        accounts=UPBIT_ACCOUNTS,
        headers={"Authorization": f"Bearer {JWT}", "Accept": "application/json"},
        access_key="UpbitAccessKey123",
        secret_key="UpbitSecretKey456",
        url=f"https://generativelanguage.googleapis.com/v1beta/models/gemini:generateContent?key={GEMINI_KEY}",
        dsn="postgres://trader:hunter2@db:5432/trader",
        webhook=SLACK_URL,
        krw="5000000",
    )
    text = rendered.getvalue()
    assert_no_leak(text)
    assert "UpbitSecretKey456" not in text and "UpbitAccessKey123" not in text
    (event,) = lines(rendered)
    assert event["event"] == "accounts_fetched"
    assert event["accounts"][1]["currency"] == "BTC"  # non-sensitive fields survive
    assert event["accounts"][1]["balance"] == MASK
    assert event["headers"] == {"Authorization": MASK, "Accept": "application/json"}
    assert event["dsn"] == "postgres://trader:***@db:5432/trader"
    assert event["url"].endswith("?key=***")
    assert event["webhook"] == "https://hooks.slack.com/services/***"
    assert event["krw"] == MASK


def test_stdlib_record_message_and_extra_are_masked(rendered):
    body = json.dumps(UPBIT_ACCOUNTS)
    logging.getLogger("tests.masking.stdlib").warning(
        "upbit answered %s with header Authorization: Bearer %s", body, JWT, extra={"api_key": GEMINI_KEY}
    )
    text = rendered.getvalue()
    assert_no_leak(text)
    (event,) = lines(rendered)
    assert '"balance": "***"' in event["event"]
    assert event["api_key"] == MASK
    assert event["logger"] == "tests.masking.stdlib"


def test_exception_text_is_masked(rendered):
    log = structlog.get_logger("tests.masking")
    try:
        raise RuntimeError(f"POST failed for {SLACK_URL} with token {JWT} and balance=1000000.0")
    except RuntimeError:
        log.exception("slack_failed")
        logging.getLogger("tests.masking.stdlib").exception("stdlib saw it too")
    text = rendered.getvalue()
    assert_no_leak(text)
    events = lines(rendered)
    assert all("RuntimeError" in event["exception"] for event in events)


def test_configured_secret_values_are_masked_wherever_they_appear(rendered, settings):
    settings.GEMINI_API_KEY = "plain-looking-configured-key-42"
    structlog.get_logger("tests.masking").info("prompt_debug", prompt="call with plain-looking-configured-key-42 now")
    assert "plain-looking-configured-key-42" not in rendered.getvalue()


def test_job_and_request_context_survive_masking(rendered):
    from health.logging import bind_job, bind_order

    with bind_job("sync_pending_orders") as run_id, bind_order("ord-123"):
        structlog.get_logger("tests.masking").info("order_synced", input_tokens=120, market="KRW-BTC")
    (event,) = lines(rendered)
    assert event["job_name"] == "sync_pending_orders"
    assert event["run_id"] == run_id
    assert event["identifier"] == "ord-123"
    assert event["input_tokens"] == 120
    assert event["market"] == "KRW-BTC"


@pytest.mark.parametrize(
    ("text", "leak", "expected"),
    [
        (f"Authorization: Bearer {JWT}", JWT, "Authorization: Bearer ***"),
        (f"token {JWT} end", JWT, "token *** end"),
        ('{"balance": "123.45", "currency": "KRW"}', "123.45", '{"balance": "***", "currency": "KRW"}'),
        ("locked=0.5 avg_buy_price=100", "0.5", "locked=*** avg_buy_price=***"),
        ("SECRET_KEY = 'django-insecure-abc'", "django-insecure-abc", "SECRET_KEY = '***'"),
        ("x-goog-api-key: abcdef", "abcdef", "x-goog-api-key: ***"),
        (f"GET /v1beta/models?key={GEMINI_KEY}&alt=json", GEMINI_KEY, "GET /v1beta/models?key=***&alt=json"),
        (f"key {GEMINI_KEY}", GEMINI_KEY, "key ***"),
        ("redis://:s3cretpw@cache:6379/0", "s3cretpw", "redis://:***@cache:6379/0"),
        ("https://user:pa55@example.com/x", "pa55", "https://user:***@example.com/x"),
        (SLACK_URL, "XXXXXXXX", "https://hooks.slack.com/services/***"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "Authorization: Basic ***"),
    ],
)
def test_mask_text_each_secret_kind(text, leak, expected):
    masked = mask_text(text)
    assert leak not in masked
    assert masked == expected


def test_mask_text_leaves_ordinary_text_alone():
    text = "order ord-1 KRW-BTC bid filled at 101000000 (order_amount_krw=5000, input_tokens=120)"
    assert mask_text(text) == text


def test_mask_value_recurses_and_renders_unknown_objects():
    from decimal import Decimal

    from trading.clients.exchange.base import Balance

    value = {
        "outer": [{"secret_key": "s"}, ("Bearer abc.def",)],
        "balances": [Balance("KRW", Decimal("1"), Decimal("0"), Decimal("0"))],
        "price": Decimal("101000000"),
        "nested": [Balance("BTC", Decimal("0.5"), Decimal("0.1"), Decimal("9"))],
    }
    masked = mask_value(value)
    assert masked["outer"] == [{"secret_key": MASK}, ["Bearer ***"]]
    assert masked["balances"] == MASK
    assert masked["price"] == "101000000"
    assert masked["nested"] == [{"currency": "BTC", "balance": MASK, "locked": MASK, "avg_buy_price": MASK}]
