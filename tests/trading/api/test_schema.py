"""The OpenAPI schema generates without a warning or error and describes every endpoint."""

from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_schema_validates_with_no_warnings(tmp_path):
    target = tmp_path / "schema.yml"
    # --fail-on-warn raises on any warning or error; --validate checks it against the OpenAPI 3 spec.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    for path in ("/api/v1/market/history", "/api/v1/orders/{id}", "/api/v1/config/{key}", "/api/v1/trading/enable"):
        assert f"{path}:" in text


@pytest.mark.django_db
def test_schema_describes_query_parameters_and_responses(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    history = schema["paths"]["/api/v1/market/history"]["get"]
    parameters = {p["name"]: p for p in history["parameters"]}
    assert parameters["hours"]["schema"] == {"type": "integer", "maximum": 744, "minimum": 1, "default": 24}
    assert parameters["limit"]["schema"]["maximum"] == 1000
    assert {"200", "400", "401"} <= set(history["responses"])
    signals = {p["name"]: p for p in schema["paths"]["/api/v1/signals"]["get"]["parameters"]}
    assert signals["signal_type"]["schema"]["enum"] == ["BUY", "SELL", "HOLD"]
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_schema_describes_what_the_api_really_accepts(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    patch = schema["paths"]["/api/v1/config/{key}"]["patch"]["requestBody"]
    assert patch["required"] is True and list(patch["content"]) == ["application/json"]
    body = patch["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert schema["components"]["schemas"][body]["required"] == ["value"]
    assert list(schema["paths"]["/api/v1/trading/disable"]["post"]["requestBody"]["content"]) == ["application/json"]
    orders = {p["name"]: p for p in schema["paths"]["/api/v1/orders"]["get"]["parameters"]}
    assert orders["cursor"]["schema"]["pattern"] == r"^[0-9]{1,16}\.[0-9]{1,18}$"
