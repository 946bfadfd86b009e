"""The OpenAI error mapping, table-driven: SDK exceptions built from real error bodies
(tests/fakes/openai_payloads) → the kind of failure the user reads about."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import openai
import pytest

from assist_bot import texts
from assist_bot.engine.openai_errors import (
    RETRYABLE,
    incomplete_kind,
    is_conversation_locked,
    stream_failure_kind,
    to_turn_error,
)

PAYLOADS = Path(__file__).parent.parent / "fakes" / "openai_payloads"
REQUEST = httpx2.Request("POST", "https://api.openai.com/v1/responses")


def api_error(status: int, body: dict) -> openai.APIStatusError:
    """The exception the SDK raises for this HTTP answer (its own status → class mapping)."""
    client = openai.OpenAI(api_key="sk-test", base_url="https://api.openai.com/v1")
    response = httpx2.Response(status, json=body, request=REQUEST)
    return client._make_status_error_from_response(response)


def error_body(code: str | None, message: str = "boom-detail", type_: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


RECORDED_400 = json.loads((PAYLOADS / "pai-400-invalid-temperature.json").read_text())


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (openai.APITimeoutError(REQUEST), "timeout"),
        (openai.APIConnectionError(request=REQUEST), "openai_unavailable"),
        (api_error(429, error_body("rate_limit_exceeded", type_="requests")), "openai_rate_limited"),
        (api_error(429, error_body("insufficient_quota", type_="insufficient_quota")), "openai_quota"),
        (api_error(400, error_body("context_length_exceeded")), "context_window"),
        (api_error(401, error_body("invalid_api_key")), "openai_auth"),
        (api_error(403, error_body(None)), "openai_auth"),
        (api_error(500, error_body(None, type_="server_error")), "openai_unavailable"),
        (api_error(503, error_body(None, type_="server_error")), "openai_unavailable"),
        (api_error(RECORDED_400["status"], RECORDED_400["body"]), "openai_rejected"),
        (api_error(404, error_body(None)), "openai_rejected"),
        (openai.OpenAIError("anything else"), "unexpected"),
    ],
)
def test_sdk_errors_map_to_a_kind_with_its_own_text(exc, kind):
    error = to_turn_error(exc)
    assert error.kind == kind
    assert kind in texts.FAILURES
    # The API's own message is never what the user reads, nor in the kind's detail.
    assert "boom-detail" not in texts.failure(kind) and "boom-detail" not in error.detail


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("rate_limit_exceeded", "openai_rate_limited"),
        ("insufficient_quota", "openai_quota"),
        ("context_length_exceeded", "context_window"),
        ("server_error", "openai_unavailable"),
        ("ERR_SOMETHING", "model_failed"),
        (None, "model_failed"),
    ],
)
def test_stream_error_codes(code, kind):
    assert stream_failure_kind(code) == kind


@pytest.mark.parametrize(
    ("reason", "kind"),
    [("max_output_tokens", "length_limit"), ("content_filter", "content_filter"), ("steered", "incomplete")],
)
def test_incomplete_reasons(reason, kind):
    assert incomplete_kind(reason) == kind


def test_what_is_retried_once():
    assert {"openai_unavailable", "openai_rate_limited", "stream_cut"} <= RETRYABLE
    # Asking again cannot help these: it would only repeat the failure, or cost twice.
    assert not {"openai_quota", "context_window", "openai_auth", "openai_rejected", "length_limit"} & RETRYABLE


def test_conversation_locked_is_recognised():
    assert is_conversation_locked(api_error(400, error_body("conversation_locked")))
    assert not is_conversation_locked(api_error(400, error_body("other")))


def test_a_reset_stream_is_a_broken_stream_not_a_crash():
    # What the SDK's HTTP client raises while reading a body the peer cut off.
    from assist_bot.engine.openai_errors import STREAM_BROKEN

    assert isinstance(httpx2.RemoteProtocolError("peer closed connection"), STREAM_BROKEN)
    assert isinstance(httpx2.ReadError("reset"), STREAM_BROKEN)
