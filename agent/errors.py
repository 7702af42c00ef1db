"""Errors the core raises on purpose.

Every subclass of :class:`ArchivistError` carries a message that is fit to show a
user as it is: one sentence that says what went wrong and what to do. Adapters
print ``str(error)``; anything else that escapes is a bug and is logged as one.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

# What a person is told when a bug (anything not an ArchivistError) stopped their request.
INTERNAL_ERROR = "Something went wrong on our side (it has been logged): try again."


class ArchivistError(Exception):
    """A failure whose message is written for the person who caused it."""


class DocumentError(ArchivistError):
    """A file that cannot be loaded as a source; ``filename`` names it."""

    def __init__(self, filename: str, message: str) -> None:
        super().__init__(message)
        self.filename = filename

    def __reduce__(self) -> tuple[type[DocumentError], tuple[str, str]]:
        # Raised in the parser process: must survive pickling back with both arguments.
        return (type(self), (self.filename, str(self)))


class NotAPdf(DocumentError):
    """The bytes are not a PDF (checked by magic bytes, not by extension)."""


class EmptyDocument(DocumentError):
    """The file has no bytes at all."""


class CorruptDocument(DocumentError):
    """The PDF is truncated or damaged beyond what the parser can read."""


class EncryptedDocument(DocumentError):
    """The PDF needs a password to open."""


class NoTextDocument(DocumentError):
    """The PDF has no extractable text, typically a scan of images."""


class DocumentTooLarge(DocumentError):
    """The file exceeds a configured limit: bytes, pages, or decompressed size."""


class AgentNotFound(ArchivistError):
    """No agent exists for that conversation key."""


class SourceNotFound(ArchivistError):
    """No source of that name is visible in the caller's scope."""


class SourceNotVisible(SourceNotFound):
    """The source exists, but in a workspace the conversation cannot see."""


class PassageTooLong(ArchivistError):
    """Text given to be stored as one passage is longer than the embedding model reads."""


class SourceNotReady(ArchivistError):
    """The source exists but is still loading or failed to load."""


class EmbeddingMismatch(ArchivistError):
    """A source was embedded with another model than the one configured now."""


class ArchiveUnavailable(ArchivistError):
    """Milvus cannot be reached, or its Lite file is held by another process."""


class StateUnavailable(ArchivistError):
    """The SQLite state cannot be opened or written: its folder, its file, a full disk."""


class EmbedderUnavailable(ArchivistError):
    """The embedding backend failed (model files missing, endpoint down)."""


def shown_url(url: str) -> str:
    """A URL fit for messages and logs: credentials and query (which may hold keys) removed."""
    parts = urlsplit(url)
    if not parts.netloc:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def quoted_name(name: str) -> str:
    """A user-supplied name made safe to echo: printable, short, quoted."""
    printable = "".join(ch if ch.isprintable() else "?" for ch in name)
    if len(printable) > 80:
        printable = printable[:79] + "…"
    return f"'{printable}'"
