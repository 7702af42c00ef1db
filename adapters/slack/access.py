"""Who may manage sources: workspace admins and owners, listed users, or everyone."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.options import SlackOptions


async def management_refusal(
    client: AsyncWebClient, user: str, options: SlackOptions
) -> str | None:
    """None when ``user`` may manage sources, else the sentence saying who may."""
    if options.managers == "everyone" or user in options.manager_user_ids:
        return None
    info = await client.users_info(user=user)
    profile = info.get("user") or {}
    if profile.get("is_admin") or profile.get("is_owner"):
        return None
    return (
        "Managing sources needs a workspace admin or owner, or a user listed in"
        " [slack] manager_user_ids."
    )
