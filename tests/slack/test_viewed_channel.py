import pytest

from assist_bot.slack.agent_view import viewed_channel


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({}, None),  # app_context_changed when nothing in particular is in view
        ({"entities": [{"type": "slack#/types/channel_id", "value": "C1", "team_id": "T1"}]}, "C1"),
        # Entities come most relevant first; a canvas or list says nothing about a channel.
        (
            {
                "entities": [
                    {"type": "slack#/types/canvas_id", "value": "F1"},
                    {"type": "slack#/types/message_context", "value": {"channel_id": "C2", "message_ts": "1.2"}},
                    {"type": "slack#/types/channel_id", "value": "C3"},
                ]
            },
            "C2",
        ),
        ({"entities": [{"type": "slack#/types/list_id", "value": "F2"}]}, None),
        ({"channel_id": "C4", "team_id": "T1", "enterprise_id": "E1"}, "C4"),  # legacy assistant thread context
    ],
)
def test_the_channel_in_view(context, expected):
    assert viewed_channel(context) == expected
