"""File objects as Slack really sends them, copied from the recorded payloads
(../shared/realworld/payloads/slack/files/, sources in its SOURCES.md) so that the suite never reads them
at run time. Ids are kept; the bot must not care about them."""

from __future__ import annotations

# slack/files/zenn-slack-connect-check-file-info.json — a Slack Connect file as a Bolt app received it:
# no name, no URLs; only files.info knows the rest. (FakeSlack.add_file(file_access="check_file_info")
# makes the same stub for a file it hosts.)
SLACK_CONNECT_STUB = {
    "id": "F123ABC456",
    "mode": "file_access",
    "file_access": "check_file_info",
    "created": 0,
    "timestamp": 0,
    "user": "",
}

# slack/files/docs-hidden-by-limit.json — a file beyond the workspace plan's limits.
HIDDEN_BY_LIMIT = {"id": "FEKKRPL9G", "mode": "hidden_by_limit"}

# slack/files/constructed-tombstone-and-external.json (constructed from the file-object reference).
TOMBSTONE = {"id": "F0TOMBSTONE", "mode": "tombstone"}
GOOGLE_DOC = {
    "id": "F0EXTERNAL1",
    "created": 1479147929,
    "timestamp": 1479147929,
    "name": "Roadmap",
    "title": "Roadmap",
    "mimetype": "application/vnd.google-apps.document",
    "filetype": "gdoc",
    "pretty_type": "Google Docs",
    "user": "U061F7AUR",
    "editable": False,
    "size": 666,
    "mode": "external",
    "is_external": True,
    "external_type": "gdrive",
    "external_url": "https://docs.google.com/document/d/EXAMPLE/edit",
    "url_private": "https://docs.google.com/document/d/EXAMPLE/edit",
    "permalink": "https://example.slack.com/files/U061F7AUR/F0EXTERNAL1/roadmap",
    "has_rich_preview": True,
}
# The same shape for a Dropbox link (external_type "dropbox"), with a .pdf name that would otherwise route.
DROPBOX_PDF = {
    **GOOGLE_DOC,
    "id": "F0EXTERNAL2",
    "name": "contract.pdf",
    "title": "contract.pdf",
    "mimetype": "application/pdf",
    "filetype": "pdf",
    "external_type": "dropbox",
    "external_url": "https://www.dropbox.com/s/EXAMPLE/contract.pdf",
    "url_private": "https://www.dropbox.com/s/EXAMPLE/contract.pdf",
}
