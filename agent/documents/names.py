"""What a source name, a workspace scope and a conversation key may be: checked in one place.

Every way in (the CLI, ``archivist chat``, Discord and Slack, where a source's name comes from
a message's text) reaches the registry, which checks names and scopes here before creating a
source; the CLI also checks what it is given before opening anything. A refusal is one
sentence that quotes the offending text made printable, never raw.
"""

from __future__ import annotations

import re
import unicodedata

from agent.errors import ArchivistError, quoted_name

GLOBAL_SCOPE = "global"
MAX_NAME_CHARS = 100
"""Discord shows at most 100 characters of a choice, and nobody types more."""

# Control characters, direction overrides and other invisible formatting, separators that break
# lines: they would reach terminals and chat messages as escape sequences or hidden text.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_ALLOWED_FORMAT = frozenset({"\u200d"})  # zero-width joiner, inside emoji sequences
_ID = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_WORKSPACE = re.compile(rf"(discord|slack):{_ID}")
_CONVERSATION = re.compile(rf"(console|discord|slack):{_ID}:{_ID}")
_NOTES_PREFIX = "agent:"
"""An agent's own notes live in the scope ``agent:<conversation key>``."""


class InvalidName(ArchivistError):
    """A source name, workspace scope or conversation key that cannot be used."""


def check_source_name(name: str) -> None:
    """Refuse a name that is empty, blank, too long, padded or holds hidden characters."""
    if not name.strip():
        raise InvalidName("A source needs a name with at least one visible character.")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidName(
            f"Source names are at most {MAX_NAME_CHARS} characters (this one has {len(name)}):"
            " choose a shorter one."
        )
    if any(
        unicodedata.category(ch) in _HIDDEN_CATEGORIES and ch not in _ALLOWED_FORMAT for ch in name
    ):
        raise InvalidName(
            f"The source name {quoted_name(name)} holds control or invisible characters (a tab,"
            " a line break, an escape sequence, a direction override): choose another name."
        )
    if name != name.strip():
        raise InvalidName(
            f"The source name {quoted_name(name)} starts or ends with a space: leave it out."
        )


def check_scope(scope: str) -> None:
    """Refuse anything but ``global``, ``discord:<guild>``, ``slack:<team>`` or notes scopes."""
    if scope == GLOBAL_SCOPE or _WORKSPACE.fullmatch(scope):
        return
    if scope.startswith(_NOTES_PREFIX) and _CONVERSATION.fullmatch(
        scope.removeprefix(_NOTES_PREFIX)
    ):
        return
    raise InvalidName(
        f"{quoted_name(scope)} is not a workspace: use global, discord:<server id> or"
        " slack:<team id>."
    )


def check_conversation(key: str) -> None:
    """Refuse a key that is not ``console:<where>:<name>``, ``discord:<guild>:<channel>`` or
    ``slack:<team>:<channel>``."""
    if not _CONVERSATION.fullmatch(key):
        raise InvalidName(
            f"{quoted_name(key)} is not a conversation key: use console:local:<name>,"
            " discord:<server id>:<channel id> or slack:<team id>:<channel id>."
        )


def workspace_of(conversation: str) -> str | None:
    """The workspace a Discord or Slack conversation belongs to (``discord:1`` for
    ``discord:1:10``); None for the console and other keys, which are the operator's own."""
    platform, _, rest = conversation.partition(":")
    workspace = rest.partition(":")[0]
    candidate = f"{platform}:{workspace}"
    return candidate if _WORKSPACE.fullmatch(candidate) and rest.count(":") == 1 else None


def sees(conversation: str, scope: str) -> bool:
    """Whether a conversation may read a source of ``scope``: global ones, its workspace's own
    and its agent's notes; the console's conversations may read any."""
    workspace = workspace_of(conversation)
    return (
        workspace is None
        or scope in (GLOBAL_SCOPE, workspace)
        or scope == _NOTES_PREFIX + conversation
    )
