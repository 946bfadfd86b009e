"""Reading usage from final responses (shapes copied from recorded real streams: pydantic-ai
cassettes test_openai_responses web search and reasoning + code interpreter), counting a
turn's figures, prices and cost estimates."""

from __future__ import annotations

import pytest

from assist_bot.errors import SettingsError
from assist_bot.settings import load_settings
from assist_bot.usage import Figures, counts_of, parse_prices, report_from_response

CNTR = "cntr_68c3509aa0348191ad0bfefe24878dbb0deaa35a4e39052e"
# response.completed → response (trimmed to the fields read), as recorded.
WEB_SEARCH = {
    "model": "gpt-5-2025-08-07",
    "output": [
        {"type": "reasoning", "id": "rs_1"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"type": "reasoning", "id": "rs_2"},
        {"type": "message", "id": "msg_1"},
    ],
    "usage": {
        "input_tokens": 9463,
        "input_tokens_details": {"cached_tokens": 8320},
        "output_tokens": 582,
        "output_tokens_details": {"reasoning_tokens": 512},
        "total_tokens": 10045,
    },
}
CODE = {
    "model": "gpt-5-2025-08-07",
    "output": [
        {"type": "reasoning", "id": "rs_1"},
        *({"type": "code_interpreter_call", "id": f"ci_{n}", "container_id": CNTR} for n in range(3)),
        {"type": "message", "id": "msg_1"},
    ],
    "usage": {
        "input_tokens": 3727,
        "input_tokens_details": {"cached_tokens": 3200},
        "output_tokens": 347,
        "output_tokens_details": {"reasoning_tokens": 128},
        "total_tokens": 4074,
    },
}


def test_a_report_reads_tokens_and_hosted_tool_calls():
    web = report_from_response(WEB_SEARCH)
    assert (web.input_tokens, web.cached_tokens, web.output_tokens, web.reasoning_tokens) == (9463, 8320, 582, 512)
    assert (web.web_search, web.file_search, web.code_interpreter) == (1, 0, 0)
    code = report_from_response(CODE)
    # Three calls in one container are one code interpreter session (what OpenAI bills).
    assert code.code_interpreter == 1 and code.containers == (CNTR,)


def test_a_response_without_usage_counts_nothing():
    report = report_from_response({"model": "gpt-5.4-mini", "output": [], "usage": None})
    assert report.input_tokens == report.output_tokens == 0


def test_a_turns_counts_add_up_per_model():
    counts = counts_of([report_from_response(WEB_SEARCH), report_from_response(CODE)])
    assert counts["tokens"] == 9463 + 582 + 3727 + 347
    assert counts["input@gpt-5-2025-08-07"] == 9463 + 3727
    assert counts["cached@gpt-5-2025-08-07"] == 8320 + 3200
    assert counts["reasoning@gpt-5-2025-08-07"] == 512 + 128
    assert (counts["web_search"], counts["code_interpreter"], counts["responses"]) == (1, 1, 2)


def test_cost_uses_the_models_price_a_dated_snapshot_its_models_and_tool_prices():
    figures = Figures(counts_of([report_from_response(WEB_SEARCH)]))
    usd, unpriced = figures.cost(parse_prices(""))
    # gpt-5: $1.25 fresh input, $0.125 cached, $10 output per 1M tokens; a web search $0.01.
    expected = (1143 * 1.25 + 8320 * 0.125 + 582 * 10.00) / 1e6 + 0.01
    assert usd == pytest.approx(expected) and unpriced == []


def test_prices_from_settings_replace_defaults_and_unknown_models_are_named():
    prices = parse_prices(
        '{"gpt-5": {"input": 2, "output": 20}, "in-house": {"input": 1, "cached_input": 0, "output": 1}}'
    )
    assert prices["gpt-5"] == (2.0, 2.0, 20.0)  # no cached price: cached input costs as input
    assert prices["gpt-5.4-mini"] == (0.75, 0.075, 4.50)  # defaults stay
    usd, unpriced = Figures({"input@mystery": 1000, "output@mystery": 10}).cost(prices)
    assert usd == 0 and unpriced == ["mystery"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json", "ASSIST_BOT_PRICES is invalid"),
        ('["gpt-5"]', "must be a JSON object"),
        ('{"gpt-5": {"input": 1}}', "gpt-5: give at least input and output"),
        ('{"gpt-5": {"input": -1, "output": 1}}', "gpt-5: prices cannot be negative"),
    ],
)
def test_bad_prices_stop_start_up_with_one_line(monkeypatch, raw, reason):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-1")
    monkeypatch.setenv("ASSIST_BOT_PRICES", raw)
    with pytest.raises(SettingsError) as error:
        load_settings(_env_file=None)
    assert reason in str(error.value) and "\n" not in str(error.value)
