"""Every error under /api/ is JSON, including those Django answers before any API view runs."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    ["/api/v1/orders/null%2Cnull", "/api/v1/signals/abc", "/api/v1/nothing-here", "/api/v1/orders/", "/api/"],
)
def test_unrouted_api_paths_are_a_json_404(user_client, url):
    response = user_client.get(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_paths_outside_the_api_keep_the_html_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_an_unhandled_error_under_the_api_is_a_json_500(rf):
    from trading.api.errors import server_error

    response = server_error(rf.get("/api/v1/orders"))
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert server_error(rf.get("/admin/"))["Content-Type"].startswith("text/html")


def test_a_request_django_refuses_is_json_under_the_api(client, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    response = client.get("/api/v1/orders", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
