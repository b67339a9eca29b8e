"""A fake Slack incoming webhook on 127.0.0.1: records posted messages, answers ``ok``.

with FakeSlack() as slack:            # or the ``fake_slack`` fixture
    settings.SLACK_WEBHOOK_URL = slack.webhook_url
    ...
    slack.messages                    # the posted ``text`` values, in order
    slack.add_fault(Fault.status(500, "server_error"))  # faults from tests.fakes.http
"""

from __future__ import annotations

from typing import Any

from tests.fakes.http import LoopbackServer, RecordedRequest, Response

WEBHOOK_PATH = "/services/T000FAKE/B000FAKE/fakewebhooksecret123"


class FakeSlack(LoopbackServer):
    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    @property
    def messages(self) -> list[str]:
        return [request.json().get("text", "") for request in self.calls(WEBHOOK_PATH, "POST")]

    def payloads(self) -> list[Any]:
        return [request.json() for request in self.calls(WEBHOOK_PATH, "POST")]

    def handle(self, request: RecordedRequest) -> Response:
        if request.method != "POST" or request.path != WEBHOOK_PATH:
            return Response(404, "no_service")
        try:
            payload = request.json()
        except ValueError:
            return Response(400, "invalid_payload")
        if not isinstance(payload, dict) or not payload.get("text"):
            return Response(400, "no_text")
        return Response(200, "ok")
