"""Requests the framework itself rejects still get our JSON shape, and never echo the request."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

pytestmark = pytest.mark.integration


def test_a_request_that_is_not_a_cloudevent_is_400_without_echoing_it(
    make_client: Callable[[str], FlaskClient],
) -> None:
    client = make_client("message-processor")

    response = client.post(
        "/",
        data=b'{"secret-ish": "body-content"}',
        headers={"Authorization": "Bearer not-for-the-logs", "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json == {"error": "bad_request", "message": "Bad Request"}
    text = response.get_data(as_text=True)
    assert "not-for-the-logs" not in text and "body-content" not in text
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'chat_ingress_rejections_total{channel="message-processor",code="bad_request"' in metrics
