import logging

from assist_bot.logs import RedactSecrets, redact


def test_tokens_and_keys_are_redacted():
    line = "calling with xoxb-123-456-abc and xapp-1-A1-xyz and sk-proj-abcdefgh and xoxp-9"
    out = redact(line)
    for secret in ("xoxb-123-456-abc", "xapp-1-A1-xyz", "sk-proj-abcdefgh", "xoxp-9"):
        assert secret not in out
    assert "calling with" in out


def test_the_filter_rewrites_records_with_arguments():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token=%s", ("xoxb-secret-token",), None)
    assert RedactSecrets().filter(record) is True
    assert "xoxb-secret-token" not in record.getMessage()


def test_tracebacks_are_redacted_too():
    from assist_bot.logs import RedactingFormatter

    try:
        raise RuntimeError("bad token xoxb-1234-secret in a message")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = RedactingFormatter("%(message)s").format(record)
    assert "Traceback" in line and "xoxb-1234-secret" not in line
