"""Every query parameter is validated: bad input is a 400 naming the field, never a 500."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

BAD_QUERIES = [
    ("/api/v1/market/history", {"hours": "0"}, "hours"),
    ("/api/v1/market/history", {"hours": "745"}, "hours"),
    ("/api/v1/market/history", {"hours": "abc"}, "hours"),
    ("/api/v1/market/history", {"hours": "-1"}, "hours"),
    ("/api/v1/market/history", {"hours": "NaN"}, "hours"),
    ("/api/v1/market/history", {"hours": "1.5"}, "hours"),
    ("/api/v1/market/history", {"hours": "9" * 40}, "hours"),
    ("/api/v1/market/history", {"limit": "1001"}, "limit"),
    ("/api/v1/market/history", {"limit": "0"}, "limit"),
    ("/api/v1/market/history", {"limit": "-1"}, "limit"),
    ("/api/v1/market/history", {"limit": "abc"}, "limit"),
    ("/api/v1/market/history", {"limit": "1e9"}, "limit"),
    ("/api/v1/market/history", {"cursor": "not-a-cursor"}, "cursor"),
    ("/api/v1/market/history", {"cursor": "x" * 500}, "cursor"),
    ("/api/v1/market/history", {"cursor": "MjAyNi0wMS0wMVQwMDowMDowMHw5OTk5OTk5OTk5OTk5OTk5OTk5OQ"}, "cursor"),
    ("/api/v1/market/history", {"cursor": "MDAwMS0wMS0wMVQwMDowMDowMCsxNDowMHw1"}, "cursor"),  # year 0 in UTC
    ("/api/v1/market/history", {"cursor": "MjAyNi0wMS0wMVQwMDowMDowMHw1"}, "cursor"),  # naive time
    ("/api/v1/market/history", {"cursor": "MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHwtNQ"}, "cursor"),  # negative id
    ("/api/v1/market/history", {"cursor": "MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHw"}, "cursor"),  # no id
    ("/api/v1/market/history", {"hours": "1" * 2000}, "hours"),
    ("/api/v1/market/history", {"cursor": "0"}, "cursor"),  # no id
    ("/api/v1/market/history", {"cursor": " 1.5"}, "cursor"),  # outside the documented pattern
    ("/api/v1/market/history", {"cursor": "1.5\n"}, "cursor"),
    ("/api/v1/market/history", {"cursor": "\u0661.\u0665"}, "cursor"),  # non-ASCII digits
    ("/api/v1/market/history", {"cursor": "1" * 17 + ".5"}, "cursor"),
    ("/api/v1/market/history", {"cursor": ""}, "cursor"),  # blank is refused, not read as "absent"
    ("/api/v1/market/history", {"hours": ""}, "hours"),
    ("/api/v1/market/stats", {"hours": ""}, "hours"),
    ("/api/v1/signals", {"until": ""}, "until"),
    ("/api/v1/orders", {"since": ""}, "since"),
    ("/api/v1/ai/usage", {"days": ""}, "days"),
    ("/api/v1/orders", {"limit": ["5", "6"]}, "limit"),  # given twice
    ("/api/v1/signals", {"signal_type": ["BUY", "BUY"]}, "signal_type"),
    ("/api/v1/market/stats", {"hours": "0"}, "hours"),
    ("/api/v1/market/stats", {"hours": "745"}, "hours"),
    ("/api/v1/market/stats", {"hours": "abc"}, "hours"),
    ("/api/v1/signals", {"signal_type": "STRONG_BUY"}, "signal_type"),
    ("/api/v1/signals", {"signal_type": "buy\x00"}, "signal_type"),
    ("/api/v1/signals", {"limit": "1001"}, "limit"),
    ("/api/v1/signals", {"limit": "-1"}, "limit"),
    ("/api/v1/signals", {"since": "yesterday"}, "since"),
    ("/api/v1/signals", {"since": "2026-02-30T00:00:00Z"}, "since"),
    ("/api/v1/signals", {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ("/api/v1/signals", {"since": "2026-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ("/api/v1/signals", {"until": "9999-12-31T23:59:59-14:00"}, "until"),
    ("/api/v1/signals", {"since": "0001-01-01T00:00:00+14:00"}, "since"),
    ("/api/v1/orders", {"status": "DONE"}, "status"),
    ("/api/v1/orders", {"limit": "1001"}, "limit"),
    ("/api/v1/orders", {"since": "2026-02-01T00:00:00", "until": "2026-01-01T00:00:00"}, "until"),
    ("/api/v1/orders", {"until": "not a date"}, "until"),
    ("/api/v1/ai/usage", {"days": "0"}, "days"),
    ("/api/v1/ai/usage", {"days": "91"}, "days"),
    ("/api/v1/ai/usage", {"days": "abc"}, "days"),
]


@pytest.mark.parametrize(("url", "params", "field"), BAD_QUERIES)
def test_bad_query_parameter_is_a_400_naming_the_field(user_client, url, params, field):
    response = user_client.get(url, params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body
    assert isinstance(body[field], list) and body[field][0]


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/v1/market/history", {"hours": "1", "limit": "1"}),
        ("/api/v1/market/history", {"hours": "744", "limit": "1000"}),
        ("/api/v1/market/stats", {"hours": "744"}),
        ("/api/v1/signals", {"signal_type": "HOLD", "since": "2026-01-01T00:00:00", "until": "2026-01-02"}),
        ("/api/v1/orders", {"status": "FILLED", "since": "2026-01-01T09:00:00+09:00"}),
        ("/api/v1/ai/usage", {"days": "1"}),
        ("/api/v1/market/history", {"cursor": "0.5"}),  # 1970: empty page
        ("/api/v1/orders", {"cursor": "9999999999999999.999999999999999999"}),  # the pattern's largest
        ("/api/v1/signals", {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T00:00:00Z"}),
        ("/api/v1/ai/usage", {"days": "90", "unknown": "ignored"}),
    ],
)
def test_bounds_themselves_are_accepted(user_client, url, params):
    assert user_client.get(url, params).status_code == 200


def test_naive_datetimes_are_read_as_utc(user_client):
    import datetime as dt

    from tests.trading.api.rows import make_signals

    signal = make_signals(1, end=dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC))[0]
    inside = user_client.get("/api/v1/signals", {"since": "2026-01-01T11:59:00", "until": "2026-01-01T12:01:00"})
    outside = user_client.get("/api/v1/signals", {"since": "2026-01-01T12:00:01", "until": "2026-01-01T13:00:00"})
    assert [row["id"] for row in inside.json()["results"]] == [signal.id]
    assert outside.json()["results"] == []


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/signals/999999",
        "/api/v1/orders/999999",
        "/api/v1/signals/99999999999999999999999",
        "/api/v1/orders/99999999999999999999999",
        "/api/v1/config/no_such_key",
        "/api/v1/config/%00",
    ],
)
def test_unknown_ids_are_404(user_client, url):
    assert user_client.get(url).status_code == 404


def test_latest_ticker_without_data_is_404(user_client):
    assert user_client.get("/api/v1/market/latest").status_code == 404


def test_malformed_json_body_is_a_400(staff_client):
    response = staff_client.generic(
        "PATCH", "/api/v1/config/stop_loss_pct", "{not json", content_type="application/json"
    )
    assert response.status_code == 400


def test_patch_without_value_is_a_400_and_changes_nothing(staff_client):
    for body in ({}, {"unrelated": 1}):
        response = staff_client.patch("/api/v1/config/stop_loss_pct", body, format="json")
        assert response.status_code == 400
        assert "value" in response.json()
    assert staff_client.get("/api/v1/config/stop_loss_pct").json()["value"] == "5"


@pytest.mark.parametrize("body", ["true", "[]", '"maintenance"', "null"])
def test_write_body_that_is_not_an_object_is_a_400(staff_client, body):
    disable = staff_client.generic("POST", "/api/v1/trading/disable", body, content_type="application/json")
    patch = staff_client.generic("PATCH", "/api/v1/config/stop_loss_pct", body, content_type="application/json")
    assert (disable.status_code, patch.status_code) == (400, 400)
    assert staff_client.get("/api/v1/dashboard").json()["trading"]["enabled"] is True


def test_writes_take_json_only(staff_client):
    """A form or multipart body used to parse as "no fields" and disable trading with defaults."""
    multipart = staff_client.generic(
        "POST",
        "/api/v1/trading/disable",
        b"--b\r\nTrue--b--\r\n",
        content_type="multipart/form-data; boundary=b",
    )
    form = staff_client.generic(
        "PATCH", "/api/v1/config/stop_loss_pct", "value=7", content_type="application/x-www-form-urlencoded"
    )
    assert (multipart.status_code, form.status_code) == (415, 415)
    assert staff_client.get("/api/v1/dashboard").json()["trading"]["enabled"] is True
    assert staff_client.get("/api/v1/config/stop_loss_pct").json()["value"] == "5"


@pytest.mark.parametrize("reason", [0, True, 1.5, ["x"], {"x": 1}, None])
def test_disable_reason_must_be_a_string(staff_client, reason):
    response = staff_client.post("/api/v1/trading/disable", {"reason": reason}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    assert staff_client.get("/api/v1/dashboard").json()["trading"]["enabled"] is True


@pytest.mark.parametrize("value", [7.5, 7.0, None, [7], {"v": 7}])
def test_config_value_outside_boolean_integer_string_is_a_400(staff_client, value):
    response = staff_client.patch("/api/v1/config/stop_loss_pct", {"value": value}, format="json")
    assert response.status_code == 400 and "value" in response.json()
    assert staff_client.get("/api/v1/config/stop_loss_pct").json()["value"] == "5"
