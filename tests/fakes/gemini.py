"""A fake Gemini REST API on 127.0.0.1 that speaks the real wire format.

- ``POST /v1beta/models/{model}:generateContent``: checks ``x-goog-api-key``
  (missing → 403 PERMISSION_DENIED, wrong → 400 INVALID_ARGUMENT with reason
  API_KEY_INVALID, like Google), refuses a key in the URL (the client must use
  the header), and answers a ``candidates[0].content.parts[0].text`` plus
  ``usageMetadata`` whose ``promptTokenCount`` is derived from the prompt
  length (about 4 characters a token) so callers can check the accounting;
- ``GET /v1beta/models``: the models list;
- programmable answers (``queue_answer`` for valid or out-of-schema JSON,
  ``queue_text`` for malformed text, ``queue_response`` for any body) and
  faults: ``quota_per_minute`` / ``quota_per_day`` (429 RESOURCE_EXHAUSTED with
  ``QuotaFailure`` and ``RetryInfo`` details), ``server_error``, ``hang``;
- every request is recorded (``requests``, ``generate_calls``).
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from typing import Any

from tests.fakes.http import Fault, LoopbackServer, RecordedRequest, Response

TEST_GEMINI_KEY = "AIzaSy-test-gemini-key-0123456789abcdef"
MODEL = "gemini-2.5-flash"
MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash")
PER_MINUTE_QUOTA = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
PER_DAY_QUOTA = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"


def tokens_of(text: str) -> int:
    """The fake's token count: one token per 4 characters, rounded up."""
    return math.ceil(len(text) / 4)


def google_error(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


def quota_body(*, per_day: bool, retry_delay: str | None = "34s", model: str = MODEL) -> dict:
    """Google's 429 RESOURCE_EXHAUSTED body with a QuotaFailure (and RetryInfo when ``retry_delay``)."""
    quota_id = PER_DAY_QUOTA if per_day else PER_MINUTE_QUOTA
    metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": metric,
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": "250" if per_day else "10",
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Learn more", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}],
        },
    ]
    if retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    message = f"You exceeded your current quota, please check your plan and billing details. Quota exceeded for metric: {metric}"
    return google_error(429, "RESOURCE_EXHAUSTED", message, details)


class FakeGemini(LoopbackServer):
    """See the module docstring. ``default_answer`` is used when nothing is queued."""

    def __init__(self, api_key: str = TEST_GEMINI_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.default_answer: dict[str, Any] = {"signal": "HOLD", "confidence": 0.5, "reasoning": "No clear trend."}
        self.thoughts_tokens = 0
        self._answers: deque[str | Response] = deque()
        self._answer_lock = threading.Lock()

    # -- programming ---------------------------------------------------------------
    def queue_answer(self, answer: dict[str, Any]) -> None:
        """The next generateContent answers with this JSON object as the candidate text (schema not enforced)."""
        self.queue_text(json.dumps(answer))

    def queue_text(self, text: str) -> None:
        with self._answer_lock:
            self._answers.append(text)

    def queue_response(self, response: Response) -> None:
        with self._answer_lock:
            self._answers.append(response)

    def quota_per_minute(self, *, retry_delay: str | None = "2s", times: int = 1, headers: dict | None = None) -> None:
        self.add_fault(
            Fault.status(429, quota_body(per_day=False, retry_delay=retry_delay), headers),
            path=self.generate_path(),
            times=times,
        )

    def quota_per_day(self, *, times: int = 1) -> None:
        self.add_fault(
            Fault.status(429, quota_body(per_day=True, retry_delay=None)), path=self.generate_path(), times=times
        )

    def server_error(self, status: int = 503, *, times: int = 1) -> None:
        body = google_error(status, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        self.add_fault(Fault.status(status, body), path=self.generate_path(), times=times)

    def hang(self, seconds: float, *, times: int = 1, path: str | None = None) -> None:
        self.add_fault(Fault.hang(seconds), path=path or self.generate_path(), times=times)

    # -- reading -------------------------------------------------------------------
    @staticmethod
    def generate_path(model: str = MODEL) -> str:
        return f"/v1beta/models/{model}:generateContent"

    def generate_calls(self, model: str = MODEL) -> list[RecordedRequest]:
        return self.calls(self.generate_path(model), "POST")

    # -- serving -------------------------------------------------------------------
    def handle(self, request: RecordedRequest) -> Response:
        if "key=" in request.query:
            return Response(
                400,
                google_error(400, "INVALID_ARGUMENT", "fake Gemini: send the key in x-goog-api-key, not in the URL"),
            )
        key = request.header("x-goog-api-key")
        if not key:
            return Response(403, google_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."))
        if key != self.api_key:
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                }
            ]
            return Response(
                400, google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", details)
            )
        if request.method == "GET" and request.path == "/v1beta/models":
            return Response(
                200,
                {
                    "models": [
                        {
                            "name": f"models/{name}",
                            "displayName": name,
                            "supportedGenerationMethods": ["generateContent"],
                        }
                        for name in MODELS
                    ]
                },
            )
        prefix, suffix = "/v1beta/models/", ":generateContent"
        if request.method == "POST" and request.path.startswith(prefix) and request.path.endswith(suffix):
            model = request.path[len(prefix) : -len(suffix)]
            if model not in MODELS:
                return Response(
                    404, google_error(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta.")
                )
            return self._generate(request, model)
        return Response(404, google_error(404, "NOT_FOUND", "Not found"))

    def _generate(self, request: RecordedRequest, model: str) -> Response:
        try:
            payload = request.json()
            prompt = "".join(
                part.get("text", "") for content in payload["contents"] for part in content.get("parts", [])
            )
            system = "".join(part.get("text", "") for part in payload.get("systemInstruction", {}).get("parts", []))
        except (ValueError, KeyError, TypeError, AttributeError):
            return Response(400, google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
        with self._answer_lock:
            answer = self._answers.popleft() if self._answers else json.dumps(self.default_answer)
        if isinstance(answer, Response):
            return answer
        prompt_tokens = tokens_of(system + prompt)
        candidate_tokens = tokens_of(answer)
        usage = {"promptTokenCount": prompt_tokens, "candidatesTokenCount": candidate_tokens}
        if self.thoughts_tokens:
            usage["thoughtsTokenCount"] = self.thoughts_tokens
        usage["totalTokenCount"] = prompt_tokens + candidate_tokens + self.thoughts_tokens
        return Response(
            200,
            {
                "candidates": [
                    {
                        "content": {"parts": [{"text": answer}], "role": "model"},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": usage,
                "modelVersion": model,
                "responseId": f"fake-{len(self.requests)}",
            },
        )
