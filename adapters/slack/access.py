"""Who manages sources on Slack: workspace admins and owners, listed users, or everyone.

This module only answers "a manager here?"; what follows is :mod:`adapters.policy`'s.
"""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from adapters import policy
from adapters.policy import Action, Standing
from adapters.slack.options import SlackOptions
from adapters.slack.requests import Request

MANAGER_NEEDS = "a workspace admin or owner, or a user listed in [slack] manager_user_ids"


async def standing(client: AsyncWebClient, user: str, options: SlackOptions) -> Standing:
    """Whether ``user`` manages sources (one ``users.info`` call unless configured)."""
    if options.managers == "everyone" or user in options.manager_user_ids:
        return Standing(manager=True, needs=MANAGER_NEEDS)
    info = await client.users_info(user=user)
    profile = info.get("user") or {}
    manager = bool(profile.get("is_admin") or profile.get("is_owner"))
    return Standing(manager=manager, needs=MANAGER_NEEDS)


async def require(request: Request, action: Action, options: SlackOptions) -> None:
    """Raise :class:`~adapters.failures.Refused` unless the requester may do ``action``."""

    async def asked() -> Standing:
        return await standing(request.client, request.user, options)

    await policy.require(action, asked)
