"""Slack notifications against the fake webhook server."""

from __future__ import annotations

import logging
from decimal import Decimal

from tests.fakes.http import Fault
from tests.fakes.slack import WEBHOOK_PATH
from trading.clients import slack


def test_notify_posts_text_with_compact_fields(fake_slack):
    assert slack.notify("Order filled", side="bid", volume=Decimal("0.00050000"), price=Decimal("1E+8")) is True

    assert fake_slack.payloads() == [{"text": "Order filled | side=bid volume=0.00050000 price=100000000"}]
    assert fake_slack.calls(WEBHOOK_PATH)[0].header("Content-Type") == "application/json"


def test_notify_without_fields_sends_the_text_alone(fake_slack):
    assert slack.notify("Trading paused") is True
    assert fake_slack.messages == ["Trading paused"]


def test_unset_webhook_is_a_no_op(fake_slack, settings):
    settings.SLACK_WEBHOOK_URL = ""

    assert slack.notify("nobody hears this") is False
    assert fake_slack.requests == []


def test_server_error_returns_false_and_logs_without_the_webhook_url(fake_slack, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")  # even if an operator turns urllib3 debug on
    fake_slack.add_fault(Fault.status(500, "server_error"))

    assert slack.notify("Order failed", identifier="abc") is False

    assert len(fake_slack.requests) == 1
    assert any("slack_notify_failed" in str(record.msg) for record in caplog.records)
    logged = caplog.text + " ".join(str(record.msg) for record in caplog.records)
    assert "500" in logged
    assert WEBHOOK_PATH not in logged
    assert fake_slack.webhook_url not in logged
    assert "/***" in logged  # urllib3's DEBUG request line was masked, not absent


def test_timeout_and_refused_connection_return_false_never_raise(fake_slack, settings, caplog):
    caplog.set_level(logging.DEBUG)
    fake_slack.add_fault(Fault.hang(2.0))

    assert slack.notify("slow slack") is False  # SLACK_TIMEOUT is 0.5 s in the fixture

    fake_slack.add_fault(Fault.reset())
    assert slack.notify("reset") is False
    logged = caplog.text + " ".join(str(record.msg) for record in caplog.records)
    assert "ReadTimeout" in logged or "Timeout" in logged
    assert WEBHOOK_PATH not in logged


def test_long_field_values_are_shortened():
    rendered = slack.render("x", detail="y" * 500)
    assert len(rendered) < 250
    assert rendered.endswith("…")
