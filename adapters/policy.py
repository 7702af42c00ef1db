"""The rules every platform follows: who may do what, and what a shared PDF gets.

A platform module answers one question about a person in a place, "a manager here?" (a
:class:`Standing`); what follows from the answer is decided here, once, for every platform.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from adapters.failures import Refused

UploadPolicy = Literal["always", "mention", "off"]
"""Which shared PDFs are loaded: every one, those on messages addressed to the bot, none."""


class Action(enum.Enum):
    """What someone asks the bot to do, on any platform."""

    ASK = "ask"
    SEARCH = "search"
    LIST_SOURCES = "list sources"
    SHOW_MEMORY = "show memory"
    LOAD = "load"
    ATTACH = "attach"
    DETACH = "detach"
    FORGET_SOURCE = "forget a source"
    RESET = "reset"


# Changing what a channel's agent reads or remembers is for managers; asking and looking are
# open to everyone who can see the channel.
MANAGER_ONLY = frozenset(
    {Action.LOAD, Action.ATTACH, Action.DETACH, Action.FORGET_SOURCE, Action.RESET}
)


@dataclass(frozen=True)
class Standing:
    """What the platform says about one person in one place."""

    manager: bool
    needs: str
    """What managing sources needs there, in words: ``the Manage Channels permission``…"""


StandingQuery = Callable[[], Awaitable[Standing]]


def needs_manager(action: Action) -> bool:
    """Whether only a manager may do ``action``."""
    return action in MANAGER_ONLY


def refusal(standing: Standing) -> Refused:
    """The refusal a non-manager gets, the same sentence on every platform."""
    return Refused(f"Managing sources needs {standing.needs}.")


async def require(action: Action, standing: StandingQuery) -> None:
    """Raise :class:`Refused` when ``action`` is for managers and the person is not one.

    The platform is asked only when the answer matters (on Slack it is an API call).
    """
    if not needs_manager(action):
        return
    found = await standing()
    if not found.manager:
        raise refusal(found)


def reads_uploads(policy: UploadPolicy, *, addressed: bool) -> bool:
    """Whether a message's PDFs are for loading; if not, the message is only its text."""
    return policy == "always" or (policy == "mention" and addressed)


class UploadAnswer(enum.Enum):
    """What a message with PDFs to load gets, given who sent it."""

    LOAD = "load"
    REFUSE = "refuse"
    """Say :func:`refusal` where the PDFs were shared: the sender asked the bot."""
    QUIET = "quiet"
    """Nothing: someone who may not load shared a file with the channel, not with the bot."""


def upload_answer(standing: Standing, *, addressed: bool) -> UploadAnswer:
    """Load a manager's PDFs; refuse a non-manager only when they addressed the bot."""
    if standing.manager:
        return UploadAnswer.LOAD
    return UploadAnswer.REFUSE if addressed else UploadAnswer.QUIET
