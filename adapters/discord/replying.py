"""Replies to a member's message, also when the message was deleted before the answer was ready."""

from __future__ import annotations

import logging

import discord

from adapters.discord.render import split_message

log = logging.getLogger(__name__)


async def reply_to(message: discord.Message, text: str) -> discord.Message:
    """Reply to ``message`` without pinging its author; returns the (first) message sent.

    Discord refuses a reply to a message deleted meanwhile; the text is then posted in the
    channel, opened with a mention of the author so they can tell it answers them.
    """
    try:
        return await message.reply(text, mention_author=False)
    except discord.HTTPException as exc:
        if not replied_message_gone(exc):
            raise
    log.info("message %s was deleted before its answer: posting it plainly", message.id)
    first, *rest = split_message(f"{message.author.mention} {text}")
    sent = await message.channel.send(first)
    for piece in rest:
        await message.channel.send(piece)
    return sent


def replied_message_gone(error: discord.HTTPException) -> bool:
    """Whether Discord refused a reply because the message it answers no longer exists.

    Discord says so as an invalid form body whose ``message_reference`` is an unknown message.
    """
    return error.status == 400 and error.code == 50035 and "In message_reference:" in error.text
