"""Logging set-up: one format, and secrets scrubbed from every record as a last line of defence.

Nothing in the project logs a secret on purpose; the filter catches the accidents, such as a
library echoing a URL or header that carries a token.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Final

REDACTED = "[redacted]"

# Secrets minted while running, which no setting lists: Discord's interaction tokens. At DEBUG
# discord.py logs them in the URLs it calls (/interactions/<id>/<token>/callback, and the
# follow-ups' /webhooks/<app id>/<token>/...) and in the INTERACTION_CREATE event it received.
_MINTED_SECRETS: Final = (
    re.compile(r"(/(?:interactions|webhooks)/\d+/)[^/?#\s'\"]+"),
    re.compile(r"""(['"]token['"]\s*:\s*['"])[^'"]+"""),
)


class RedactSecrets(logging.Filter):
    """Replace known secret values and Discord's interaction tokens in a record's text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Very short values would redact ordinary words; real tokens are long.
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._scrubbed(record.exc_text)
        record.msg, record.args = self._scrubbed(record.getMessage()), None
        return True

    def _scrubbed(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        for pattern in _MINTED_SECRETS:
            text = pattern.sub(rf"\g<1>{REDACTED}", text)
        return text


def setup_logging(level: str, secrets: Iterable[str]) -> None:
    """Send logs to stderr at ``level`` with secrets redacted (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_archivist", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    handler._archivist = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # The HTTP clients (httpx; httpx2 under openai) are chatty at INFO: a line per request.
    # Their warnings still show.
    for noisy in ("httpx", "httpx2", "milvus_lite", "pypdf"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    if "pymilvus" in sys.modules:  # else bot.app routes it when it opens the archive
        route_pymilvus()
    # Milvus Lite's in-process gRPC server logs a traceback for every call pymilvus makes that
    # Lite does not implement (AllocTimestamp after create_collection); the client side
    # still reports real failures.
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    # Lite logs a traceback when it cannot open its file; we report that failure ourselves.
    logging.getLogger("milvus_lite.server_manager").setLevel(logging.CRITICAL)


def route_pymilvus() -> None:
    """Send pymilvus's records through our handler; at DEBUG (``-v``) its warnings, else none.

    Importing pymilvus gives its loggers stderr handlers of their own and stops them
    propagating, so they bypassed our level and redaction: a Milvus server dying mid-load
    printed a traceback for every call that failed. Each failure already reaches the operator
    once, as the sentence made of it (agent.documents.archive, with a warning naming the cause).
    Called once pymilvus is imported (its set-up runs on import: it must not run after this),
    and not before it is needed: importing it takes most of a second that `--help` need not pay.
    """
    import pymilvus  # noqa: F401

    for name in ("pymilvus", "pymilvus.milvus_client", "pymilvus.bulk_writer"):
        library = logging.getLogger(name)
        for handler in list(library.handlers):
            library.removeHandler(handler)
        library.propagate = True
        library.setLevel(logging.NOTSET)
    verbose = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    logging.getLogger("pymilvus").setLevel(logging.WARNING if verbose else logging.CRITICAL)
