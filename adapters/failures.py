"""Failures as people read them: one sentence each, the cause logged once.

Every platform reports a failure through :func:`sentence_for`: the error's own words when it
is one of ours (:class:`ArchivistError`, :class:`Refused` among them), otherwise
:data:`INTERNAL_ERROR` and the traceback in the log.
"""

from __future__ import annotations

import logging
import os

import aiohttp

from agent.core import INTERNAL_ERROR, ArchivistError

__all__ = ["INTERNAL_ERROR", "Refused", "sentence_for", "unreachable_reason"]

UNREACHABLE = (OSError, aiohttp.ClientError, TimeoutError)
"""What a platform's client raises when its servers cannot be reached."""

log = logging.getLogger(__name__)


class Refused(ArchivistError):
    """The person may not do this here; the message says what it needs."""


def sentence_for(error: BaseException, where: str) -> str:
    """The user's sentence for a failure; unexpected ones are logged with their traceback."""
    if isinstance(error, ArchivistError):
        log.info("%s: %s", where, error)
        return str(error)
    log.error("%s failed", where, exc_info=error)
    return INTERNAL_ERROR


def unreachable_reason(error: BaseException) -> str:
    """Why a server could not be reached, in a few words: ``connection refused``…"""
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return "its name does not resolve"
    if isinstance(error, aiohttp.ClientConnectorError):
        error = error.os_error
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno).lower()
    return type(error).__name__
